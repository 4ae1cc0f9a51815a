// The command line: a thin shell over the library. Only this file reads argv, handles signals and exits.
import { ArgsError, readArgs } from "./args.ts";
import { readFileSync } from "node:fs";
import { shownUrls, urlOf } from "./address.ts";
import { startApp, type App } from "./app.ts";
import { ConfigError, fileProblem, loadConfig, parseConfig, readConfigText, USER_ID_RULE, type Config, type ConfigOverride } from "./config.ts";
import { runDoctor } from "./doctor.ts";
import { chainOf, chainProblemLines, litellmDocumentOf, type ChainReport } from "./litellm-config.ts";
import { headerMap } from "./http.ts";
import { createLogger, type Logger } from "./log.ts";
import { compileAutomaton, compilePattern } from "./pattern.ts";
import { ConfigReloader } from "./reload.ts";
import { routerFor } from "./router.ts";
import { ListenError } from "./server.ts";
import { serviceCommand } from "./service.ts";
import { setupList, setupText } from "./setup.ts";
import { SupervisorError } from "./supervisor.ts";
import { BUILTIN_RULES } from "./tools.ts";
import { VERSION, versionText } from "./version.ts";

const HELP = `memproxy ${VERSION}: memory-routing proxy for AI coding tools, in front of LiteLLM.

Usage:
  memproxy [--config FILE] [--host H] [--port N] [--backend URL] [--spawn-litellm]
           [--litellm-command PATH] [--litellm-port N]
  memproxy check [--config FILE]
  memproxy explain [--config FILE] -H 'User-Agent: ...' [-H 'Name: value' ...]
  memproxy setup [TOOL] [--config FILE]
  memproxy doctor [--config FILE] [--no-live]
  memproxy service install [--config FILE] [--dry-run] | service uninstall [--dry-run] | service status
  memproxy help | --help | --version

Commands:
  (none)     run the proxy (the embedded default config when --config is not given)
  check      validate a config and summarise it; exit 1 with the problems if invalid
  explain    print the routing decision the server would make for the given request headers
  setup      print how to point a tool at this memproxy (without TOOL: the tools memproxy knows)
  doctor     check the whole chain to Supermemory and print a checklist with a fix per line;
             exit 1 when something would stop memory from working
  service    run memproxy in the background: a systemd user service (Linux) or a launchd agent (macOS)
  help       show this help

Options:
  -c, --config FILE   YAML config, shared with LiteLLM (user_id_mappings, litellm_backend_url, memproxy)
      --host H        listen address (default 127.0.0.1)
  -p, --port N        listen port (default 8764)
      --backend URL   LiteLLM's URL (default http://127.0.0.1:8765)
      --spawn-litellm start LiteLLM on the same config file and supervise it (memproxy.litellm.spawn)
      --litellm-command PATH  the LiteLLM executable (default: litellm on PATH)
      --litellm-port N        the port LiteLLM listens on, on 127.0.0.1 (default 8765)
  -H, --header 'N: V' a request header, for explain (repeatable)
      --no-live       doctor: skip the live check (a temporary LiteLLM that shows the id arriving)
  -h, --help          show this help
  -v, --version       print the version, commit, build date and Bun version
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

const OPTIONS = {
  config: { type: "string", short: "c" },
  host: { type: "string" },
  port: { type: "string", short: "p" },
  backend: { type: "string" },
  "spawn-litellm": { type: "boolean" },
  "litellm-command": { type: "string" },
  "litellm-port": { type: "string" },
  header: { type: "string", short: "H", multiple: true },
  "no-live": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
} as const;

type Options = ReturnType<typeof readArgs<typeof OPTIONS>>["values"];

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
    parsed = readArgs(argv, OPTIONS);
  } catch (err) {
    if (err instanceof ArgsError) return usage(io, err.message);
    throw err;
  }
  const { values, positionals } = parsed;
  if (values.help) return io.out(HELP), 0;
  if (values.version) return io.out(`${versionText()}\n`), 0;
  const [command = "run", ...rest] = positionals;
  if (rest.length > (command === "setup" ? 1 : 0)) return usage(io, `unexpected argument '${rest.at(-1)}'`);

  try {
    switch (command) {
      case "run":
        return await run(values, io);
      case "check":
        return check(await loadConfig(values.config, process.env, overridesOf(values)), io);
      case "explain":
        return explain(await loadConfig(values.config, process.env, overridesOf(values)), values.header ?? [], io);
      case "setup":
        return setup(await loadConfig(values.config, process.env, overridesOf(values)), rest[0], io);
      case "doctor": {
        const config = await loadConfig(values.config, process.env, overridesOf(values));
        return await runDoctor({ config, doc: litellmDocument(config), out: (line) => io.out(`${line}\n`), live: !values["no-live"] });
      }
      case "help":
        return io.out(HELP), 0;
      default:
        return usage(io, `unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`${err.problems.join("\n")}\nmemproxy: ${problemSummary(err)}; nothing was started.\n`);
      return 1;
    }
    if (err instanceof UsageError) return usage(io, err.message);
    if (err instanceof ListenError || err instanceof SupervisorError) {
      io.err(`memproxy: ${err.message}\n`);
      return 1;
    }
    // A bug of memproxy's: one line for the user, the stack only when asked for.
    io.err(`memproxy: internal error: ${(err as Error).message ?? String(err)}\n` + (process.env.MEMPROXY_DEBUG ? `${(err as Error).stack}\n` : ""));
    return 1;
  }
}

function problemSummary(err: ConfigError): string {
  if (err.problems.some((p) => p.includes("cannot read config"))) return `cannot read the config file ${err.source}`;
  return "the configuration is invalid";
}

function usage(io: CliIO, message: string): number {
  io.err(`memproxy: ${message}\nRun 'memproxy --help' for usage.\n`);
  return 2;
}

/** The command line's settings, as values for the config's schema (which checks them like the file's). */
function overridesOf(values: Options): ConfigOverride[] {
  const out: ConfigOverride[] = [];
  const add = (path: string[], value: unknown, flag: string) => value !== undefined && out.push({ path, value, flag });
  add(["memproxy", "listen", "host"], values.host, "--host");
  add(["memproxy", "listen", "port"], values.port, "--port");
  add(["litellm_backend_url"], values.backend, "--backend");
  add(["memproxy", "litellm", "spawn"], values["spawn-litellm"] || undefined, "--spawn-litellm");
  add(["memproxy", "litellm", "command"], values["litellm-command"], "--litellm-command");
  add(["memproxy", "litellm", "port"], values["litellm-port"], "--litellm-port");
  return out;
}

async function run(values: Options, io: CliIO): Promise<number> {
  const overrides = overridesOf(values);
  const startText = values.config === undefined ? undefined : await readConfigText(values.config).catch(() => undefined);
  const config = startText === undefined ? await loadConfig(values.config, process.env, overrides) : parseConfig(startText, values.config!, process.env, overrides);
  const { level, format } = config.logging;
  const logger = createLogger({ level, format: format === "auto" ? undefined : format });
  const onExit = () => logger.flush();
  process.on("exit", onExit);

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
  const cleanUp = () => {
    for (const [sig, h] of handlers) process.off(sig, h);
    logger.flush();
    process.off("exit", onExit);
  };

  let app: App;
  try {
    app = startApp(config, logger);
  } catch (err) {
    cleanUp();
    throw err;
  }
  logger.info(`memproxy ${VERSION} listening on ${app.server.url} (status page: ${app.server.url}/)`, {
    url: app.server.url,
    page: `${app.server.url}/`,
    backend: shownUrls(config.backends),
    config: config.source,
  });
  for (const warning of config.warnings) logger.warn(warning);
  warnChain(app.server, logger);
  void reportBackend(app, logger);

  const reloader = values.config
    ? new ConfigReloader(
        {
          path: values.config,
          parse: (text) => parseConfig(text, values.config!, process.env, overrides),
          running: () => app.server.config,
          apply: (next) => {
            const notes = app.reload(next);
            warnChain(app.server, logger);
            return notes;
          },
          failed: (problems) => app.server.reloadFailed(problems),
          logger,
          watch: config.reload.watch,
        },
        startText,
      )
    : undefined;

  // Start-up is over: the code that serves requests tiers up at JavaScriptCore's normal thresholds from here
  // (the executable starts with them raised, scripts/build.ts START_JIT_POLICY).
  Bun.unsafe.setJITPolicy(1);

  const signalled = (async () => {
    let signal: NodeJS.Signals;
    while ((signal = await nextSignal()) === "SIGHUP") {
      if (reloader) await reloader.reload("SIGHUP");
      else logger.info("SIGHUP: running on the embedded default config, nothing to reload");
    }
    return { signal };
  })();
  const broken = Promise.race([app.ready.then(() => new Promise<never>(() => {})), app.failed]).then(
    (err) => ({ error: err }),
    (err: unknown) => ({ error: err }),
  );
  const outcome = await Promise.race([signalled, broken]);
  shuttingDown = true;
  reloader?.stop();
  if ("error" in outcome) {
    const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
    logger.error(message);
    io.err(`memproxy: ${message}\n`);
  } else {
    logger.info(`received ${outcome.signal}, shutting down`, { drain_timeout_ms: app.server.config.shutdown.drain_timeout });
  }
  const { cut, clean } = await app.stop();
  if (cut) logger.warn(`cut ${cut} request(s) still in flight after the drain timeout`, { cut });
  if (!clean) logger.warn("LiteLLM had to be killed: it did not stop within memproxy.litellm.stop_timeout");
  logger.info("stopped");
  cleanUp();
  return "error" in outcome || !clean ? 1 : 0;
}

/** The config LiteLLM reads, for doctor: one that cannot be read or parsed is a problem of the setting that names it. */
function litellmDocument(config: Config): Readonly<Record<string, unknown>> {
  const other = config.litellm.config;
  try {
    return litellmDocumentOf(config, (path) => readFileSync(path, "utf8"));
  } catch (err) {
    const at = other === undefined ? `${config.source}:` : `${config.source}: memproxy.litellm.config:`;
    const why = (err as NodeJS.ErrnoException).code
      ? `cannot read ${other}: ${fileProblem(err, "memproxy.litellm.config")}`
      : `${other ?? "the file"} is not YAML as LiteLLM reads it: ${(err as Error).message.split("\n")[0]}`;
    throw new ConfigError(config.source, [`${at} ${why}`]);
  }
}

/** The shared config's LiteLLM side, when memproxy can see it (the same report /health shows). */
function chainReport(config: Config): ChainReport | undefined {
  return chainOf(config, { ...process.env, ...config.litellm.env }, (path) => readFileSync(path, "utf8"));
}

/**
 * Warns, with the exact lines to add, when LiteLLM would not pass the memory id on (or memory cannot work): the
 * server's own report of the configuration in force, so the file is analysed once.
 */
function warnChain(server: { config: Config; chain: ChainReport | undefined }, logger: Logger): void {
  const report = server.chain;
  if (!report) return;
  for (const line of chainProblemLines({ ...report, problems: report.problems.filter((p) => p.severity === "error") }, server.config.source)) {
    logger.warn(line, { memory_id_forwarding: report.memory_id_forwarding });
  }
}

/** Says once, at start, what answers at the backend: the first question of anyone whose requests fail. */
async function reportBackend(app: App, logger: Logger): Promise<void> {
  if (app.supervisor) return; // the supervisor says when LiteLLM is ready
  const backends = await app.server.probeBackends();
  for (const b of backends) {
    if (b.status === "up") logger.info(`backend ${b.url} answers`, { backend: b.url });
    else {
      logger.warn(`nothing answers at ${b.url} (${b.last_error}): start LiteLLM there, or run memproxy with --spawn-litellm`, {
        backend: b.url,
      });
    }
  }
}

function check(config: Config, io: CliIO): number {
  const r = config.routing;
  const a = config.access;
  const lines = [
    `${config.source}: OK`,
    `  listen:           ${config.listen.host}:${config.listen.port}`,
    `  backend:          ${shownUrls(config.backends)}`,
    `  custom header:    ${a.custom_header ? r.custom_header : `${r.custom_header} (ignored: memproxy.access.custom_header is false)`}`,
    ...(a.custom_header && a.allowed_user_ids.length ? [`  allowed ids:      ${a.allowed_user_ids.map((p) => JSON.stringify(p)).join(", ")} (each matches a whole id)`] : []),
    `  user id headers:  ${[config.forward.user_id_header, ...config.forward.also_send_user_id_as].join(", ")}`,
    `  patterns:         ${r.header_patterns.length} of yours, tried first`,
    ...r.header_patterns.map((p, i) => `    [${i}] ${p.header} ~ ${JSON.stringify(p.pattern)} -> ${p.user_id}${patternNote(p.pattern)}`),
    `  built-in rules:   ${r.builtin_rules ? `on: ${BUILTIN_RULES.length} rules for known tools, after yours (user_id_mappings.builtin_rules: false turns them off)` : "off"}`,
    `  derived ids:      ${r.derive_from_user_agent ? "on: an unrecognised User-Agent's product name becomes its id (user_id_mappings.derive_from_user_agent)" : "off"}`,
    `  default user id:  ${r.default_user_id}`,
    `  access keys:      ${a.keys.length ? `${a.keys.length} (not shown); requests need one` : "none: requests need no key"}`,
    `  litellm:          ${config.litellm.spawn ? `started by memproxy on ${config.litellm.host}:${config.litellm.port}` : "not started by memproxy"}`,
    `  memory ids:       ${USER_ID_RULE}`,
    ...chainLines(config),
    ...config.warnings.map((w) => `warning: ${w}`),
  ];
  io.out(lines.join("\n") + "\n");
  return 0;
}

/** check's view of the LiteLLM side: whether the memory id reaches Supermemory, and what to fix. */
function chainLines(config: Config): string[] {
  const report = chainReport(config);
  if (!report) return [`  memory id forwarding: unknown (LiteLLM's config is not in ${config.source}); run memproxy doctor`];
  return [
    `  memory id forwarding: ${report.memory_id_forwarding}${report.models_without_forwarding.length && report.memory_id_forwarding === "partial" ? ` (not for ${report.models_without_forwarding.join(", ")})` : ""}`,
    `  LiteLLM models:   ${report.models.map((m) => `${m.model_name}${m.via_router ? " (via Supermemory)" : " (NOT via Supermemory)"}`).join(", ") || "none"}`,
    ...chainProblemLines(report, config.source).map((l) => `warning: ${l}`),
  ];
}

function setup(config: Config, tool: string | undefined, io: CliIO): number {
  if (tool === undefined) return io.out(setupList()), 0;
  const text = setupText(tool, { baseUrl: urlOf(config.listen.host, config.listen.port), customHeader: config.routing.custom_header });
  if (text === undefined) throw new UsageError(`setup: no tool named '${tool}'; 'memproxy setup' lists the tools memproxy knows`);
  io.out(text.endsWith("\n") ? text : `${text}\n`);
  return 0;
}

/** What `check` says of a rule's pattern: one that matches every value, or one that is costly on hostile values. */
function patternNote(pattern: string): string {
  const compiled = compilePattern(pattern);
  if (!compiled.ok) return "";
  // re.match semantics: a pattern that matches an empty prefix matches every value.
  if (compiled.matcher.test("")) return "  (matches every value: rules after it never apply)";
  if (costly(pattern)) {
    return "  (costly on hostile values: its automaton grows too large to cache, e.g. a long counted repetition after .*; matching stays linear but can take milliseconds per request)";
  }
  return "";
}

/**
 * Whether a pattern's automaton falls back to step-by-step simulation on long values made of its own characters:
 * the shapes whose matching costs milliseconds rather than microseconds on a hostile header. Probed with all of
 * its literal characters, and with each one beside a character it does not have (`.*a.{400}b` needs `a`/`c`).
 */
function costly(pattern: string): boolean {
  const literal = [...new Set(pattern.replace(/[\\^$.|?*+()[\]{}]/g, ""))];
  const stranger = ["c", "x", "~", "0"].find((c) => !literal.includes(c)) ?? "\u00e9";
  const alphabets = [[...literal, "a", "b", " "], ...literal.slice(0, 8).map((c) => [c, stranger])];
  let seed = 1;
  return alphabets.some((alphabet) => {
    const probe = Array.from({ length: 8192 }, () => alphabet[(seed = (seed * 1103515245 + 12345) & 0x7fffffff) % alphabet.length]).join("");
    const automaton = compileAutomaton([pattern], {});
    automaton.test(probe);
    return automaton.stats.nfaFallbacks > 0;
  });
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
  const routed = routerFor(config)(headerMap(headers));
  if (!routed.ok) {
    io.err(`memproxy: ${routed.rejection.status}: ${routed.rejection.message}\n`);
    return 1;
  }
  io.out(JSON.stringify(routed.decision, null, 2) + "\n");
  return 0;
}
