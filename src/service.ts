// `memproxy service install|uninstall|status`: memproxy as a background service, a systemd user unit on
// Linux or a launchd agent on macOS, written from the templates in scripts/service/ (embedded at build time).
import { chmod, mkdir, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import launchdTemplate from "../scripts/service/memproxy.plist" with { type: "text" };
import systemdTemplate from "../scripts/service/memproxy.service" with { type: "text" };
import { ConfigError, DEFAULT_CONFIG_TEXT, parseConfig, type Config } from "./config.ts";
import { ENDPOINTS } from "./endpoints.ts";

/** Where the command writes; the CLI passes stdout/stderr, tests their own. */
export interface ServiceIO {
  out(text: string): void;
  err(text: string): void;
}

/** The machine the service is installed on. Defaults to this process's; tests pass another home, platform and PATH. */
export interface ServiceEnv {
  /** "linux" (systemd) or "darwin" (launchd). */
  platform: string;
  home: string;
  /** Environment: PATH finds systemctl/launchctl and goes into the unit; XDG_CONFIG_HOME places files on Linux. */
  vars: Record<string, string | undefined>;
  /** The user id, for launchd's gui/<uid> domain. */
  uid: number;
  /** The command that runs memproxy: the compiled binary, or bun and src/main.ts. */
  program: string[];
  /** True when `program` is bun running the source (the service then depends on this checkout). */
  fromSource: boolean;
  /** Relative --config paths are resolved against it. */
  cwd: string;
}

/** launchd's name for the agent (and its plist's file name). */
export const LAUNCHD_LABEL = "local.memproxy";
const SYSTEMD_UNIT = "memproxy.service";

const HELP = `Usage:
  memproxy service install [--config FILE] [--dry-run]
  memproxy service uninstall [--dry-run]
  memproxy service status

  install    write and start memproxy as a systemd user service (Linux) or a launchd agent (macOS),
             restarted when it fails. Without --config it uses the config in your config folder,
             writing the default there on the first install. API keys go in the memproxy.env file
             next to it, never in the unit.
  uninstall  stop and remove the service (the config and memproxy.env stay)
  status     show whether the service is installed, running and answering
             (exit 0 answering, 3 installed but not answering, 4 not installed)

  --dry-run  print what would be written and run, and do nothing
`;

const ENV_FILE_TEXT = `# Environment for the memproxy service: one KEY=value per line, no spaces around "=".
# Keep API keys here (this file is readable by you only), never in the service unit or the config.
# memproxy's config can use them as \${NAME}; programs memproxy starts (LiteLLM) inherit them.
# OPENAI_API_KEY=sk-...
# ANTHROPIC_API_KEY=sk-ant-...
# SUPERMEMORY_API_KEY=sm_...
`;

/** The files of the service on one platform. */
interface Layout {
  kind: "systemd" | "launchd";
  tool: "systemctl" | "launchctl";
  unitFile: string;
  configDir: string;
  envFile: string;
  /** launchd only: where stdout/stderr go (journald keeps systemd's). */
  logDir?: string;
  logsHint: string;
}

function layoutFor(env: ServiceEnv): Layout | undefined {
  if (env.platform === "linux") {
    const xdg = env.vars.XDG_CONFIG_HOME;
    const configHome = xdg && isAbsolute(xdg) ? xdg : join(env.home, ".config");
    const configDir = join(configHome, "memproxy");
    return {
      kind: "systemd",
      tool: "systemctl",
      unitFile: join(configHome, "systemd", "user", SYSTEMD_UNIT),
      configDir,
      envFile: join(configDir, "memproxy.env"),
      logsHint: "journalctl --user -u memproxy -f",
    };
  }
  if (env.platform === "darwin") {
    const configDir = join(env.home, "Library", "Application Support", "memproxy");
    const logDir = join(env.home, "Library", "Logs", "memproxy");
    return {
      kind: "launchd",
      tool: "launchctl",
      unitFile: join(env.home, "Library", "LaunchAgents", `${LAUNCHD_LABEL}.plist`),
      configDir,
      envFile: join(configDir, "memproxy.env"),
      logDir,
      logsHint: `tail -f ${shellQuote(join(logDir, "memproxy.log"))} ${shellQuote(join(logDir, "memproxy.error.log"))}`,
    };
  }
  return undefined;
}

/** The default config path the service uses without --config: XDG_CONFIG_HOME or ~/.config on Linux. */
export function defaultServiceConfigPath(env: Partial<ServiceEnv> = {}): string | undefined {
  const layout = layoutFor(withDefaults(env));
  return layout && join(layout.configDir, "config.yaml");
}

function defaultProgram(): { program: string[]; fromSource: boolean } {
  // A compiled binary's modules live in Bun's embedded file system.
  const compiled = import.meta.url.includes("/$bunfs/") || import.meta.url.includes("~BUN");
  return compiled
    ? { program: [process.execPath], fromSource: false }
    : { program: [process.execPath, join(import.meta.dir, "main.ts")], fromSource: true };
}

function withDefaults(env: Partial<ServiceEnv>): ServiceEnv {
  const vars = env.vars ?? process.env;
  const program = env.program ? { program: env.program, fromSource: env.fromSource ?? false } : defaultProgram();
  return {
    platform: env.platform ?? process.platform,
    home: env.home ?? (vars.HOME || homedir()),
    vars,
    uid: env.uid ?? process.getuid?.() ?? 0,
    cwd: env.cwd ?? process.cwd(),
    ...program,
  };
}

/** One thing install/uninstall does; the same list is printed by --dry-run and carried out otherwise. */
type Step =
  | { kind: "write"; path: string; text: string; mode: number; what: string; show: boolean }
  | { kind: "mkdir"; path: string; what: string }
  | { kind: "remove"; path: string; what: string }
  | { kind: "run"; argv: string[]; mayFail: boolean };

class ServiceError extends Error {}

/**
 * Runs `memproxy service ...`.
 * @param args the arguments after `service`.
 * @param io where to write.
 * @param env the machine (platform, home, PATH, ...); defaults to this process's.
 * @returns the exit code: 0 ok, 1 failure, 2 usage error; status: 3 not answering, 4 not installed.
 */
export async function serviceCommand(args: string[], io: ServiceIO, env: Partial<ServiceEnv> = {}): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: "string", short: "c" },
        "dry-run": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    return usage(io, (err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return io.out(HELP), 0;
  const [sub, ...rest] = positionals;
  if (!sub) return usage(io, "service needs a command: install, uninstall or status");
  if (rest.length) return usage(io, `unexpected argument '${rest[0]}'`);
  if (values.config !== undefined && sub !== "install") return usage(io, `--config is for 'service install' only`);
  if (values["dry-run"] && sub === "status") return usage(io, `--dry-run is for 'service install' and 'service uninstall'`);

  const machine = withDefaults(env);
  const layout = layoutFor(machine);
  if (!layout) {
    io.err(
      `memproxy: 'memproxy service' supports Linux (systemd) and macOS (launchd), not ${machine.platform}. ` +
        `Run '${machine.program.join(" ")} --config FILE' under your own service manager instead.\n`,
    );
    return 1;
  }
  try {
    switch (sub) {
      case "install":
        return await install(machine, layout, io, values.config, values["dry-run"] ?? false);
      case "uninstall":
        return await uninstall(machine, layout, io, values["dry-run"] ?? false);
      case "status":
        return await status(machine, layout, io);
      default:
        return usage(io, `unknown service command '${sub}' (expected install, uninstall or status)`);
    }
  } catch (err) {
    if (err instanceof ServiceError) {
      io.err(`memproxy: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function usage(io: ServiceIO, message: string): number {
  io.err(`memproxy: ${message}\nRun 'memproxy service --help' for usage.\n`);
  return 2;
}

async function install(env: ServiceEnv, layout: Layout, io: ServiceIO, configArg: string | undefined, dryRun: boolean): Promise<number> {
  const steps: Step[] = [];
  const envFileExists = await exists(layout.envFile);
  const envVars = envFileExists ? parseEnvFile(await Bun.file(layout.envFile).text()) : {};

  // The config: the one given, or the one in the config folder, written with the defaults the first time.
  let configPath: string;
  let configText: string;
  let wroteDefault = false;
  if (configArg !== undefined) {
    configPath = resolve(env.cwd, configArg);
    try {
      configText = await Bun.file(configPath).text();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "file not found" : code === "EISDIR" ? "is a directory" : String(err);
      throw new ServiceError(`${configPath}: cannot read config: ${why}. Pass an existing YAML file to --config, or leave it out to use ${join(layout.configDir, "config.yaml")}.`);
    }
  } else {
    configPath = join(layout.configDir, "config.yaml");
    if (await exists(configPath)) {
      configText = await Bun.file(configPath).text();
    } else {
      configText = defaultConfigFileText(layout);
      wroteDefault = true;
      steps.push({ kind: "write", path: configPath, text: configText, mode: 0o644, what: "the default config", show: false });
    }
  }
  // A service with a broken config would only restart and fail: refuse it now, with the reasons. The
  // service sees the env file, not this shell's variables, so the config is checked with what it will see.
  let config: Config;
  try {
    config = parseConfig(configText, configPath, { ...serviceVars(env), ...envVars });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const hint = err.problems.some((p) => p.includes("environment variable"))
      ? `\nThe service does not see your shell's variables: put them in ${layout.envFile} (KEY=value lines).`
      : "";
    io.err(`${err.problems.join("\n")}\nmemproxy: the configuration is invalid; the service was not installed.${hint}\n`);
    return 1;
  }

  if (!envFileExists) {
    steps.push({ kind: "write", path: layout.envFile, text: ENV_FILE_TEXT, mode: 0o600, what: "the file for API keys (KEY=value lines, mode 600)", show: false });
  }
  if (layout.logDir) steps.push({ kind: "mkdir", path: layout.logDir, what: "the log folder" });
  const unitExisted = await exists(layout.unitFile);
  const unitText = layout.kind === "systemd" ? renderSystemdUnit(env, layout, configPath) : renderLaunchdPlist(env, layout, configPath);
  steps.push({ kind: "write", path: layout.unitFile, text: unitText, mode: 0o644, what: layout.kind === "systemd" ? "the systemd user unit" : "the launchd agent", show: true });
  if (layout.kind === "systemd") {
    steps.push(
      { kind: "run", argv: ["systemctl", "--user", "daemon-reload"], mayFail: false },
      { kind: "run", argv: ["systemctl", "--user", "enable", SYSTEMD_UNIT], mayFail: false },
      // restart, not start: a reinstall must pick up the new unit and config.
      { kind: "run", argv: ["systemctl", "--user", "restart", SYSTEMD_UNIT], mayFail: false },
    );
  } else {
    const target = `gui/${env.uid}/${LAUNCHD_LABEL}`;
    // A loaded agent must be unloaded before its new plist can be loaded.
    if (unitExisted) steps.push({ kind: "run", argv: ["launchctl", "bootout", target], mayFail: true });
    steps.push(
      { kind: "run", argv: ["launchctl", "enable", target], mayFail: false },
      { kind: "run", argv: ["launchctl", "bootstrap", `gui/${env.uid}`, layout.unitFile], mayFail: false },
    );
  }

  if (dryRun) {
    io.out("memproxy service install --dry-run: nothing is written or started.\n");
    printSteps(steps, io);
    io.out(`The service would run: ${[...env.program, "--config", configPath].map(shellQuote).join(" ")}\n`);
    if (env.fromSource) io.out(sourceNote(env));
    return 0;
  }

  requireTool(env, layout, configPath);
  if (envFileExists) await warnIfReadableByOthers(layout.envFile, io);
  await carryOut(steps, env, io);

  const listen = `http://${connectHost(config.listen.host)}:${config.listen.port}`;
  const lines = [
    `memproxy service installed and started: ${listen}`,
    `  ${layout.kind === "systemd" ? "unit:    " : "agent:   "} ${layout.unitFile}`,
    `  config:   ${configPath}${wroteDefault ? " (written now with the defaults: edit it, then run 'memproxy service install' again)" : ""}`,
    `  API keys: ${layout.envFile}`,
    `  logs:     ${layout.logsHint}`,
    `  status:   memproxy service status`,
  ];
  if (layout.kind === "systemd") lines.push("A user service stops when you log out; to keep it running: loginctl enable-linger $USER");
  io.out(lines.join("\n") + "\n");
  if (env.fromSource) io.out(sourceNote(env));
  return 0;
}

async function uninstall(env: ServiceEnv, layout: Layout, io: ServiceIO, dryRun: boolean): Promise<number> {
  if (!(await exists(layout.unitFile))) {
    io.out(`memproxy service is not installed (no ${layout.unitFile}); nothing to do.\n`);
    return 0;
  }
  const steps: Step[] =
    layout.kind === "systemd"
      ? [
          { kind: "run", argv: ["systemctl", "--user", "disable", "--now", SYSTEMD_UNIT], mayFail: true },
          { kind: "remove", path: layout.unitFile, what: "the systemd user unit" },
          { kind: "run", argv: ["systemctl", "--user", "daemon-reload"], mayFail: true },
        ]
      : [
          { kind: "run", argv: ["launchctl", "bootout", `gui/${env.uid}/${LAUNCHD_LABEL}`], mayFail: true },
          { kind: "remove", path: layout.unitFile, what: "the launchd agent" },
        ];
  if (dryRun) {
    io.out("memproxy service uninstall --dry-run: nothing is stopped or removed.\n");
    printSteps(steps, io);
    return 0;
  }
  await carryOut(steps, env, io);
  io.out(`memproxy service removed. Kept the config and API key file in ${layout.configDir} (delete them yourself if you no longer need them).\n`);
  return 0;
}

async function status(env: ServiceEnv, layout: Layout, io: ServiceIO): Promise<number> {
  if (!(await exists(layout.unitFile))) {
    io.out(`memproxy service is not installed (no ${layout.unitFile}). Install it with: memproxy service install\n`);
    return 4;
  }
  const unitText = await Bun.file(layout.unitFile).text();
  const args = layout.kind === "systemd" ? systemdProgramArgs(unitText) : launchdProgramArgs(unitText);
  const at = args.indexOf("--config");
  const configPath = at >= 0 ? args[at + 1] : undefined;
  io.out(`${layout.kind === "systemd" ? "unit" : "agent"}:   ${layout.unitFile}\n`);
  io.out(`runs:   ${args.join(" ")}\n`);

  const argv =
    layout.kind === "systemd"
      ? ["systemctl", "--user", "status", SYSTEMD_UNIT, "--no-pager", "--lines=5"]
      : ["launchctl", "print", `gui/${env.uid}/${LAUNCHD_LABEL}`];
  if (Bun.which(layout.tool, { PATH: env.vars.PATH ?? "" })) {
    const r = await runTool(argv, env);
    let shown = r.stdout;
    if (layout.kind === "launchd") {
      // launchctl print lists everything about the job; these lines answer "is it running?".
      shown =
        r.code === 0
          ? shown.split("\n").filter((l) => /^\s*(state|pid|last exit code|runs) = /.test(l)).join("\n")
          : "launchd has not loaded the agent (launchctl print found no such job)";
    }
    io.out(shown.trim() ? `${shown.trimEnd()}\n` : `${argv.join(" ")} exited ${r.code}: ${r.stderr.trim()}\n`);
  } else {
    io.out(`${layout.tool} is not on PATH: cannot ask ${layout.kind} about the service.\n`);
  }

  if (!configPath) {
    io.out(`cannot tell where memproxy listens: no --config in ${layout.unitFile}\n`);
    return 3;
  }
  let config: Config;
  try {
    const envVars = (await exists(layout.envFile)) ? parseEnvFile(await Bun.file(layout.envFile).text()) : {};
    config = parseConfig(await Bun.file(configPath).text(), configPath, { ...serviceVars(env), ...envVars });
  } catch (err) {
    const why = err instanceof ConfigError ? err.problems.join("; ") : `${configPath}: ${(err as Error).message}`;
    io.out(`cannot tell where memproxy listens: ${why}\n`);
    return 3;
  }
  const base = `http://${connectHost(config.listen.host)}:${config.listen.port}`;
  try {
    const res = await fetch(`${base}${ENDPOINTS.liveness}`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    if (res.ok) {
      io.out(`answering: ${base} (GET ${ENDPOINTS.liveness}: ${res.status})\n`);
      return 0;
    }
    io.out(`not answering as expected: ${base}${ENDPOINTS.liveness} returned ${res.status}\nSee the logs: ${layout.logsHint}\n`);
  } catch (err) {
    io.out(`not answering: ${base}${ENDPOINTS.liveness} (${(err as Error).message})\nSee the logs: ${layout.logsHint}\n`);
  }
  return 3;
}

function printSteps(steps: Step[], io: ServiceIO): void {
  for (const s of steps) {
    if (s.kind === "write") {
      io.out(`would write ${s.what}: ${s.path}${s.show ? "" : ` (${s.text.length} bytes)`}\n`);
      if (s.show) io.out(s.text.replace(/^/gm, "    ").trimEnd() + "\n");
    } else if (s.kind === "mkdir") io.out(`would create ${s.what}: ${s.path}\n`);
    else if (s.kind === "remove") io.out(`would remove ${s.what}: ${s.path}\n`);
    else io.out(`would run: ${s.argv.map(shellQuote).join(" ")}\n`);
  }
}

async function carryOut(steps: Step[], env: ServiceEnv, io: ServiceIO): Promise<void> {
  for (const s of steps) {
    if (s.kind === "write") {
      await mkdir(dirname(s.path), { recursive: true });
      await Bun.write(s.path, s.text);
      await chmod(s.path, s.mode);
    } else if (s.kind === "mkdir") {
      await mkdir(s.path, { recursive: true });
    } else if (s.kind === "remove") {
      await rm(s.path, { force: true });
    } else {
      const r = await runTool(s.argv, env);
      if (r.code === 0) continue;
      const detail = `'${s.argv.join(" ")}' failed (exit ${r.code})${r.stderr.trim() ? `: ${r.stderr.trim()}` : ""}`;
      if (s.mayFail) {
        io.err(`memproxy: note: ${detail}\n`);
        continue;
      }
      const hint =
        s.argv[0] === "systemctl"
          ? "Is a systemd user manager running for you (a login session, or 'loginctl enable-linger $USER')? Fix that and run 'memproxy service install' again."
          : "Check the agent with 'plutil -lint' and run 'memproxy service install' again.";
      throw new ServiceError(`${detail}\n${hint}`);
    }
  }
}

function requireTool(env: ServiceEnv, layout: Layout, configPath: string): void {
  if (Bun.which(layout.tool, { PATH: env.vars.PATH ?? "" })) return;
  throw new ServiceError(
    `${layout.tool} was not found on PATH, so memproxy cannot be installed as a ${layout.kind} service here; nothing was changed. ` +
      `Run '${[...env.program, "--config", configPath].join(" ")}' under your own service manager instead.`,
  );
}

async function runTool(argv: string[], env: ServiceEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const exe = Bun.which(argv[0]!, { PATH: env.vars.PATH ?? "" });
  if (!exe) return { code: 127, stdout: "", stderr: `${argv[0]} not found on PATH` };
  const proc = Bun.spawn([exe, ...argv.slice(1)], { env: env.vars, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  return { code, stdout, stderr };
}

/** The variables a service gets from its manager besides the env file (and the PATH the unit sets). */
function serviceVars(env: ServiceEnv): Record<string, string | undefined> {
  const { HOME, USER, LOGNAME, PATH } = env.vars;
  return { HOME: HOME ?? env.home, USER, LOGNAME, PATH };
}

async function warnIfReadableByOthers(path: string, io: ServiceIO): Promise<void> {
  const { mode } = await stat(path);
  if (mode & 0o077) {
    io.err(`memproxy: warning: ${path} holds API keys but others can read it (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${shellQuote(path)}\n`);
  }
}

function sourceNote(env: ServiceEnv): string {
  return (
    `note: memproxy runs from source here, so the service runs '${env.program.join(" ")}': it breaks if this checkout or ` +
    `this bun moves. For a lasting service, install the compiled binary (a release, or 'bun scripts/build.ts') and run its 'memproxy service install'.\n`
  );
}

function defaultConfigFileText(layout: Layout): string {
  const restart = layout.kind === "systemd" ? "systemctl --user restart memproxy" : `launchctl kickstart -k gui/$(id -u)/${LAUNCHD_LABEL}`;
  return (
    `# memproxy's config for the background service, written by 'memproxy service install' from the defaults.\n` +
    `# After editing: 'memproxy check --config <this file>', then '${restart}'.\n` +
    `# API keys go in memproxy.env next to this file, never here.\n#\n` +
    DEFAULT_CONFIG_TEXT
  );
}

/** Renders the systemd user unit for `configPath`. */
export function renderSystemdUnit(env: ServiceEnv, layout: { envFile: string }, configPath: string): string {
  return render(systemdTemplate, {
    EXEC_START: [...env.program, "--config", configPath].map((a) => systemdQuote(a)).join(" "),
    ENV_FILE: systemdEscape(oneLine(layout.envFile)),
    PATH_ASSIGNMENT: systemdQuote(`PATH=${env.vars.PATH ?? "/usr/local/bin:/usr/bin:/bin"}`, false),
  });
}

/** Renders the launchd agent's property list for `configPath`. */
export function renderLaunchdPlist(env: ServiceEnv, layout: { envFile: string; logDir?: string }, configPath: string): string {
  return render(launchdTemplate, {
    LABEL: LAUNCHD_LABEL,
    ENV_FILE: xmlEscape(layout.envFile),
    PROGRAM_ARGUMENTS: [...env.program, "--config", configPath].map((a) => `    <string>${xmlEscape(a)}</string>`).join("\n"),
    PATH: xmlEscape(env.vars.PATH ?? "/usr/bin:/bin:/usr/sbin:/sbin"),
    LOG_DIR: xmlEscape(layout.logDir ?? ""),
  });
}

function render(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`service template: no value for {{${name}}}`);
    return value;
  });
}

function oneLine(s: string): string {
  if (/[\n\r]/.test(s)) throw new ServiceError(`a path with a line break cannot go into a service unit: ${JSON.stringify(s)}`);
  return s;
}

/** systemd expands %-specifiers in every value and $VARIABLES in command lines: both must be doubled. */
function systemdEscape(s: string): string {
  return s.replace(/%/g, "%%");
}

/** One word of a command line (`commandLine`: `$` doubled too) or of an Environment= assignment. */
function systemdQuote(arg: string, commandLine = true): string {
  let escaped = systemdEscape(oneLine(arg));
  if (commandLine) escaped = escaped.replace(/\$/g, "$$$$");
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** The ExecStart= arguments of a unit that renderSystemdUnit wrote. */
export function systemdProgramArgs(unit: string): string[] {
  const line = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? "";
  const args: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
    const raw = m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]!;
    args.push(raw.replace(/%%/g, "%").replace(/\$\$/g, "$"));
  }
  return args;
}

/** The program arguments (after the /bin/sh wrapper and the env file) of a plist that renderLaunchdPlist wrote. */
export function launchdProgramArgs(plist: string): string[] {
  const array = /<key>ProgramArguments<\/key>\s*<array>([\s\S]*?)<\/array>/.exec(plist)?.[1] ?? "";
  const all = [...array.matchAll(/<string>([\s\S]*?)<\/string>/g)].map((m) => xmlUnescape(m[1]!));
  return all.slice(4);
}

function xmlEscape(s: string): string {
  // Control characters other than tab and newline are not allowed in XML 1.0 at all.
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(s)) throw new ServiceError(`a value with control characters cannot go into a property list: ${JSON.stringify(s)}`);
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function xmlUnescape(s: string): string {
  return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, "&");
}

/** KEY=value lines (optionally `export KEY=value`, values optionally quoted), as systemd and sh both read them. */
function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!.trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) value = value.slice(1, -1);
    out[m[1]!] = value;
  }
  return out;
}

function connectHost(host: string): string {
  // A wildcard listener is reached on loopback.
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::" || host === "[::]") return "[::1]";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
