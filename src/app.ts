// The whole memproxy stack in one process: the server and, when asked, the LiteLLM it supervises.
import { resolve } from "node:path";
import { EMBEDDED_CONFIG_NAME, litellmUrl, reconcile, type Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { startServer, type ServerHandle } from "./server.ts";
import { portFree, Supervisor, SupervisorError } from "./supervisor.ts";

/** A running memproxy. */
export interface App {
  readonly server: ServerHandle;
  readonly supervisor: Supervisor | undefined;
  /** Resolves once the backend can be used (at once without a supervised LiteLLM); rejects if it never can. */
  readonly ready: Promise<void>;
  /** Resolves if the supervised LiteLLM is given up on after it was running. */
  readonly failed: Promise<SupervisorError>;
  /**
   * Applies a newly loaded configuration, keeping the settings that apply only at start.
   * @returns notes on what could not change while running.
   */
  reload(config: Config): string[];
  /**
   * Drains the server, then stops LiteLLM. Idempotent.
   * @returns requests cut at the drain timeout, and whether LiteLLM stopped within its timeout.
   */
  stop(): Promise<{ cut: number; clean: boolean }>;
}

/**
 * The command that starts LiteLLM on the same config file, on loopback unless configured otherwise.
 * Host and port are always passed: LiteLLM would otherwise read HOST and PORT from the environment.
 */
export function litellmCommand(config: Config): string[] {
  const l = config.litellm;
  const file = l.config ?? (config.source === EMBEDDED_CONFIG_NAME ? undefined : config.source);
  if (file === undefined) throw new SupervisorError("starting LiteLLM needs a config file with its model_list: pass --config FILE");
  const command = typeof l.command === "string" ? [l.command] : l.command;
  return [...command, "--config", resolve(file), "--host", l.host, "--port", String(l.port), ...l.args];
}

/**
 * Starts memproxy: checks that LiteLLM's port is free, starts LiteLLM, then the server (which answers 503
 * until LiteLLM is ready).
 * @throws SupervisorError when LiteLLM cannot be started at all; ListenError when memproxy cannot listen
 *   (LiteLLM is then stopped again).
 */
export function startApp(config: Config, logger: Logger): App {
  const metrics = config.metrics.enabled ? new Metrics({ maxUserLabels: config.metrics.max_user_labels }) : undefined;
  let supervisor: Supervisor | undefined;
  if (config.litellm.spawn) {
    const l = config.litellm;
    const command = litellmCommand(config);
    if (!portFree(l.host, l.port)) {
      throw new SupervisorError(
        `cannot start LiteLLM on ${l.host}:${l.port}: the port is already in use (is another LiteLLM running?). Stop it, or choose another port with --litellm-port or memproxy.litellm.port.`,
      );
    }
    supervisor = new Supervisor({
      command,
      // A fresh cost map download would delay every start; the bundled one is current enough.
      env: { LITELLM_LOCAL_MODEL_COST_MAP: process.env.LITELLM_LOCAL_MODEL_COST_MAP ?? "True", ...l.env },
      url: litellmUrl(l),
      readyTimeoutMs: l.ready_timeout,
      stopTimeoutMs: l.stop_timeout,
      restart: {
        initialBackoffMs: l.restart.initial_backoff,
        maxBackoffMs: l.restart.max_backoff,
        maxRestarts: l.restart.max_restarts,
        windowMs: l.restart.window,
      },
      logger,
      accessLog: l.access_log,
      onRestart: () => metrics?.supervisorRestarts.inc(),
    });
  }
  if (supervisor) logger.info("starting LiteLLM", { command: litellmCommand(config).join(" ") });
  const ready = supervisor ? supervisor.start() : Promise.resolve();
  let server: ServerHandle;
  try {
    server = startServer(config, { logger, metrics, litellm: supervisor && (() => supervisor.status()) });
  } catch (err) {
    ready.catch(() => {});
    void supervisor?.stop();
    throw err;
  }
  const failed = new Promise<SupervisorError>((r) => supervisor?.onFailed(r));
  let stopping: Promise<{ cut: number; clean: boolean }> | undefined;
  return {
    server,
    supervisor,
    ready,
    failed,
    reload(next) {
      const { config: applied, notes } = reconcile(server.config, next);
      server.reload(applied);
      return notes;
    },
    stop() {
      stopping ??= (async () => {
        const { cut } = await server.stop();
        const { clean } = supervisor ? await supervisor.stop() : { clean: true };
        return { cut, clean };
      })();
      return stopping;
    },
  };
}
