// One request, from the server to the backend and back: memproxy's own endpoints answered from a table,
// everything else checked, routed and forwarded through the backend pool. A plain function of the request,
// the state it is served with, and its context: it can be tested without a socket.
import type { AccessCheck, BrowserRefusal } from "./access.ts";
import type { BackendPool } from "./backends.ts";
import type { Config } from "./config.ts";
import { ENDPOINTS } from "./endpoints.ts";
import { errorBody, errorResponse, ProxyError } from "./errors.ts";
import { redactedHeaders } from "./headers.ts";
import { contentLength, requestHasBody, type HeaderMap } from "./http.ts";
import type { ChainReport } from "./litellm-config.ts";
import { conversationIdFrom } from "./memory.ts";
import { metricsResponse, type Exchange, type Observation } from "./observe.ts";
import { smallJsonBody } from "./request-model.ts";
import { REQUEST_ID_HEADER } from "./request-id.ts";
import { pathAndQuery } from "./request-target.ts";
import type { Router, RoutingDecision, RoutingRejection } from "./router.ts";
import type { SupervisorStatus } from "./supervisor.ts";
import { UI_PATHS, type Ui } from "./ui.ts";
import { VERSION } from "./version.ts";

/** What lives as long as the server, whatever the configuration. */
export interface Services {
  readonly observation: Observation;
  /** The state of a LiteLLM that memproxy supervises: proxied requests wait for it to be ready. */
  readonly litellm?: () => Readonly<SupervisorStatus>;
  /** The last reload, for /health: null before the first. */
  readonly lastReload: () => Readonly<{ at: string; ok: boolean; problems?: string[] }> | null;
  /** The status page. */
  readonly ui: Ui;
}

/** Everything a request is served with; replaced whole on reload (a request keeps the one it started with). */
export interface State {
  readonly config: Config;
  readonly router: Router;
  readonly access: AccessCheck;
  /** On loopback without keys: refuses what a web page sent (DNS rebinding, a foreign Origin); null otherwise. */
  readonly browserGuard: ((headers: HeaderMap) => BrowserRefusal | null) | null;
  readonly pool: BackendPool;
  readonly userIdHeaders: readonly string[];
  /** The shared config's LiteLLM side, when memproxy can see it: does the memory id reach Supermemory? */
  readonly chain: ChainReport | undefined;
  readonly services: Services;
}

/** One request as the handler sees it: its id and path, who records it, and what its connection allows. */
export interface RequestContext {
  readonly id: string;
  /** The request's URL as Bun gives it (read once: Bun makes the string on each read). */
  readonly url: string;
  /** The path without its query. */
  readonly path: string;
  /** The request's headers, read once (http.ts headerMap). */
  readonly headers: HeaderMap;
  /** Records what happens to the request (the observation's tap). */
  readonly tap: Exchange;
  /** Requests the server is serving now, this one included. */
  readonly inFlight: number;
  /** Lifts the client connection's idle timeout while a long backend call runs; returns what restores it. */
  liftIdleTimeout(): () => void;
}

type Answer = Response | Promise<Response>;

/** One of memproxy's own endpoints: the methods it answers, whether it needs an access key, and its answer. */
interface Endpoint {
  readonly methods: readonly string[];
  /** Answered without an access key (liveness and readiness probes). */
  readonly open?: boolean;
  /** Whether the configuration has it on (default: always); when off, its path is forwarded like any other. */
  on?(s: State): boolean;
  answer(req: Request, s: State, ctx: RequestContext): Answer;
}

const GET = ["GET", "HEAD"] as const;
const JSON_HEADERS = { "content-type": "application/json" };
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body, null, 2) + "\n", { status, headers: JSON_HEADERS });

/** memproxy's own endpoints, by path. */
const OWN: ReadonlyMap<string, Endpoint> = new Map<string, Endpoint>([
  [ENDPOINTS.liveness, { methods: GET, open: true, answer: () => json({ status: "alive" }) }],
  [ENDPOINTS.livenessAlias, { methods: GET, open: true, answer: () => json({ status: "alive" }) }],
  [ENDPOINTS.health, { methods: GET, answer: (_req, s) => health(s) }],
  // Open like liveness: orchestrators' probes (Kubernetes, load balancers) cannot hold a key, and it tells only
  // "ready" or "not ready".
  [ENDPOINTS.readiness, { methods: GET, open: true, answer: (_req, s) => readiness(s) }],
  [ENDPOINTS.routingInfo, { methods: GET, answer: (_req, s, ctx) => routingInfo(s, ctx) }],
  // Answered only when on(), i.e. with metrics set.
  [ENDPOINTS.metrics, { methods: GET, on: (s) => s.services.observation.metrics !== undefined, answer: (_req, s) => metricsResponse(s.services.observation.metrics!) }],
  [ENDPOINTS.stats, { methods: GET, answer: (_req, s) => s.services.observation.statsResponse() }],
]);

const PAGE_PATHS: ReadonlySet<string> = new Set(Object.values(UI_PATHS));

/** The endpoint memproxy answers at `path` under this configuration, if any. */
function ownEndpoint(path: string, s: State): Endpoint | undefined {
  const e = OWN.get(path);
  return e && (e.on?.(s) ?? true) ? e : undefined;
}

/**
 * Whether memproxy answers this request itself (observed as its own, not as traffic): its endpoints that
 * are on and its status page (but "/" only for GET: a client's HEAD / probe goes to the backend).
 */
export function isOwnPath(path: string, method: string, s: State): boolean {
  return ownEndpoint(path, s) !== undefined || (PAGE_PATHS.has(path) && (path !== UI_PATHS.root || method === "GET"));
}

/**
 * Serves one request: the status page, memproxy's own endpoints (GET and HEAD; other methods get 405),
 * access keys, then everything else routed and forwarded.
 */
export function handle(req: Request, s: State, ctx: RequestContext): Answer {
  const foreign = s.browserGuard?.(ctx.headers);
  if (foreign) return refuse(ctx, fromBrowser(foreign, ctx.headers));
  const ui = s.services.ui;
  // The page's files hold no data: served without a key, so that the page can ask for one.
  if (ui.publicPaths.has(ctx.path)) {
    const page = ui.handle(req, ctx.path, ctx.headers);
    if (page !== undefined) return stamped(page, ctx);
  }
  const own = ownEndpoint(ctx.path, s);
  if (!own?.open && s.access && !s.access(ctx.headers)) {
    return refuse(
      ctx,
      new ProxyError(401, "unauthorized", "memproxy needs an access key: send it as Authorization: Bearer <key> or x-api-key", {
        "www-authenticate": 'Bearer realm="memproxy"',
      }),
    );
  }
  if (ui.apiPaths.has(ctx.path)) {
    return stamped(ui.handle(req, ctx.path, ctx.headers, () => ctx.liftIdleTimeout())!, ctx);
  }
  if (!own) return proxied(req, s, ctx);
  if (!own.methods.includes(req.method)) {
    return refuse(ctx, new ProxyError(405, "method_not_allowed", `${ctx.path} is memproxy's own endpoint and answers ${own.methods.join(" and ")} only`, { allow: own.methods.join(", ") }));
  }
  return stamped(own.answer(req, s, ctx), ctx);
}

function stamped(answer: Answer, ctx: RequestContext): Answer {
  return answer instanceof Response ? stamp(answer, ctx) : answer.then((res) => stamp(res, ctx));
}

/** Methods that have no meaning for an API behind a reverse proxy: a tunnel, and an echo of the request (its headers). */
const NOT_FORWARDED_METHODS: ReadonlySet<string> = new Set(["CONNECT", "TRACE", "TRACK"]);
/** What a 405 for them names as allowed (RFC 9110 section 15.5.6): the methods an API uses. */
const FORWARDED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/** A request memproxy does not answer itself: routed, checked, and forwarded. */
function proxied(req: Request, s: State, ctx: RequestContext): Answer {
  if (NOT_FORWARDED_METHODS.has(req.method)) {
    return refuse(ctx, new ProxyError(405, "method_not_allowed", `memproxy forwards API calls to LiteLLM; ${req.method} is not one, and is not forwarded`, { allow: FORWARDED_METHODS }));
  }
  const routed = s.router(ctx.headers);
  if (!routed.ok) {
    // Recorded under the id the request would have had without its custom header.
    ctx.tap.routed(routed.rejection.without_header);
    return refuse(ctx, rejection(routed.rejection));
  }
  const decision = routed.decision;
  ctx.tap.routed(decision);
  const length = contentLength(ctx.headers);
  if (length === "invalid") {
    return refuse(ctx, new ProxyError(400, "invalid_request", "The request's Content-Length header is malformed, or its copies disagree"));
  }
  const limited = checkLimits(ctx.headers, length, s.config.limits, ctx.inFlight);
  if (limited) return refuse(ctx, limited);
  const child = s.services.litellm?.();
  if (child && child.state !== "ready") return refuse(ctx, notReady(child));
  // A body is read ahead when it is small JSON (its model is logged and counted) or when another backend
  // could take it again after a refused connection. Any other body streams through unread.
  const hasBody = requestHasBody(req.method);
  const retryable = s.pool.size > 1 && length !== null && length <= s.config.backendPool.retry_body_size;
  if (hasBody && (smallJsonBody(length, ctx.headers["content-type"] ?? null) || retryable)) {
    return req.bytes().then((body) => send(req, s, ctx, decision, body, length));
  }
  return send(req, s, ctx, decision, undefined, length);
}

function send(req: Request, s: State, ctx: RequestContext, decision: RoutingDecision, body: Uint8Array | undefined, length: number | null): Promise<Response> {
  const c = s.config;
  let restore: (() => void) | undefined;
  return s.pool
    .forward(req, pathAndQuery(ctx.url), {
      clientHeaders: ctx.headers,
      body,
      contentLength: length,
      retryable: body !== undefined || !requestHasBody(req.method),
      userIdHeaders: s.userIdHeaders,
      userId: decision.user_id,
      conversationId: conversationIdFrom(ctx.headers, c.forward.conversation_headers),
      firstByteTimeoutMs: c.forward.first_byte_timeout,
      streamIdleTimeoutMs: c.forward.stream_idle_timeout,
      maxBodyBytes: length === null ? c.limits.max_body_size : undefined,
      uploadIdleTimeoutMs: c.listen.idle_timeout,
      requestId: ctx.id,
      observer: ctx.tap,
      onLongCall: () => void (restore ??= ctx.liftIdleTimeout()),
      onSettled: () => restore?.(),
    })
    .catch((err: unknown) => {
      if (err instanceof ProxyError) return refuse(ctx, err);
      throw err;
    });
}

/** memproxy's own answer to a request it refuses or could not forward, recorded with its error. */
function refuse(ctx: RequestContext, err: ProxyError): Response {
  const body = errorBody(err);
  ctx.tap.refused(err, Buffer.byteLength(body));
  return stamp(errorResponse(err, body), ctx);
}

/** Sets the request id on one of memproxy's own answers (a backend's answer gets it in forward()). */
function stamp(res: Response, ctx: RequestContext): Response {
  res.headers.set(REQUEST_ID_HEADER, ctx.id);
  return res;
}

async function health(s: State): Promise<Response> {
  const { services, config, pool } = s;
  const backends = await pool.checkAll(config.forward.health_timeout);
  const up = backends.filter((b) => b.status === "up").length;
  const child = services.litellm?.();
  const lastReload = services.lastReload();
  const healthy = up === backends.length && lastReload?.ok !== false && (!child || child.state === "ready");
  return json({
    status: child?.state === "starting" ? "starting" : healthy ? "healthy" : "degraded",
    memory_proxy: "up",
    litellm_backend: up > 0 ? "up" : "down",
    backend_url: backends[0]!.url,
    backends,
    ...(child && { litellm: child }),
    config: { source: config.source, last_reload: lastReload, warnings: config.warnings },
    // Whether LiteLLM passes the memory id on to Supermemory, as far as its config shows.
    memory_id_forwarding: s.chain?.memory_id_forwarding ?? "unknown",
    ...(s.chain && !s.chain.ok && { memory_chain_problems: s.chain.problems.filter((p) => p.severity === "error").map((p) => p.message) }),
    version: VERSION,
    pid: process.pid,
    timestamp: new Date().toISOString(),
  });
}

async function readiness(s: State): Promise<Response> {
  const backends = await s.pool.checkAll(s.config.forward.health_timeout);
  const child = s.services.litellm?.();
  const up = backends.some((b) => b.status === "up") && (!child || child.state === "ready");
  return json({ status: up ? "ready" : "not ready", litellm_backend: up ? "up" : "down" }, up ? 200 : 503);
}

function routingInfo(s: State, ctx: RequestContext): Response {
  const routed = s.router(ctx.headers);
  if (!routed.ok) return refuse(ctx, rejection(routed.rejection));
  return json({ ...routed.decision, headers: redactedHeaders(ctx.headers) });
}

/** The refusal of what a web page sent to a memproxy on loopback without keys. */
function fromBrowser(why: BrowserRefusal, headers: HeaderMap): ProxyError {
  const fix =
    "Tools reach it as http://127.0.0.1:<port> or http://localhost:<port>. To serve other names, set memproxy.access.keys, or list the name in memproxy.access.allowed_hosts";
  const shown = (value: string | undefined) => (value === undefined ? "none" : JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}...` : value));
  if (why === "host") {
    return new ProxyError(421, "misdirected_request", `memproxy listens on loopback without access keys and answers only requests addressed to this machine, not to Host ${shown(headers.host)} (a web page can make a browser send those). ${fix}.`);
  }
  const from = why === "origin" ? `Origin ${shown(headers.origin)}` : "Sec-Fetch-Site: cross-site, sent by a page of another site";
  return new ProxyError(403, "forbidden_origin", `memproxy listens on loopback without access keys and does not answer web pages (${from}). ${fix}.`);
}

/** The answer while a supervised LiteLLM is not ready: 503, and when to try again. */
function notReady(child: Readonly<SupervisorStatus>): ProxyError {
  const message =
    child.state === "failed"
      ? `LiteLLM, which memproxy supervises, has failed and is not restarted: ${child.error ?? "see memproxy's log"}`
      : child.state === "starting"
        ? "LiteLLM is starting; retry in a few seconds"
        : `LiteLLM is restarting (restart ${child.restarts}); retry in a few seconds`;
  return new ProxyError(503, "backend_starting", message, { "retry-after": child.state === "failed" ? "30" : "5" });
}

function rejection(r: RoutingRejection): ProxyError {
  return new ProxyError(r.status, r.status === 400 ? "invalid_user_id" : "forbidden_user_id", r.message);
}

/** The configured limits on one request, checked before anything is forwarded. */
function checkLimits(headers: HeaderMap, length: number | null, limits: Config["limits"], inFlight: number): ProxyError | null {
  if (inFlight > limits.max_concurrent_requests) {
    return new ProxyError(503, "overloaded", `memproxy is serving its maximum of ${limits.max_concurrent_requests} requests at once; retry shortly`, {
      "retry-after": "1",
    });
  }
  if (length !== null && length > limits.max_body_size) {
    return new ProxyError(413, "request_too_large", `The request body (${length} bytes) is larger than memproxy's limit of ${limits.max_body_size} bytes (memproxy.limits.max_body_size)`, {
      connection: "close",
    });
  }
  let headerBytes = 0;
  for (const name in headers) headerBytes += name.length + headers[name]!.length + 4;
  if (headerBytes > limits.max_header_size) {
    return new ProxyError(431, "request_too_large", `The request headers (${headerBytes} bytes) are larger than memproxy's limit of ${limits.max_header_size} bytes (memproxy.limits.max_header_size)`);
  }
  return null;
}
