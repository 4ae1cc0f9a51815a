// Observation of the request path: one Exchange per request records what passes (the decision, the bodies'
// sizes, the answer, token usage) and, once the response's last byte has passed, writes the access line and
// the metrics. It is a tap: it decides nothing on the path and owns nothing another module must clean up.
import { redactUrl } from "./address.ts";
import type { Config } from "./config.ts";
import { errorResponse, ProxyError } from "./errors.ts";
import { contentLength, type HeaderMap } from "./http.ts";
import type { LogFields, Logger } from "./log.ts";
import { memoryOutcome, MemoryWatch, type MemoryOutcome } from "./memory.ts";
import { Metrics, NO_USER, PROMETHEUS_CONTENT_TYPE, ROUTES, routeIndex, type BackendErrorKind, type Route } from "./metrics.ts";
import type { PoolObserver } from "./backends.ts";
import { BackendFailure, StreamIdleTimeout, type BodyOutcome } from "./proxy.ts";
import { modelOf } from "./request-model.ts";
import type { RoutingDecision } from "./router.ts";
import type { FinishedRequest, StatusBoard } from "./status.ts";
import { usageParserFor, type UsageParser } from "./usage.ts";

/** What the observation needs from the configuration. */
export type ObservationConfig = Pick<Config, "source" | "routing" | "metrics">;

/**
 * The longest a client-chosen value is kept on the board and written to the log: a request line may be half a
 * megabyte (Bun's limit), and 200 such requests on the board would hold 90 MB.
 */
const USER_AGENT_MAX = 256;
const MODEL_MAX = 256;
const PATH_MAX = 2048;
/** Routes whose answers report token usage (model lists, count_tokens and other paths are not parsed). */
const USAGE_ROUTES = new Set(
  (["/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/responses", "/v1/embeddings"] satisfies Route[]).map((r) => ROUTES.indexOf(r)),
);

/** The observation side of a server: starts an Exchange per request, answers /metrics and /memory-routing/stats. */
export class Observation {
  /** Undefined when metrics are disabled. */
  readonly metrics: Metrics | undefined;
  /** Notices memory ids whose answers keep coming back without memory. */
  readonly memoryWatch = new MemoryWatch();

  constructor(
    readonly logger: Logger,
    config: ObservationConfig,
    metrics?: Metrics,
    /** The status page's board: every finished request that is not memproxy's own is recorded there. */
    readonly board?: StatusBoard,
  ) {
    this.metrics = config.metrics.enabled ? (metrics ?? new Metrics({ maxUserLabels: config.metrics.max_user_labels })) : undefined;
    this.source = config.source;
    this.reloaded(config);
  }

  private source: string;

  /** Takes in a (re)loaded configuration's user ids: they always get their own metrics label. */
  reloaded(config: ObservationConfig): void {
    this.source = config.source;
    this.metrics?.reserveUserIds([config.routing.default_user_id, ...config.routing.header_patterns.map((p) => p.user_id)]);
  }

  /**
   * Starts observing one request.
   * @param own whether memproxy answers it itself (its own endpoints: logged at debug level, not counted).
   */
  begin(req: Request, id: string, path: string, headers: HeaderMap, own: boolean): Exchange {
    return new Exchange(this, req, id, path, headers, own);
  }

  /** GET /memory-routing/stats: the JSON summary, or 404 saying how to turn metrics on. */
  statsResponse(): Response {
    if (!this.metrics) {
      return errorResponse(new ProxyError(404, "not_found", `usage statistics are off: set memproxy.metrics.enabled: true in ${this.source}`));
    }
    return new Response(JSON.stringify(this.metrics.stats(), null, 2) + "\n", { headers: { "content-type": "application/json" } });
  }
}

/**
 * One request from arrival to its response's last byte. The request path tells it what happens (as the
 * forward's observer it sees the bodies pass); when the answer has ended it writes the access line and the
 * metrics, once. Nothing here waits for anything, holds a chunk back, or changes what is sent.
 */
export class Exchange implements PoolObserver {
  private readonly start = performance.now();
  private readonly at = Date.now();
  private readonly route: number;
  private decision: RoutingDecision | undefined;
  private status = 0;
  private headSeen = false;
  private headMs = 0;
  private ttfbMs: number | undefined;
  private bytesIn = 0;
  private bytesOut = 0;
  private bufferedBody: Uint8Array | undefined;
  private usage: UsageParser | undefined;
  private sse = false;
  private outcome: BodyOutcome | "crashed" | undefined;
  private clientGone = false;
  private backendError: BackendErrorKind | undefined;
  private keepaliveWaitMs: number | undefined;
  private errorCode: string | undefined;
  private error: string | undefined;
  private memory: MemoryOutcome | null = null;
  private done = false;

  constructor(
    private readonly obs: Observation,
    private readonly req: Request,
    /** The request id. */
    readonly id: string,
    /** The request's path, without its query (a query can carry keys: ?key=...). */
    readonly path: string,
    /** The request's headers, read once. */
    private readonly headers: HeaderMap,
    private readonly own: boolean,
  ) {
    this.route = routeIndex(path);
  }

  /** The request was routed to a memory id (before it is checked further and forwarded). */
  routed(decision: RoutingDecision): void {
    const m = this.obs.metrics;
    if (m && !this.decision) {
      m.requestsInFlight.inc();
      m.decided(decision.decided_by);
    }
    this.decision = decision;
  }

  /** memproxy refused or failed the request itself with `err`; `bytes` is the size of the error body sent. */
  refused(err: ProxyError, bytes: number): void {
    this.errorCode = err.code;
    this.error ??= redactedMessage(err);
    this.bytesOut = bytes;
  }

  /** The backend call has to wait for a kept-alive connection (memproxy.forward.keepalive_limit). */
  keepaliveWaitStarted(): void {
    this.obs.metrics?.keepaliveWaiting.inc();
  }

  /** The wait is over: it got a kept-alive connection, or it goes on a new one. */
  keepaliveWaited(ms: number, gotConnection: boolean): void {
    this.keepaliveWaitMs = ms;
    const m = this.obs.metrics;
    if (!m) return;
    m.keepaliveWaiting.dec();
    (gotConnection ? m.keepaliveWaits : m.keepaliveWaitTimeouts).inc();
  }

  /** A backend call failed before its response head (counted per attempt: a retry may follow). */
  backendFailed(err: ProxyError): void {
    if (err instanceof BackendFailure) {
      if (err.kind === "client_gone") {
        this.clientGone = true;
        return;
      }
      // The client's silence, not the backend's: no backend error is counted.
      if (err.kind === "upload_stalled") {
        this.error = redactedMessage(err);
        return;
      }
      this.count(err.kind === "timeout" ? "timeout" : err.kind === "connect" ? "connect" : "reset");
    }
    this.error = redactedMessage(err);
  }

  /** The connection to `from` was refused, and the call goes to `to` instead. */
  retrying(from: string, to: string): void {
    this.obs.logger.warn("backend refused the connection; retrying on another", { request_id: this.id, backend: redactUrl(from), next: redactUrl(to), path: this.path });
  }

  /** memproxy's own code failed on this request: what failed goes to the log (the client gets a bare 500). */
  crashed(err: unknown): void {
    this.outcome = "crashed";
    this.error = redactedMessage(err);
  }

  /** The client left while the request was read or handled (logged as 499). */
  clientLeft(): void {
    this.clientGone = true;
  }

  /**
   * The server is about to send `res`. An answer of memproxy's own is complete now; a backend's answer
   * completes when its body ends (end()).
   */
  answered(res: Response): void {
    if (this.headSeen) return;
    this.status = res.status;
    this.complete();
  }

  // As the forward's observer: called as the bytes pass.

  requestBody(body: ReadableStream<Uint8Array> | Uint8Array): void {
    if (body instanceof Uint8Array) {
      this.bytesIn = body.byteLength;
      this.bufferedBody = body;
    } else {
      // A streamed body belongs to the forward: observation never reads or tees it. Its size is what it
      // announced, until requestBodyEnded() says what came.
      const announced = contentLength(this.headers);
      this.bytesIn = typeof announced === "number" ? announced : -1;
    }
  }

  requestBodyEnded(bytes: number): void {
    this.bytesIn = bytes;
  }

  responseHead(status: number, headers: HeaderMap): void {
    this.headSeen = true;
    this.headMs = performance.now() - this.start;
    this.status = status;
    if (status >= 500) this.count("5xx");
    const type = headers["content-type"] ?? null;
    if (USAGE_ROUTES.has(this.route)) {
      this.usage = usageParserFor(type);
      // An error answer says nothing about memory.
      if (status < 300) this.memory = memoryOutcome(headers);
    }
    if (type?.includes("text/event-stream")) {
      this.sse = true;
      this.obs.metrics?.streamsInFlight.inc();
    }
  }

  chunk(bytes: Uint8Array): void {
    if (this.ttfbMs === undefined) this.ttfbMs = performance.now() - this.start;
    this.bytesOut += bytes.length;
    this.usage?.push(bytes);
  }

  end(outcome: BodyOutcome, error?: unknown): void {
    if (this.outcome !== undefined) return;
    this.outcome = outcome;
    if (outcome === "cancelled") this.clientGone = true;
    if (outcome === "failed") {
      this.count(error instanceof StreamIdleTimeout ? "timeout" : "reset");
      this.error = redactedMessage(error);
    }
    this.complete();
  }

  private count(kind: BackendErrorKind): void {
    this.backendError = kind;
    this.obs.metrics?.backendError(kind);
  }

  /** The model a JSON request body names, when the body was read ahead. */
  private model(): string | undefined {
    const body = this.bufferedBody;
    if (!body || !this.headers["content-type"]?.includes("json")) return undefined;
    return modelOf(body);
  }

  /** Writes the access line and the metrics, once. */
  private complete(): void {
    if (this.done) return;
    this.done = true;
    const durationMs = performance.now() - this.start;
    const { logger, metrics } = this.obs;
    const d = this.decision;
    if (this.own && !d) {
      if (logger.enabled("debug")) {
        logger.debug("request", { request_id: this.id, method: this.req.method, path: this.path, status: this.status, duration_ms: ms(durationMs) });
      }
      return;
    }
    const usage = this.usage?.end();
    const failed = this.status >= 400 || this.outcome === "failed" || this.outcome === "crashed";
    const level = this.outcome === "crashed" ? "error" : this.status >= 500 || this.outcome === "failed" ? "warn" : "info";
    const logged = logger.enabled(level);
    const board = this.obs.board;
    const model = usage || logged || board ? (this.model() ?? usage?.model) : undefined;
    const memory = this.memory;
    if (d && memory) {
      const warning = this.obs.memoryWatch.observe(d.user_id, memory, this.at);
      if (warning) logger.warn(warning, { user_id: d.user_id });
    }
    // Without body bytes, the first byte is the head (memproxy's own answers: sent at once); a body cut before it has none.
    const ttfbMs = this.ttfbMs ?? (this.outcome === "cancelled" || this.outcome === "failed" ? undefined : this.headSeen ? this.headMs : durationMs);
    if (metrics) {
      if (d) metrics.requestsInFlight.dec();
      if (this.sse) metrics.streamsInFlight.dec();
      const user = metrics.user(d ? d.user_id : NO_USER);
      metrics.record({
        user,
        route: this.route,
        status: this.status,
        failed,
        durationSeconds: durationMs / 1000,
        ttfbSeconds: ttfbMs === undefined ? undefined : ttfbMs / 1000,
        clientDisconnected: this.clientGone,
      });
      if (usage) metrics.tokens(user, model ?? "unknown", usage.inputTokens, usage.outputTokens);
      if (memory) metrics.memory(user, memory);
    }
    const ua = this.headers["user-agent"] ?? null;
    const userAgent = ua && cut(ua, USER_AGENT_MAX);
    const path = cut(this.path, PATH_MAX);
    const shownModel = model === undefined ? null : cut(model, MODEL_MAX);
    const rule = d?.matched_pattern ? `${d.matched_pattern.header}: ${d.matched_pattern.pattern}` : undefined;
    if (board) {
      const finished: FinishedRequest = {
        id: this.id,
        at: this.at,
        method: this.req.method,
        path,
        status: this.status,
        duration_ms: ms(durationMs),
        ttfb_ms: ttfbMs === undefined ? null : ms(ttfbMs),
        user_id: d?.user_id ?? null,
        decided_by: d?.decided_by ?? null,
        rule: rule ?? null,
        tool: d?.tool ?? null,
        user_agent: userAgent,
        model: shownModel,
        input_tokens: usage?.inputTokens ?? null,
        output_tokens: usage?.outputTokens ?? null,
        bytes_in: this.bytesIn < 0 ? null : this.bytesIn,
        bytes_out: this.bytesOut,
        error_code: this.errorCode ?? this.backendError ?? null,
        error: this.error ?? null,
        client_disconnected: this.clientGone,
        memory,
      };
      board.record(finished);
    }
    if (!logged) return;
    const fields: LogFields = {
      request_id: this.id,
      method: this.req.method,
      path,
      user_id: d?.user_id ?? null,
      decided_by: d?.decided_by ?? null,
      pattern: rule,
      tool: d?.tool ?? undefined,
      derived_from: d?.derived_from ?? undefined,
      user_agent: userAgent,
      model: shownModel,
      status: this.status,
      bytes_in: this.bytesIn < 0 ? null : this.bytesIn,
      bytes_out: this.bytesOut,
      ttfb_ms: ttfbMs === undefined ? null : ms(ttfbMs),
      duration_ms: ms(durationMs),
      client_disconnected: this.clientGone,
      input_tokens: usage?.inputTokens,
      output_tokens: usage?.outputTokens,
      keepalive_wait_ms: this.keepaliveWaitMs === undefined ? undefined : ms(this.keepaliveWaitMs),
      backend_error: this.backendError,
      error_code: this.errorCode,
      error: this.error,
      memory: memory?.state,
      memory_error: memory?.error ?? undefined,
    };
    logger[level]("request", fields);
  }
}

/** `s` cut to `max` characters. */
function cut(s: string, max: number): string {
  return s.length > max ? s.slice(0, max) : s;
}

/** Milliseconds with one decimal. */
function ms(x: number): number {
  return Math.round(x * 10) / 10;
}

/** An error for the log: its message, with any password in a URL hidden. */
function redactedMessage(err: unknown): string {
  return redactUrl(err instanceof ProxyError ? err.message : err instanceof Error ? `${err.name}: ${err.message}` : String(err));
}

/** GET /metrics: the Prometheus text (with metrics off the path is not memproxy's, and is forwarded). */
export function metricsResponse(metrics: Metrics): Response {
  return new Response(metrics.render(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
}
