// Seeing what memproxy does: each request is followed from arrival to its last byte (request id, routing,
// timings, bytes, model, token usage) and ends in one access log line and the metrics.
import type { Config } from "./config.ts";
import { errorResponse, ProxyError } from "./errors.ts";
import type { Logger, LogFields } from "./log.ts";
import { Metrics, NO_USER, PROMETHEUS_CONTENT_TYPE, ROUTES, routeIndex, type BackendErrorKind, type Route } from "./metrics.ts";
import { BackendFailure, StreamIdleTimeout, type BodyOutcome, type ForwardObserver } from "./proxy.ts";
import { MODEL_SCAN_LIMIT, modelFromJsonPrefix, smallJsonBody } from "./request-model.ts";
import { REQUEST_ID_HEADER, requestIdFor } from "./request-id.ts";
import { pathOf } from "./request-target.ts";
import type { RoutingDecision } from "./router.ts";
import { usageParserFor, type UsageParser } from "./usage.ts";

/** A fetch handler that also gets the request's Exchange. */
export type ObservedHandler<S> = (req: Request, server: S, ex: Exchange) => Response | Promise<Response>;

/** What the observation needs from the configuration. */
export type ObservabilityConfig = Pick<Config, "source" | "routing" | "metrics" | "logging">;

const USER_AGENT_MAX = 256;
/** Routes whose answers report token usage (model lists, count_tokens and other paths are not parsed). */
const USAGE_ROUTES = new Set(
  (["/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/responses", "/v1/embeddings"] satisfies Route[]).map((r) => ROUTES.indexOf(r)),
);
const INTERNAL_ERROR_BODY = JSON.stringify({
  type: "error",
  error: { message: "internal error in memproxy", type: "server_error", param: null, code: null },
});

/**
 * Request ids, access log lines and metrics for one server.
 * @param config the configuration (metrics settings, configured user ids, its source for messages).
 * @param logger where access lines go.
 * @param ownPaths the paths memproxy answers itself: logged at debug level and not counted.
 * @param metrics a registry to use (e.g. shared with the supervisor); by default a new one, or none when disabled.
 */
export function createObservability(config: ObservabilityConfig, logger: Logger, ownPaths: Iterable<string>, metrics?: Metrics): Observability {
  const m = config.metrics.enabled ? (metrics ?? new Metrics({ maxUserLabels: config.metrics.max_user_labels })) : undefined;
  const observability = new Observability(logger, m, new Set(ownPaths), config);
  observability.reloaded(config);
  return observability;
}

/** The observation side of a server: wraps its fetch handler and answers /metrics and /memory-routing/stats. */
export class Observability {
  constructor(
    readonly logger: Logger,
    /** Undefined when metrics are disabled. */
    readonly metrics: Metrics | undefined,
    readonly ownPaths: ReadonlySet<string>,
    /** The configuration at start: the logging and metrics settings stay as they were then. */
    private readonly started: ObservabilityConfig,
  ) {}

  /**
   * Takes in a new configuration's user ids (they always get their own label).
   * @returns notes on the logging and metrics settings, which cannot change while running.
   */
  reloaded(config: ObservabilityConfig): string[] {
    this.metrics?.reserveUserIds([config.routing.default_user_id, ...config.routing.header_patterns.map((p) => p.user_id)]);
    const notes: string[] = [];
    for (const key of ["logging", "metrics"] as const) {
      if (JSON.stringify(config[key]) !== JSON.stringify(this.started[key])) {
        notes.push(`memproxy.${key}: cannot change while running; restart memproxy to apply it`);
      }
    }
    return notes;
  }

  /**
   * Wraps a fetch handler: every response gets x-request-id, every request one access log line.
   * An exception in `inner` becomes a 500 carrying the request id (and is logged with it). Not an
   * async function: a promise less per request, and an answer made at once is returned at once.
   */
  wrap<S>(inner: ObservedHandler<S>): (req: Request, server: S) => Response | Promise<Response> {
    return (req, server) => {
      const ex = new Exchange(this, req);
      let res: Response | Promise<Response>;
      try {
        res = inner(req, server, ex);
      } catch (err) {
        return ex.reply(ex.crashed(err));
      }
      if (res instanceof Response) return ex.reply(res);
      return res.then(
        (r) => ex.reply(r),
        (err) => ex.reply(ex.crashed(err)),
      );
    };
  }

  /** GET /metrics: the Prometheus text; undefined when metrics are disabled (the path is then forwarded). */
  metricsResponse(): Response | undefined {
    if (!this.metrics) return undefined;
    return new Response(this.metrics.render(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
  }

  /** GET /memory-routing/stats: the JSON summary, or 404 saying how to turn metrics on. */
  statsResponse(): Response {
    if (!this.metrics) {
      return errorResponse(new ProxyError(404, "not_found", `usage statistics are off: set memproxy.metrics.enabled: true in ${this.started.source}`));
    }
    return new Response(JSON.stringify(this.metrics.stats(), null, 2) + "\n", { headers: { "content-type": "application/json" } });
  }
}

/**
 * One request from arrival to its response's last byte. It is the forward's observer: it counts the
 * bytes both ways, feeds the response chunks to the usage parser, and when the body ends writes the
 * access line and the metrics. Nothing here waits for anything or holds a chunk back.
 */
export class Exchange implements ForwardObserver {
  /** The request id: the client's own when well-formed, else a new one. */
  readonly id: string;
  private readonly start = performance.now();
  /** The request's path, without its query: a query string can carry keys (?key=...). */
  readonly path: string;
  private readonly route: number;
  private decision: RoutingDecision | undefined;
  private status = 0;
  private headSeen = false;
  private headMs = 0;
  private ttfbMs: number | undefined;
  private bytesIn = 0;
  private bytesOut = 0;
  private bufferedBody: Uint8Array | undefined;
  /** The request's announced Content-Length (NaN: none) and Content-Type, read once by wantsBody. */
  private declaredLength = NaN;
  private contentType: string | null = null;
  private usage: UsageParser | undefined;
  private sse = false;
  private outcome: BodyOutcome | "crashed" | undefined;
  private clientGone = false;
  private backendError: BackendErrorKind | undefined;
  private keepaliveWaitMs: number | undefined;
  private error: string | undefined;
  private done = false;
  private readonly completeHooks: (() => void)[] = [];

  constructor(
    private readonly obs: Observability,
    private readonly req: Request,
  ) {
    this.id = requestIdFor(req.headers);
    this.path = pathOf(req.url);
    this.route = routeIndex(this.path);
  }

  /** The request was routed to a user id and is about to be forwarded. */
  routed(decision: RoutingDecision): void {
    if (!this.decision) this.obs.metrics?.requestsInFlight.inc();
    this.decision = decision;
  }

  /** The backend call has to wait for a kept-alive connection (memproxy.forward.keepalive_limit). */
  keepaliveWaitStarted(): void {
    this.obs.metrics?.keepaliveWaiting.inc();
  }

  /** The wait is over: it got a kept-alive connection, or it goes on a new one. */
  keepaliveWaitEnded(ms: number, gotConnection: boolean): void {
    this.keepaliveWaitMs = ms;
    const m = this.obs.metrics;
    if (!m) return;
    m.keepaliveWaiting.dec();
    (gotConnection ? m.keepaliveWaits : m.keepaliveWaitTimeouts).inc();
  }

  /** A backend call failed before its response head (counted per attempt: a retry may follow). */
  backendFailed(err: unknown): void {
    if (err instanceof BackendFailure) {
      if (err.kind === "client_gone") {
        this.clientGone = true;
        return;
      }
      this.count(err.kind === "timeout" ? "timeout" : err.kind === "connect" ? "connect" : "reset");
    }
    this.error = describe(err);
  }

  /**
   * The handler threw. Reading the request body throws when the client leaves mid-upload: that is a
   * client gone (499, for the log only), anything else a 500.
   */
  crashed(err: unknown): Response {
    if (this.req.signal.aborted) {
      this.clientGone = true;
      return new Response(null, { status: 499 });
    }
    this.outcome = "crashed";
    this.error = describe(err);
    return new Response(INTERNAL_ERROR_BODY, { status: 500, headers: { "content-type": "application/json" } });
  }

  /**
   * Stamps x-request-id on the response; completes the exchange unless its body is still being watched.
   * A backend's answer (its head was seen) was made by forward(), which set the id already
   * (ForwardOptions.requestId): setting it on a made Response costs more (its headers get a JS object).
   */
  reply(res: Response): Response {
    if (this.headSeen && this.outcome !== "crashed") return res;
    try {
      res.headers.set(REQUEST_ID_HEADER, this.id);
    } catch {
      // Immutable headers (a Response made elsewhere): copy it.
      res = new Response(res.body, res);
      res.headers.set(REQUEST_ID_HEADER, this.id);
    }
    if (!this.headSeen) {
      this.status = res.status;
      this.complete();
    }
    return res;
  }

  // ForwardObserver: called by forward() as the bytes pass.

  /**
   * Whether the forward should read this request's body ahead and send it as one buffer: small JSON,
   * whose model the access line and token counters want. (It is cheaper than streaming it, too.)
   * Called once per forwarded request, before the forward.
   * @param contentLength the request's Content-Length header.
   */
  wantsBody(contentLength: string | null): boolean {
    this.declaredLength = Number(contentLength ?? NaN);
    this.contentType = this.req.headers.get("content-type");
    return smallJsonBody(this.declaredLength, this.contentType);
  }

  requestBody(body: ReadableStream<Uint8Array> | Uint8Array): void {
    if (body instanceof Uint8Array) {
      this.bytesIn = body.byteLength;
      this.bufferedBody = body;
    } else {
      // A streamed body is never read here (a tee costs more than the forward itself): its size is what it announced.
      this.bytesIn = Number.isNaN(this.declaredLength) ? -1 : this.declaredLength;
    }
  }

  responseHead(res: Response): void {
    this.headSeen = true;
    this.headMs = performance.now() - this.start;
    this.status = res.status;
    if (res.status >= 500) this.count("5xx");
    const type = res.headers.get("content-type");
    if (USAGE_ROUTES.has(this.route) && (this.obs.metrics || this.obs.logger.enabled("info"))) this.usage = usageParserFor(type);
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
      this.error = describe(error);
    }
    this.complete();
  }

  private count(kind: BackendErrorKind): void {
    this.backendError = kind;
    this.obs.metrics?.backendError(kind);
  }

  private model(): string | undefined {
    if (!this.bufferedBody || !this.contentType?.includes("json")) return undefined;
    const body = this.bufferedBody;
    return modelFromJsonPrefix(body.length > MODEL_SCAN_LIMIT ? body.subarray(0, MODEL_SCAN_LIMIT) : body);
  }

  /** Runs `fn` when the exchange completes (its response body ended, or at once if it has). */
  onComplete(fn: () => void): void {
    if (this.done) fn();
    else this.completeHooks.push(fn);
  }

  /** Runs the completion hooks, then writes the access line and the metrics, once. */
  private complete(): void {
    if (this.done) return;
    this.done = true;
    for (const fn of this.completeHooks) fn();
    const durationMs = performance.now() - this.start;
    const { logger, metrics } = this.obs;
    const d = this.decision;
    if (!d && this.obs.ownPaths.has(this.path)) {
      if (logger.enabled("debug")) {
        logger.debug("request", { request_id: this.id, method: this.req.method, path: this.path, status: this.status, duration_ms: ms(durationMs) });
      }
      return;
    }
    const usage = this.usage?.end();
    const level = this.outcome === "crashed" ? "error" : this.status >= 500 || this.outcome === "failed" ? "warn" : "info";
    const logged = logger.enabled(level);
    const model = usage || logged ? (this.model() ?? usage?.model) : undefined;
    const failed = this.status >= 400 || this.outcome === "failed" || this.outcome === "crashed";
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
    }
    if (!logged) return;
    const ua = this.req.headers.get("user-agent");
    const fields: LogFields = {
      request_id: this.id,
      method: this.req.method,
      path: this.path,
      user_id: d?.user_id ?? null,
      decided_by: d ? (d.custom_header_present ? "custom_header" : d.matched_pattern ? "pattern" : "default") : null,
      pattern: d?.matched_pattern ? `${d.matched_pattern.header}: ${d.matched_pattern.pattern}` : undefined,
      user_agent: ua && ua.length > USER_AGENT_MAX ? ua.slice(0, USER_AGENT_MAX) : ua,
      model: model ?? null,
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
      error: this.error,
    };
    logger[level]("request", fields);
  }
}

/** Milliseconds with one decimal. */
function ms(x: number): number {
  return Math.round(x * 10) / 10;
}

/** An error for the log: its message, with any user:password in a URL removed. */
function describe(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.replace(/\/\/[^/@\s]*@/g, "//[redacted]@");
}
