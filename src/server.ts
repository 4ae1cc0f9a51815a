// The HTTP server: memproxy's own endpoints, and everything else checked, routed and forwarded.
import type { Server } from "bun";
import { compileAccess, isLoopback, type AccessCheck } from "./access.ts";
import { BackendPool, type Backend } from "./backends.ts";
import { CallGate } from "./call-gate.ts";
import type { Config } from "./config.ts";
import { ENDPOINTS } from "./endpoints.ts";
import { errorResponse, ProxyError } from "./errors.ts";
import { redactedHeaders } from "./headers.ts";
import { silentLogger, type Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { createObservability, type Exchange } from "./observe.ts";
import { BackendFailure, forward } from "./proxy.ts";
import { pathAndQuery } from "./request-target.ts";
import { compileRouter, type Router } from "./router.ts";
import type { SupervisorStatus } from "./supervisor.ts";
import { VERSION } from "./version.ts";

/** Paths memproxy answers itself (GET and HEAD); every other request is forwarded. */
export const OWN_ENDPOINTS = ENDPOINTS;

/** A running memproxy server. */
export interface ServerHandle {
  /** Base URL, e.g. http://127.0.0.1:8764. */
  readonly url: string;
  readonly port: number;
  /** The configuration requests are served with now. */
  readonly config: Config;
  /** The metrics registry (undefined when memproxy.metrics.enabled is false), e.g. for the supervisor's counters. */
  readonly metrics: Metrics | undefined;
  /**
   * Swaps in a new configuration atomically; requests in flight keep the one they started with.
   * @returns notes on settings that cannot change while running (they keep their old value).
   */
  reload(config: Config): string[];
  /** Records a failed reload, shown by GET /health until the next successful one. */
  reloadFailed(problems: string[]): void;
  /**
   * Stops accepting, lets requests in flight finish up to `drainMs`, then cuts the rest. Idempotent.
   * @returns how many requests had to be cut.
   */
  stop(drainMs?: number): Promise<{ cut: number }>;
}

/** Why the server could not start, phrased for the person running it. */
export class ListenError extends Error {
  override name = "ListenError";
}

/** Everything a request is served with; replaced whole on reload. */
interface State {
  readonly config: Config;
  readonly router: Router;
  readonly access: AccessCheck;
  readonly pool: BackendPool;
  /** Keeps backend calls on fetch's kept-alive connections. */
  readonly gate: CallGate;
  readonly userIdHeaders: readonly string[];
}

const JSON_HEADERS = { "content-type": "application/json" };
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body, null, 2) + "\n", { status, headers: JSON_HEADERS });
const NO_BODY = new Set(["GET", "HEAD"]);

/** What the server needs to know besides its configuration. */
export interface ServerOptions {
  logger?: Logger;
  metrics?: Metrics;
  /** The state of a LiteLLM that memproxy supervises: proxied requests wait for it to be ready. */
  litellm?: () => Readonly<SupervisorStatus>;
}

/**
 * Starts memproxy.
 * @param config the loaded configuration.
 * @param options the logger, a metrics registry, the supervised LiteLLM's state.
 * @returns a handle with the URL, reload and an idempotent stop.
 */
export function startServer(config: Config, options: ServerOptions = {}): ServerHandle {
  const logger = options.logger ?? silentLogger;
  const litellm = options.litellm;
  let state = buildState(config, logger);
  const observe = createObservability(config, logger, Object.values(OWN_ENDPOINTS), options.metrics);
  let lastReload: { at: string; ok: boolean; problems?: string[] } | null = null;
  if (!state.access && !isLoopback(config.listen.host)) {
    logger.warn(
      `listening on ${config.listen.host} without an access key: anyone who can reach it can use the backend and choose any memory. Set memproxy.access.keys.`,
    );
  }

  async function ownEndpoint(path: string, req: Request, s: State): Promise<Response | undefined> {
    switch (path) {
      case OWN_ENDPOINTS.liveness:
      case OWN_ENDPOINTS.livenessAlias:
        return json({ status: "alive" });
      case OWN_ENDPOINTS.health: {
        const backends = await s.pool.checkAll(s.config.forward.health_timeout);
        const up = backends.filter((b) => b.status === "up").length;
        const child = litellm?.();
        const healthy = up === backends.length && lastReload?.ok !== false && (!child || child.state === "ready");
        return json({
          status: child?.state === "starting" ? "starting" : healthy ? "healthy" : "degraded",
          memory_proxy: "up",
          litellm_backend: up > 0 ? "up" : "down",
          backend_url: backends[0]!.url,
          backends,
          ...(child && { litellm: child }),
          config: { source: s.config.source, last_reload: lastReload },
          version: VERSION,
          timestamp: new Date().toISOString(),
        });
      }
      case OWN_ENDPOINTS.readiness: {
        const backends = await s.pool.checkAll(s.config.forward.health_timeout);
        const up = backends.some((b) => b.status === "up") && (!litellm || litellm().state === "ready");
        return json({ status: up ? "ready" : "not ready", litellm_backend: up ? "up" : "down" }, up ? 200 : 503);
      }
      case OWN_ENDPOINTS.routingInfo: {
        const routed = s.router(req.headers);
        if (!routed.ok) return errorResponse(rejection(routed.rejection.status, routed.rejection.message));
        return json({ ...routed.decision, headers: redactedHeaders(req.headers) });
      }
      case OWN_ENDPOINTS.metrics:
        return observe.metricsResponse();
      case OWN_ENDPOINTS.stats:
        return observe.statsResponse();
    }
    return undefined;
  }

  // Not async: an own endpoint's answer or a refusal is returned at once, a forward's promise as it is.
  function handle(req: Request, srv: Server<undefined>, ex: Exchange): Response | Promise<Response> {
    const s = state; // this request keeps the configuration it started with
    const path = ex.path;
    if (path === OWN_ENDPOINTS.liveness || path === OWN_ENDPOINTS.livenessAlias) return json({ status: "alive" });
    if (s.access && !s.access(req.headers)) {
      return errorResponse(
        new ProxyError(401, "unauthorized", "memproxy needs an access key: send it as Authorization: Bearer <key> or x-api-key", {
          "www-authenticate": 'Bearer realm="memproxy"',
        }),
      );
    }
    if ((req.method === "GET" || req.method === "HEAD") && path in OWN_PATHS) {
      return ownEndpoint(path, req, s).then((own) => own ?? proxied(req, srv, ex, s));
    }
    return proxied(req, srv, ex, s);
  }

  /** A request memproxy does not answer itself: checked, routed and forwarded. */
  function proxied(req: Request, srv: Server<undefined>, ex: Exchange, s: State): Response | Promise<Response> {
    const contentLength = req.headers.get("content-length");
    const limited = checkLimits(req, contentLength, s.config.limits, srv.pendingRequests);
    if (limited) return errorResponse(limited);
    const child = litellm?.();
    if (child && child.state !== "ready") return errorResponse(notReady(child));
    const routed = s.router(req.headers);
    if (!routed.ok) return errorResponse(rejection(routed.rejection.status, routed.rejection.message));
    ex.routed(routed.decision);
    return forwardToPool(req, contentLength, routed.decision.user_id, s, ex, idleTimeoutLifter(srv, req, ex, idleSeconds));
  }

  async function forwardToPool(req: Request, contentLength: string | null, userId: string, s: State, ex: Exchange, onLongCall: () => void): Promise<Response> {
    const { config: c, pool } = s;
    // A body can be sent again only if it was kept: worth it when another backend could take it.
    // A small JSON body is kept too: the access line and token counters read its model afterwards.
    let body: Uint8Array | undefined;
    const length = Number(contentLength ?? NaN);
    const keep = ex.wantsBody(contentLength) || (pool.size > 1 && length <= c.backendPool.retry_body_size);
    if (keep && !NO_BODY.has(req.method)) body = await req.bytes();
    const stream = body === undefined && req.body !== null && !NO_BODY.has(req.method);
    // One slot for all attempts, held until the answer (a stream's head, or a small body whole) is in.
    const entered = s.gate.enter();
    let release;
    if (typeof entered === "function") release = entered;
    else {
      ex.keepaliveWaitStarted();
      const admission = await entered;
      release = admission.release;
      ex.keepaliveWaitEnded(admission.waitedMs, admission.gotSlot);
    }
    const target = pathAndQuery(req.url);
    // The backends tried so far, made on the first failure: most calls never need it.
    let tried: Set<Backend> | undefined;
    let next = pool.pick()!;
    try {
      for (;;) {
        const backend = next;
        backend.inFlight++;
        let answered = false;
        try {
          const res = await forward(req, target, {
            backend: backend.url,
            body: stream ? undefined : body,
            userIdHeaders: s.userIdHeaders,
            userId,
            firstByteTimeoutMs: c.forward.first_byte_timeout,
            streamIdleTimeoutMs: c.forward.stream_idle_timeout,
            maxBodyBytes: length >= 0 ? undefined : c.limits.max_body_size,
            requestId: ex.id,
            observer: ex,
            onLongCall,
          });
          pool.markUp(backend);
          // The request stays in flight on this backend until its body (a stream, perhaps) has ended.
          answered = true;
          ex.onComplete(() => backend.inFlight--);
          return res;
        } catch (err) {
          if (!(err instanceof ProxyError)) throw err;
          ex.backendFailed(err);
          if (err instanceof BackendFailure && (err.kind === "connect" || err.kind === "timeout")) {
            pool.markDown(backend, err.message);
            (tried ??= new Set()).add(backend);
            const other = err.kind === "connect" && !stream ? pool.pick(tried) : undefined;
            if (other) {
              logger.warn("backend refused the connection; retrying on another", { request_id: ex.id, backend: backend.url, next: other.url, path: ex.path });
              next = other;
              continue;
            }
          }
          return errorResponse(err);
        } finally {
          if (!answered) backend.inFlight--;
        }
      }
    } finally {
      release();
    }
  }

  const idleSeconds = Math.ceil(config.listen.idle_timeout / 1000);
  let server: Server<undefined>;
  try {
    server = Bun.serve({
      hostname: config.listen.host,
      port: config.listen.port,
      development: false,
      idleTimeout: idleSeconds,
      // memproxy checks the configured limit itself, to answer with a clear error; this is only a ceiling.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      fetch: observe.wrap(handle),
      error(err) {
        logger.error("unexpected error while handling a request", { error: String(err) });
        return new Response(
          JSON.stringify({ type: "error", error: { message: "internal error in memproxy", type: "server_error", param: null, code: null } }),
          { status: 500, headers: JSON_HEADERS },
        );
      },
    });
  } catch (err) {
    state.pool.close();
    throw listenError(config, err);
  }

  let stopping: Promise<{ cut: number }> | undefined;
  return {
    url: `http://${formatHost(server.hostname ?? config.listen.host)}:${server.port}`,
    port: server.port ?? config.listen.port,
    get config() {
      return state.config;
    },
    metrics: observe.metrics,
    reload(next) {
      const notes: string[] = [];
      const was = state.config.listen;
      if (next.listen.host !== was.host || next.listen.port !== was.port) {
        notes.push(`memproxy.listen: the listen address cannot change while running (still ${was.host}:${was.port}); restart memproxy to apply ${next.listen.host}:${next.listen.port}`);
      }
      if (next.listen.idle_timeout !== was.idle_timeout) {
        notes.push("memproxy.listen.idle_timeout: cannot change while running; restart memproxy to apply it");
      }
      const fixed = { ...next, listen: was };
      const old = state;
      state = buildState(fixed, logger, old);
      notes.push(...observe.reloaded(fixed));
      if (state.pool !== old.pool) old.pool.close();
      lastReload = { at: new Date().toISOString(), ok: true };
      observe.metrics?.configReloads.inc();
      return notes;
    },
    reloadFailed(problems) {
      lastReload = { at: new Date().toISOString(), ok: false, problems };
      observe.metrics?.configReloadFailures.inc();
    },
    stop(drainMs = state.config.shutdown.drain_timeout) {
      stopping ??= (async () => {
        const graceful = server.stop(false);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const deadline = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), drainMs)));
        const outcome = await Promise.race([graceful.then(() => "drained" as const), deadline]);
        clearTimeout(timer);
        let cut = 0;
        if (outcome === "timeout") {
          cut = server.pendingRequests;
          observe.metrics?.shutdownCut.inc(cut);
          await server.stop(true);
        }
        state.pool.close();
        return { cut };
      })();
      return stopping;
    },
  };
}

const OWN_PATHS: Record<string, true> = Object.fromEntries(Object.values(OWN_ENDPOINTS).map((p) => [p, true]));

function buildState(config: Config, logger: Logger, previous?: State): State {
  const sameBackends = previous && previous.config.backends.join("\n") === config.backends.join("\n");
  const pool =
    sameBackends && previous.config.backendPool.cooldown === config.backendPool.cooldown
      ? previous.pool
      : new BackendPool(config.backends, {
          cooldownMs: config.backendPool.cooldown,
          probeTimeoutMs: config.forward.health_timeout,
          onChange: (b, up, reason) =>
            up ? logger.info("backend is up again", { backend: b.url }) : logger.warn("backend marked down", { backend: b.url, reason }),
        });
  const { keepalive_limit: limit, keepalive_wait: wait } = config.forward;
  const gate = previous && previous.gate.limit === limit && previous.gate.waitMs === wait ? previous.gate : new CallGate(limit, wait);
  return {
    config,
    router: compileRouter(config.routing, config.access),
    access: compileAccess(config.access.keys),
    pool,
    gate,
    userIdHeaders: [config.forward.user_id_header, ...config.forward.also_send_user_id_as],
  };
}

/**
 * An LLM may think for minutes before its first byte or between events: a backend call that turns out
 * long (forward()'s onLongCall) lifts its client connection's idle timeout, which comes back once the
 * exchange is over (keep-alive idling). A quick answer never touches it: two calls into Bun saved, and
 * the timeout (at least 1 s) cannot run out within the CLIENT_WATCH_MS before a slow call is lifted.
 */
function idleTimeoutLifter(srv: Server<undefined>, req: Request, ex: Exchange, seconds: number): () => void {
  let lifted = false;
  return () => {
    if (lifted) return;
    lifted = true;
    try {
      srv.timeout(req, 0);
    } catch {
      return; // the connection is already gone
    }
    ex.onComplete(() => restoreIdleTimeout(srv, req, seconds));
  };
}

function restoreIdleTimeout(srv: Server<undefined>, req: Request, seconds: number): void {
  try {
    srv.timeout(req, seconds);
  } catch {
    // the connection is already gone
  }
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

function rejection(status: 400 | 403, message: string): ProxyError {
  return new ProxyError(status, status === 400 ? "invalid_user_id" : "forbidden_user_id", message);
}

/** The configured limits on one request, checked before anything is forwarded. */
function checkLimits(req: Request, length: string | null, limits: Config["limits"], pending: number): ProxyError | null {
  if (pending > limits.max_concurrent_requests) {
    return new ProxyError(503, "overloaded", `memproxy is serving its maximum of ${limits.max_concurrent_requests} requests at once; retry shortly`, {
      "retry-after": "1",
    });
  }
  if (length !== null && Number(length) > limits.max_body_size) {
    return new ProxyError(413, "request_too_large", `The request body (${length} bytes) is larger than memproxy's limit of ${limits.max_body_size} bytes (memproxy.limits.max_body_size)`, {
      connection: "close",
    });
  }
  let headerBytes = 0;
  // forEach: no [name, value] array per header, as iteration makes.
  req.headers.forEach((value, name) => void (headerBytes += name.length + value.length + 4));
  if (headerBytes > limits.max_header_size) {
    return new ProxyError(431, "request_too_large", `The request headers (${headerBytes} bytes) are larger than memproxy's limit of ${limits.max_header_size} bytes (memproxy.limits.max_header_size)`);
  }
  return null;
}

function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

function listenError(config: Config, err: unknown): ListenError {
  const where = `${config.listen.host}:${config.listen.port}`;
  const code = (err as { code?: string }).code;
  if (code === "EADDRINUSE") {
    return new ListenError(
      `cannot listen on ${where}: the port is already in use. Stop the other program, or choose another port with --port or memproxy.listen.port in ${config.source}.`,
    );
  }
  if (code === "EADDRNOTAVAIL") {
    return new ListenError(`cannot listen on ${where}: no such address on this machine. Check --host or memproxy.listen.host in ${config.source}.`);
  }
  if (code === "EACCES") {
    return new ListenError(`cannot listen on ${where}: permission denied. Ports below 1024 need privileges; choose a higher port.`);
  }
  return new ListenError(`cannot listen on ${where}: ${(err as Error).message}`);
}
