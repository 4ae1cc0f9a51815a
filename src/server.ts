// The HTTP server: listens, hands each request to the handler with the state of the moment, swaps the state
// on reload, and drains on stop.
import type { Server } from "bun";
import { browserGuard, compileAccess, isLoopback } from "./access.ts";
import { urlOf } from "./address.ts";
import { BackendPool, type BackendStatus } from "./backends.ts";
import { EMBEDDED_CONFIG_NAME, type Config } from "./config.ts";
import { internalErrorResponse } from "./errors.ts";
import { handle, isOwnPath, type RequestContext, type Services, type State } from "./handler.ts";
import { headerMap, type HeaderMap } from "./http.ts";
import { silentLogger, type Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { Observation, type Exchange } from "./observe.ts";
import { REQUEST_ID_HEADER, requestIdFor } from "./request-id.ts";
import { pathOf } from "./request-target.ts";
import { routerFor } from "./router.ts";
import { readFileSync } from "node:fs";
import { chainOf, type ChainReport } from "./litellm-config.ts";
import { memoryChainInfo, StatusBoard } from "./status.ts";
import type { SupervisorStatus } from "./supervisor.ts";
import { createUi, type Ui } from "./ui.ts";
import { VERSION } from "./version.ts";

/** A running memproxy server. */
export interface ServerHandle {
  /** Base URL, e.g. http://127.0.0.1:8764. */
  readonly url: string;
  readonly port: number;
  /** The configuration requests are served with now. */
  readonly config: Config;
  /** The memory chain report of that configuration (what /health and the status page show); undefined when memproxy cannot see LiteLLM's config. */
  readonly chain: ChainReport | undefined;
  /** The metrics registry (undefined when memproxy.metrics.enabled is false), e.g. for the supervisor's counters. */
  readonly metrics: Metrics | undefined;
  /**
   * Swaps in a new configuration atomically; requests in flight keep the one they started with. The caller
   * has kept the settings that apply only at start (config.ts reconcile()).
   */
  reload(config: Config): void;
  /** Records a failed reload, shown by GET /health until the next successful one. */
  reloadFailed(problems: string[]): void;
  /** Asks every backend whether it is alive now; what is found stays for GET /health. */
  probeBackends(): Promise<BackendStatus[]>;
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

/** What the server needs to know besides its configuration. */
export interface ServerOptions {
  logger?: Logger;
  metrics?: Metrics;
  /** The state of a LiteLLM that memproxy supervises: proxied requests wait for it to be ready. */
  litellm?: () => Readonly<SupervisorStatus>;
  /** The environment LiteLLM's config is read with (default process.env). */
  env?: Record<string, string | undefined>;
}

/**
 * Starts memproxy's server.
 * @param config the loaded configuration.
 * @param options the logger, a metrics registry, the supervised LiteLLM's state.
 * @returns a handle with the URL, reload and an idempotent stop.
 * @throws ListenError when it cannot listen (port in use, no such address, ...).
 */
export function startServer(config: Config, options: ServerOptions = {}): ServerHandle {
  const logger = options.logger ?? silentLogger;
  const env = options.env ?? process.env;
  let lastReload: { at: string; ok: boolean; problems?: string[] } | null = null;
  let loadedAt = new Date().toISOString();
  /** Where it listens, once it does (the configured port may be 0). */
  let listening = `${config.listen.host}:${config.listen.port}`;
  const board = new StatusBoard(
    {
      backends: () => state.pool.status(),
      litellm: () => options.litellm?.() ?? null,
      config: () => ({
        file: state.config.source,
        loaded_at: loadedAt,
        last_reload: lastReload,
        listen: listening,
        custom_header: state.config.routing.custom_header,
        default_user_id: state.config.routing.default_user_id,
        rules: state.config.routing.header_patterns.length,
        access_keys: state.config.access.keys.length > 0,
      }),
      memoryChain: () => memoryChainInfo(state.chain, state.config.source),
    },
    { version: VERSION },
  );
  const observation = new Observation(logger, config, options.metrics, board);
  const ui = createUi(board, (headers) => state.router(headers));
  const services: Services = { observation, litellm: options.litellm, lastReload: () => lastReload, ui };
  let state = buildState(config, services, logger, env);
  if (!state.access && !isLoopback(config.listen.host)) {
    logger.warn(
      `listening on ${config.listen.host} without an access key: anyone who can reach it can use the backend and choose any memory. Set memproxy.access.keys.`,
    );
  }

  const idleSeconds = Math.ceil(config.listen.idle_timeout / 1000);
  const fetch = (req: Request, srv: Server<undefined>): Response | Promise<Response> => {
    const s = state; // this request keeps the configuration it started with
    const headers = headerMap(req.headers);
    const url = req.url;
    const path = pathOf(url);
    const id = requestIdFor(headers);
    const ctx = new Call(req, srv, id, url, path, headers, observation.begin(req, id, path, headers, isOwnPath(path, req.method, s)), idleSeconds, ui);
    let res: Response | Promise<Response>;
    try {
      res = handle(req, s, ctx);
    } catch (err) {
      return ctx.failed(err);
    }
    return res instanceof Response ? ctx.answered(res) : res.then(ctx.answered, ctx.failed);
  };

  let server: Server<undefined>;
  try {
    server = Bun.serve({
      hostname: config.listen.host,
      port: config.listen.port,
      // Two servers on one port would split the requests between them: a port in use is an error.
      reusePort: false,
      development: false,
      idleTimeout: idleSeconds,
      // memproxy checks the configured limit itself, to answer with a clear error; this is only a ceiling.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      fetch,
      error(err) {
        logger.error("unexpected error while handling a request", { error: String(err) });
        return internalErrorResponse();
      },
    });
  } catch (err) {
    state.pool.close();
    throw listenError(config, err);
  }

  listening = `${server.hostname ?? config.listen.host}:${server.port ?? config.listen.port}`;
  let stopping: Promise<{ cut: number }> | undefined;
  return {
    url: urlOf(server.hostname ?? config.listen.host, server.port ?? config.listen.port),
    port: server.port ?? config.listen.port,
    get config() {
      return state.config;
    },
    get chain() {
      return state.chain;
    },
    metrics: observation.metrics,
    reload(next) {
      const old = state;
      state = buildState(next, services, logger, env, old);
      loadedAt = new Date().toISOString();
      observation.reloaded(next);
      if (state.pool !== old.pool) old.pool.close();
      lastReload = { at: new Date().toISOString(), ok: true };
      observation.metrics?.configReloads.inc();
    },
    probeBackends() {
      return state.pool.checkAll(state.config.forward.health_timeout);
    },
    reloadFailed(problems) {
      lastReload = { at: new Date().toISOString(), ok: false, problems };
      observation.metrics?.configReloadFailures.inc();
    },
    stop(drainMs = state.config.shutdown.drain_timeout) {
      stopping ??= (async () => {
        // Open status pages end their streams first: they are not requests in flight to wait for.
        board.close();
        const graceful = server.stop(false);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const deadline = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), drainMs)));
        const outcome = await Promise.race([graceful.then(() => "drained" as const), deadline]);
        clearTimeout(timer);
        let cut = 0;
        if (outcome === "timeout") {
          cut = server.pendingRequests;
          observation.metrics?.shutdownCut.inc(cut);
          await server.stop(true);
        }
        state.pool.close();
        return { cut };
      })();
      return stopping;
    },
  };
}

/**
 * The state requests are served with, for a configuration: its router, access check, backend pool (kept from
 * `previous` when its settings are the same) and memory chain report.
 */
export function buildState(config: Config, services: Services, logger: Logger, env: Record<string, string | undefined>, previous?: State): State {
  const poolOptions = {
    cooldownMs: config.backendPool.cooldown,
    probeTimeoutMs: config.forward.health_timeout,
    keepaliveLimit: config.forward.keepalive_limit,
    keepaliveWaitMs: config.forward.keepalive_wait,
  };
  const pool =
    previous && previous.pool.sameAs(config.backends, poolOptions)
      ? previous.pool
      : new BackendPool(config.backends, {
          ...poolOptions,
          onChange: (url, up, reason) => (up ? logger.info("backend is up again", { backend: url }) : logger.warn("backend marked down", { backend: url, reason })),
        });
  return {
    config,
    router: routerFor(config),
    access: compileAccess(config.access.keys),
    browserGuard: !config.access.keys.length && isLoopback(config.listen.host) ? browserGuard(config.access.allowed_hosts) : null,
    pool,
    userIdHeaders: [config.forward.user_id_header, ...config.forward.also_send_user_id_as],
    chain: chainOf(config, { ...env, ...config.litellm.env }, (path) => readFileSync(path, "utf8")),
    services,
  };
}

/** One request on this server: the handler's RequestContext, and how its answer (or failure) is sent. */
class Call implements RequestContext {
  constructor(
    private readonly req: Request,
    private readonly srv: Server<undefined>,
    readonly id: string,
    readonly url: string,
    readonly path: string,
    readonly headers: HeaderMap,
    readonly tap: Exchange,
    private readonly idleSeconds: number,
    private readonly ui: Ui,
  ) {}

  /** Requests being served, without the status pages' event streams (they have a limit of their own). */
  get inFlight(): number {
    return this.srv.pendingRequests - this.ui.openPages;
  }

  /**
   * An LLM may think for minutes before its first byte or between events: a backend call that turns out long
   * lifts its client connection's idle timeout for as long as it runs. The timeout (at least 1 s) cannot run
   * out before a slow call is lifted (forward's CLIENT_WATCH_MS).
   * @returns what puts the timeout back (keep-alive idling), to run once the call is over.
   */
  liftIdleTimeout(): () => void {
    const { srv, req, idleSeconds } = this;
    try {
      srv.timeout(req, 0);
    } catch {
      return () => {}; // the connection is already gone
    }
    return () => {
      try {
        srv.timeout(req, idleSeconds);
      } catch {
        // the connection is already gone
      }
    };
  }

  /** The answer is about to be sent: the tap records it. */
  readonly answered = (res: Response): Response => {
    this.tap.answered(res);
    return res;
  };

  /** The handler threw: reading the body throws when the client leaves mid-upload (a client gone), else a 500. */
  readonly failed = (err: unknown): Response => {
    if (this.req.signal.aborted) {
      this.tap.clientLeft();
      return this.answered(new Response(null, { status: 499 }));
    }
    this.tap.crashed(err);
    const res = internalErrorResponse();
    res.headers.set(REQUEST_ID_HEADER, this.id);
    return this.answered(res);
  };
}

function listenError(config: Config, err: unknown): ListenError {
  const where = `${config.listen.host}:${config.listen.port}`;
  const code = (err as { code?: string }).code;
  if (code === "EADDRINUSE") {
    // The embedded default config cannot be edited: only the flag is a way out then.
    const choose = config.source === EMBEDDED_CONFIG_NAME ? "--port" : `--port or memproxy.listen.port in ${config.source}`;
    return new ListenError(
      `cannot listen on ${where}: the port is already in use (another memproxy, perhaps the service?). Stop the other program, or choose another port with ${choose}.`,
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
