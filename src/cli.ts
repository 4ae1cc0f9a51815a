// The command line: a thin shell over the library. Only this file reads argv, handles signals and exits.
import { parseArgs } from "node:util";
import { startApp, type App } from "./app.ts";
import { ConfigError, litellmUrl, loadConfig, type Config } from "./config.ts";
import { createLogger } from "./log.ts";
import { compileRouter } from "./router.ts";
import { watchFile } from "./reload.ts";
import { ListenError, startServer } from "./server.ts";
import { serviceCommand } from "./service.ts";
import { SupervisorError } from "./supervisor.ts";
import { VERSION } from "./version.ts";

const HELP = `memproxy ${VERSION}: memory-routing proxy for AI coding tools, in front of LiteLLM.

Usage:
  memproxy [--config FILE] [--host H] [--port N] [--backend URL]
  memproxy check --config FILE
  memproxy explain [--config FILE] -H 'User-Agent: ...' [-H 'Name: value' ...]
  memproxy service install [--config FILE] [--dry-run] | service uninstall | service status
  memproxy --help | --version

Commands:
  (none)     run the proxy (the embedded default config when --config is not given)
  check      validate a config file and summarise it; exit 1 with the problems if invalid
  explain    print the routing decision for the given request headers, without a server
  service    run memproxy in the background: a systemd user service (Linux) or a launchd agent (macOS)

Options:
  -c, --config FILE   YAML config, shared with LiteLLM (user_id_mappings, litellm_backend_url, memproxy)
      --host H        listen address (default 127.0.0.1)
  -p, --port N        listen port (default 8764)
      --backend URL   LiteLLM's URL (default http://127.0.0.1:8765)
      --spawn-litellm start LiteLLM on the same config file and supervise it (memproxy.litellm.spawn)
      --litellm-command PATH  the LiteLLM executable (default: litellm on PATH)
      --litellm-port N        the port LiteLLM listens on, on 127.0.0.1 (default 8765)
  -H, --header 'N: V' a request header, for explain (repeatable)
  -h, --help          show this help
  -v, --version       print the version
`;

/** Where the CLI writes; tests pass their own. */
export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
}
const processIO: CliIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

class UsageError extends Error {}

/**
 * Runs memproxy's command line.
 * @param argv the arguments after the executable.
 * @returns the exit code (0 ok, 1 failure, 2 usage error).
 */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  // service has options of its own (--dry-run, ...).
  if (argv[0] === "service") return serviceCommand(argv.slice(1), io);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: "string", short: "c" },
        host: { type: "string" },
        port: { type: "string", short: "p" },
        backend: { type: "string" },
        "spawn-litellm": { type: "boolean" },
        "litellm-command": { type: "string" },
        "litellm-port": { type: "string" },
        header: { type: "string", short: "H", multiple: true },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
      },
    });
  } catch (err) {
    io.err(`memproxy: ${(err as Error).message}\nRun 'memproxy --help' for usage.\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) return io.out(HELP), 0;
  if (values.version) return io.out(`${VERSION}\n`), 0;
  const [command = "run", ...rest] = positionals;
  if (rest.length) return usage(io, `unexpected argument '${rest[0]}'`);

  try {
    switch (command) {
      case "run":
        return await run(await configWithOverrides(values), values, io);
      case "check":
        if (!values.config) return usage(io, "check needs --config FILE");
        return check(await configWithOverrides(values), io);
      case "explain":
        return explain(await configWithOverrides(values), values.header ?? [], io);
      default:
        return usage(io, `unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`${err.problems.join("\n")}\nmemproxy: the configuration is invalid; nothing was started.\n`);
      return 1;
    }
    if (err instanceof UsageError) return usage(io, err.message);
    if (err instanceof ListenError) {
      io.err(`memproxy: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function usage(io: CliIO, message: string): number {
  io.err(`memproxy: ${message}\nRun 'memproxy --help' for usage.\n`);
  return 2;
}

async function configWithOverrides(values: Options): Promise<Config> {
  const config = await loadConfig(values.config);
  const listen = { ...config.listen };
  if (values.host !== undefined) listen.host = values.host;
  if (values.port !== undefined) {
    if (!/^\d+$/.test(values.port) || Number(values.port) > 65535) throw new UsageError(`--port: expected a port number from 0 to 65535, got '${values.port}'`);
    listen.port = Number(values.port);
  }
  let backends = config.backends;
  if (values.backend !== undefined) {
    let u: URL;
    try {
      u = new URL(values.backend);
    } catch {
      throw new UsageError(`--backend: expected an http:// or https:// URL, got '${values.backend}'`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new UsageError(`--backend: expected an http:// or https:// URL, got '${values.backend}'`);
    backends = [values.backend.replace(/\/+$/, "")];
  }
  const litellm = { ...config.litellm };
  if (values["spawn-litellm"]) litellm.spawn = true;
  if (values["litellm-command"] !== undefined) litellm.command = values["litellm-command"];
  if (values["litellm-port"] !== undefined) {
    const p = values["litellm-port"];
    if (!/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw new UsageError(`--litellm-port: expected a port number from 1 to 65535, got '${p}'`);
    litellm.port = Number(p);
  }
  // Without an explicit backend, memproxy forwards to the LiteLLM it starts.
  if (litellm.spawn && !config.backendExplicit && values.backend === undefined) backends = [litellmUrl(litellm)];
  return { ...config, listen, backends, litellm };
}

type Options = {
  config?: string;
  host?: string;
  port?: string;
  backend?: string;
  "spawn-litellm"?: boolean;
  "litellm-command"?: string;
  "litellm-port"?: string;
};

async function run(config: Config, values: Options, io: CliIO): Promise<number> {
  const { level, format } = config.logging;
  const logger = createLogger({ level, format: format === "auto" ? undefined : format });

  // Signals are taken before anything starts, so none is missed. The first SIGINT/SIGTERM drains;
  // a second one exits at once. SIGHUP re-reads the config file.
  const pending: NodeJS.Signals[] = [];
  let wake: (() => void) | undefined;
  let shuttingDown = false;
  const onSignal = (sig: NodeJS.Signals) => () => {
    if (shuttingDown && sig !== "SIGHUP") {
      io.err(`memproxy: second ${sig}, exiting at once\n`);
      process.exit(1);
    }
    pending.push(sig);
    wake?.();
  };
  const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((sig) => [sig, onSignal(sig)] as const);
  for (const [sig, h] of handlers) process.on(sig, h);
  const nextSignal = async () => {
    while (!pending.length) await new Promise<void>((r) => (wake = r));
    return pending.shift()!;
  };

  let app: App;
  try {
    app = startApp(config, logger);
  } catch (err) {
    for (const [sig, h] of handlers) process.off(sig, h);
    if (err instanceof SupervisorError) return io.err(`memproxy: ${err.message}\n`), 1;
    throw err;
  }
  logger.info(`memproxy ${VERSION} listening on ${app.server.url}`, {
    url: app.server.url,
    backend: config.backends.join(", "),
    config: config.source,
  });

  let lastText: string | undefined;
  const reload = async (why: string) => {
    if (!values.config) return logger.info(`${why}: running on the embedded default config, nothing to reload`);
    try {
      const text = await Bun.file(values.config).text().catch(() => undefined);
      // The watch reports any change in the folder: act only when this file's text changed.
      if (why === "file changed" && text !== undefined && text === lastText) return;
      lastText = text;
      const next = await configWithOverrides(values);
      const notes = app.reload(next);
      logger.info("config reloaded", { reason: why, config: next.source });
      for (const note of notes) logger.warn(note);
    } catch (err) {
      if (!(err instanceof ConfigError || err instanceof UsageError)) throw err;
      const problems = err instanceof ConfigError ? err.problems : [err.message];
      app.server.reloadFailed(problems);
      logger.error("config reload failed; still serving with the previous config", { reason: why, problems });
    }
  };
  if (values.config) lastText = await Bun.file(values.config).text().catch(() => undefined);
  const unwatch = values.config && config.reload.watch ? watchFile(values.config, () => void reload("file changed")) : undefined;

  const signalled = (async () => {
    let signal: NodeJS.Signals;
    while ((signal = await nextSignal()) === "SIGHUP") await reload("SIGHUP");
    return { signal };
  })();
  const broken = Promise.race([app.ready.then(() => new Promise<never>(() => {})), app.failed]).then(
    (err) => ({ error: err }),
    (err: unknown) => ({ error: err }),
  );
  const outcome = await Promise.race([signalled, broken]);
  shuttingDown = true;
  unwatch?.();
  if ("error" in outcome) {
    logger.error(outcome.error instanceof Error ? outcome.error.message : String(outcome.error));
    io.err(`memproxy: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}\n`);
  } else {
    logger.info(`received ${outcome.signal}, shutting down`, { drain_timeout_ms: app.server.config.shutdown.drain_timeout });
  }
  const { cut, clean } = await app.stop();
  if (cut) logger.warn(`cut ${cut} request(s) still in flight after the drain timeout`, { cut });
  if (!clean) logger.warn("LiteLLM had to be killed: it did not stop within memproxy.litellm.stop_timeout");
  for (const [sig, h] of handlers) process.off(sig, h);
  logger.info("stopped");
  return "error" in outcome || !clean ? 1 : 0;
}

function check(config: Config, io: CliIO): number {
  const r = config.routing;
  const lines = [
    `${config.source}: OK`,
    `  listen:           ${config.listen.host}:${config.listen.port}`,
    `  backend:          ${config.backends.join(", ")}`,
    `  custom header:    ${r.custom_header}`,
    `  user id headers:  ${[config.forward.user_id_header, ...config.forward.also_send_user_id_as].join(", ")}`,
    `  patterns:         ${r.header_patterns.length}`,
    ...r.header_patterns.map((p, i) => `    [${i}] ${p.header} ~ ${JSON.stringify(p.pattern)} -> ${p.user_id}`),
    `  default user id:  ${r.default_user_id}`,
    `  litellm:          ${config.litellm.spawn ? `started by memproxy on ${config.litellm.host}:${config.litellm.port}` : "not started by memproxy"}`,
  ];
  io.out(lines.join("\n") + "\n");
  return 0;
}

function explain(config: Config, rawHeaders: string[], io: CliIO): number {
  const headers = new Headers();
  for (const h of rawHeaders) {
    const colon = h.indexOf(":");
    if (colon <= 0) throw new UsageError(`-H: expected 'Name: value', got '${h}'`);
    try {
      headers.append(h.slice(0, colon).trim(), h.slice(colon + 1).trim());
    } catch {
      throw new UsageError(`-H: not a valid header: '${h}'`);
    }
  }
  const routed = compileRouter(config.routing)(headers);
  if (!routed.ok) {
    io.err(`memproxy: ${routed.rejection.message}\n`);
    return 1;
  }
  io.out(JSON.stringify(routed.decision, null, 2) + "\n");
  return 0;
}
