// The HTTP server: memproxy's own endpoints, and everything else routed and forwarded to the backend.
import type { Server } from "bun";
import type { Config } from "./config.ts";
import { errorResponse, ProxyError } from "./errors.ts";
import { redactedHeaders } from "./headers.ts";
import { silentLogger, type Logger } from "./log.ts";
import { forward } from "./proxy.ts";
import { compileRouter, type Router } from "./router.ts";
import { VERSION } from "./version.ts";

/** Paths memproxy answers itself (GET and HEAD); every other request is forwarded. */
export const OWN_ENDPOINTS = {
  health: "/health",
  liveness: "/health/liveliness",
  livenessAlias: "/health/liveness",
  readiness: "/health/readiness",
  routingInfo: "/memory-routing/info",
} as const;

/** A running memproxy server. */
export interface ServerHandle {
  /** Base URL, e.g. http://127.0.0.1:8764. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, lets requests in flight finish up to `drainMs`, then cuts the rest. Idempotent. */
  stop(drainMs?: number): Promise<void>;
}

/** Why the server could not start, phrased for the person running it. */
export class ListenError extends Error {
  override name = "ListenError";
}

const JSON_HEADERS = { "content-type": "application/json" };
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body, null, 2) + "\n", { status, headers: JSON_HEADERS });

/**
 * Starts memproxy.
 * @param config the loaded configuration.
 * @param options logger, and the shared fetch for health checks.
 * @returns a handle with the URL and an idempotent stop.
 */
export function startServer(config: Config, options: { logger?: Logger } = {}): ServerHandle {
  const logger = options.logger ?? silentLogger;
  const router: Router = compileRouter(config.routing);
  const backend = config.backends[0]!;
  const userIdHeaders = [config.forward.user_id_header, ...config.forward.also_send_user_id_as];

  async function backendAlive(): Promise<boolean> {
    try {
      const res = await fetch(`${backend}/health/liveliness`, {
        signal: AbortSignal.timeout(config.forward.health_timeout),
        headers: { "accept-encoding": "identity" },
      });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  }

  async function ownEndpoint(path: string, req: Request): Promise<Response | undefined> {
    switch (path) {
      case OWN_ENDPOINTS.health: {
        const up = await backendAlive();
        return json({
          status: up ? "healthy" : "degraded",
          memory_proxy: "up",
          litellm_backend: up ? "up" : "down",
          backend_url: backend,
          version: VERSION,
          timestamp: new Date().toISOString(),
        });
      }
      case OWN_ENDPOINTS.liveness:
      case OWN_ENDPOINTS.livenessAlias:
        return json({ status: "alive" });
      case OWN_ENDPOINTS.readiness: {
        const up = await backendAlive();
        return json({ status: up ? "ready" : "not ready", litellm_backend: up ? "up" : "down" }, up ? 200 : 503);
      }
      case OWN_ENDPOINTS.routingInfo: {
        const routed = router(req.headers);
        if (!routed.ok) return errorResponse(new ProxyError(400, "invalid_user_id", routed.rejection.message));
        return json({ ...routed.decision, headers: redactedHeaders(req.headers) });
      }
    }
    return undefined;
  }

  let server: Server<undefined>;
  try {
    server = Bun.serve({
      hostname: config.listen.host,
      port: config.listen.port,
      development: false,
      idleTimeout: Math.ceil(config.listen.idle_timeout / 1000),
      // Large request bodies (images) stream through; the limit is only a guard.
      maxRequestBodySize: 1024 * 1024 * 1024,
      async fetch(req, srv) {
        const url = new URL(req.url);
        if (req.method === "GET" || req.method === "HEAD") {
          const own = await ownEndpoint(url.pathname, req);
          if (own) return own;
        }
        const routed = router(req.headers);
        if (!routed.ok) return errorResponse(new ProxyError(400, "invalid_user_id", routed.rejection.message));
        // An LLM may think for minutes before its first byte or between events: no idle cut here.
        srv.timeout(req, 0);
        try {
          return await forward(req, url, {
            backend,
            userIdHeaders,
            userId: routed.decision.user_id,
            firstByteTimeoutMs: config.forward.first_byte_timeout,
            streamIdleTimeoutMs: config.forward.stream_idle_timeout,
          });
        } catch (err) {
          if (err instanceof ProxyError) {
            if (err.status >= 500) logger.warn("backend request failed", { status: err.status, error: err.message, path: url.pathname });
            return errorResponse(err);
          }
          throw err;
        }
      },
      error(err) {
        logger.error("unexpected error while handling a request", { error: String(err) });
        return new Response(
          JSON.stringify({ type: "error", error: { message: "internal error in memproxy", type: "server_error", param: null, code: null } }),
          { status: 500, headers: JSON_HEADERS },
        );
      },
    });
  } catch (err) {
    throw listenError(config, err);
  }

  let stopping: Promise<void> | undefined;
  return {
    url: `http://${formatHost(server.hostname ?? config.listen.host)}:${server.port}`,
    port: server.port ?? config.listen.port,
    stop(drainMs = 10_000) {
      stopping ??= (async () => {
        const graceful = server.stop(false);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const deadline = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), drainMs)));
        const outcome = await Promise.race([graceful.then(() => "drained" as const), deadline]);
        clearTimeout(timer);
        if (outcome === "timeout") await server.stop(true);
      })();
      return stopping;
    },
  };
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
