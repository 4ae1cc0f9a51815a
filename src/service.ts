// `memproxy service install|uninstall|status`: memproxy as a background service (a systemd user unit on
// Linux, a launchd agent on macOS: service-systemd.ts, service-launchd.ts) that starts and supervises
// LiteLLM, with its config and environment file (service-stack.ts, service-env-file.ts).
import { ArgsError, readArgs } from "./args.ts";
import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { COMPILED } from "./compiled.ts";
import { ConfigError, parseConfig, type Config } from "./config.ts";
import { shownUrls, urlOf } from "./address.ts";
import { describeEnvProblems, parseEnvFile, setEnvVar } from "./service-env-file.ts";
import { launchd } from "./service-launchd.ts";
import { runTool, type Platform, type ServiceEnv, type UnitSpec } from "./service-platform.ts";
import { carryOut, exists, printSteps, readText, ServiceError, shellQuote, type ServiceIO, type Step } from "./service-plan.ts";
import { findLitellm, generateMasterKey, LITELLM_INSTALL_HINT, serviceConfigText, serviceEnvText, servicePath, serviceVars, variablesUsed } from "./service-stack.ts";
import { serviceStatus } from "./service-status.ts";
import { systemd } from "./service-systemd.ts";

export type { ServiceEnv } from "./service-platform.ts";
export type { ServiceIO } from "./service-plan.ts";
export { launchdProgramArgs, LAUNCHD_LABEL } from "./service-launchd.ts";
export { systemdProgramArgs } from "./service-systemd.ts";

const HELP = `Usage:
  memproxy service install [--config FILE] [--dry-run]
  memproxy service uninstall [--dry-run]
  memproxy service status

  install    write and start memproxy as a systemd user service (Linux) or a launchd agent (macOS),
             restarted when it fails, starting and supervising LiteLLM. Without --config it uses the
             config in your config folder, writing one there on the first install (LiteLLM's models
             through Supermemory, LiteLLM started by memproxy). API keys go in the memproxy.env file
             next to it, never in the unit; a first install generates LITELLM_MASTER_KEY there.
             If a step fails, what was already done is undone.
  uninstall  stop and remove the service (the config, memproxy.env and the logs stay)
  status     show whether the service runs and whether the memproxy answering is the service's own
             (exit 0 the service's memproxy answers and is healthy, 3 not, 4 not installed)

  --dry-run  print every file it would write, in full (secrets as <generated> or <redacted>), and every
             command it would run, and do nothing
`;

/** The variable LiteLLM takes its master key from in the config install writes. */
const MASTER_KEY = "LITELLM_MASTER_KEY";

/**
 * Runs `memproxy service ...`.
 * @param args the arguments after `service`.
 * @param io where to write.
 * @param env the machine (platform, home, PATH, ...); defaults to this process's.
 * @returns the exit code: 0 ok, 1 failure, 2 usage error; status: 3 not serving, 4 not installed.
 */
export async function serviceCommand(args: string[], io: ServiceIO, env: Partial<ServiceEnv> = {}): Promise<number> {
  let parsed;
  try {
    parsed = readArgs(args, {
      config: { type: "string", short: "c" },
      "dry-run": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    });
  } catch (err) {
    if (err instanceof ArgsError) return usage(io, err.message);
    throw err;
  }
  const { values, positionals } = parsed;
  if (values.help) return io.out(HELP), 0;
  const [sub, ...rest] = positionals;
  if (!sub) return usage(io, "service needs a command: install, uninstall or status");
  if (rest.length) return usage(io, `unexpected argument '${rest[0]}'`);
  if (values.config !== undefined && sub !== "install") return usage(io, `--config is for 'service install' only`);
  if (values["dry-run"] && sub === "status") return usage(io, `--dry-run is for 'service install' and 'service uninstall'`);

  const machine = withDefaults(env);
  const platform = platformFor(machine);
  if (!platform) {
    io.err(
      `memproxy: 'memproxy service' supports Linux (systemd) and macOS (launchd), not ${machine.platform}. ` +
        `Run '${machine.program.join(" ")} --config FILE' under your own service manager instead.\n`,
    );
    return 1;
  }
  try {
    switch (sub) {
      case "install":
        return await install(machine, platform, io, values.config, values["dry-run"] ?? false);
      case "uninstall":
        return await uninstall(machine, platform, io, values["dry-run"] ?? false);
      case "status":
        return await serviceStatus(machine, platform, io);
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

/** The config path the service uses without --config (XDG_CONFIG_HOME or ~/.config/memproxy on Linux). */
export function defaultServiceConfigPath(env: Partial<ServiceEnv> = {}): string | undefined {
  const platform = platformFor(withDefaults(env));
  return platform && join(platform.layout.configDir, "config.yaml");
}

function platformFor(env: ServiceEnv): Platform | undefined {
  if (env.platform === "linux") return systemd(env);
  if (env.platform === "darwin") return launchd(env);
  return undefined;
}

function defaultProgram(): { program: string[]; fromSource: boolean } {
  return COMPILED
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

function usage(io: ServiceIO, message: string): number {
  io.err(`memproxy: ${message}\nRun 'memproxy service --help' for usage.\n`);
  return 2;
}

async function install(env: ServiceEnv, platform: Platform, io: ServiceIO, configArg: string | undefined, dryRun: boolean): Promise<number> {
  const { layout } = platform;
  const steps: Step[] = [];

  // The env file: refused when systemd and sh would read it differently (the service would get other values
  // on one platform than memproxy checks here).
  const envBefore = await readText(layout.envFile);
  const envFile = parseEnvFile(envBefore ?? "");
  if (envFile.problems.length) {
    throw new ServiceError(
      `${describeEnvProblems(layout.envFile, envFile.problems)}\n` +
        `These lines would not be read the same way by systemd (Linux) and /bin/sh (macOS); the service was not installed. ` +
        `Fix them (the format is described at the top of the file written by a first install), then run 'memproxy service install' again.`,
    );
  }

  // The config: the one given, or the one in the config folder, written the first time.
  let configPath: string;
  let configText: string;
  let litellm = await findLitellm(env);
  let wroteConfig = false;
  if (configArg !== undefined) {
    configPath = resolve(env.cwd, configArg);
    configText = await readConfig(configPath, layout.configDir);
  } else {
    configPath = join(layout.configDir, "config.yaml");
    const existing = await readText(configPath);
    wroteConfig = existing === undefined;
    configText =
      existing ??
      serviceConfigText({ configPath, envFile: layout.envFile, restartCommand: platform.restartCommand, litellmCommand: litellm.path ?? "litellm" });
    if (wroteConfig) steps.push({ kind: "write", path: configPath, text: configText, mode: 0o644, what: "the config (memproxy and LiteLLM)" });
  }

  // Every variable the config reads; LiteLLM's master key generated when it is missing or empty.
  const used = variablesUsed(configText);
  const vars = { ...envFile.vars };
  let generated: string | undefined;
  if (envBefore === undefined || (used.includes(MASTER_KEY) && !vars[MASTER_KEY])) {
    generated = generateMasterKey();
    vars[MASTER_KEY] = generated;
    const text = envBefore === undefined ? serviceEnvText({ restartCommand: platform.restartCommand, masterKey: generated }) : setEnvVar(envBefore, MASTER_KEY, generated);
    steps.push({
      kind: "write",
      path: layout.envFile,
      text,
      mode: 0o600,
      what: envBefore === undefined ? "the file for API keys (NAME=value lines, mode 600)" : `the API key file, with a generated ${MASTER_KEY}`,
      shown: redactEnv(text, generated),
    });
  }

  // A service with a broken config would only restart and fail: refuse it now, with the reasons. The
  // service sees the env file, not this shell's variables, so the config is checked with what it will see.
  let config: Config;
  try {
    config = parseConfig(configText, configPath, { ...serviceVars(env), ...vars });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const hint = err.problems.some((p) => p.includes("environment variable"))
      ? `\nThe service does not see your shell's variables: put them in ${layout.envFile} (NAME=value lines).`
      : "";
    io.err(`${err.problems.join("\n")}\nmemproxy: the configuration is invalid; the service was not installed.${hint}\n`);
    return 1;
  }

  // LiteLLM: the executable the config names, found as the service will find it (its folder goes on PATH).
  const warnings: string[] = [];
  if (config.litellm.spawn) {
    const command = [config.litellm.command].flat()[0]!;
    // The config install writes names the executable found above; another config may name another.
    if (litellm.path !== command && !(command === "litellm" && litellm.path)) litellm = await findLitellm(env, command);
    if (!litellm.path) {
      warnings.push(
        `'${command}' was not found (PATH, and memproxy's cache for 'litellm'), and memproxy starts LiteLLM with it: the service cannot serve until it is installed. ` +
          `Install it with ${LITELLM_INSTALL_HINT}, then run 'memproxy service install' again${configArg === undefined && !wroteConfig ? ` (or set memproxy.litellm.command in ${configPath} to its absolute path)` : ""}.`,
      );
    }
  } else {
    warnings.push(`${configPath} does not start LiteLLM (memproxy.litellm.spawn is not true): the service forwards to ${shownUrls(config.backends)}, which must be running.`);
  }
  const run = (argv: string[]) => runTool(argv, env);
  const sandbox = await platform.checkSandbox(run);
  if (sandbox.note) warnings.push(sandbox.note);
  const spec: UnitSpec = {
    argv: [...env.program, "--config", configPath],
    path: servicePath(env.program, config.litellm.spawn ? litellm.path : undefined),
    envFile: layout.envFile,
    userNamespaces: sandbox.userNamespaces,
  };
  warnings.push(...platform.pathWarnings([...env.program.slice(0, 2), configPath, ...(litellm.path ? [litellm.path] : [])]));
  const fresh = !(await exists(layout.unitFile));
  steps.push(...platform.installSteps(spec, fresh));
  const empty = used.filter((name) => !vars[name]);

  if (dryRun) {
    io.out("memproxy service install --dry-run: nothing is written or started.\n");
    if (sandbox.command) io.out(`checked: ${sandbox.command.map(shellQuote).join(" ")}: user namespaces ${sandbox.userNamespaces ? "available" : "not available"}\n`);
    printSteps(steps, io);
    io.out(`The service would run: ${spec.argv.map(shellQuote).join(" ")}\n  with PATH=${spec.path}\n`);
    if (litellm.path && config.litellm.spawn) io.out(`  LiteLLM: ${litellm.path} (${litellm.how})\n`);
    for (const w of warnings) io.out(`warning: ${w}\n`);
    if (empty.length) io.out(emptyMessage(empty, layout.envFile, platform));
    if (env.fromSource) io.out(sourceNote(env));
    return 0;
  }

  requireTool(env, platform, configPath);
  // A rewritten env file gets mode 600 anyway.
  if (envBefore !== undefined && generated === undefined) await warnIfReadableByOthers(layout.envFile, io);
  await carryOut(steps, run, io);

  const listen = urlOf(config.listen.host, config.listen.port);
  const lines = [
    `memproxy service installed and started: ${listen}`,
    `  ${`${platform.unitLabel}:`.padEnd(9)} ${layout.unitFile}`,
    `  config:   ${configPath}${wroteConfig ? " (written now: LiteLLM's models through Supermemory, LiteLLM started by memproxy)" : ""}`,
    `  API keys: ${layout.envFile}${generated ? ` (${MASTER_KEY} generated now: clients send it as their API key)` : ""}`,
    ...(config.litellm.spawn && litellm.path ? [`  LiteLLM:  ${litellm.path} (${litellm.how}), started by memproxy`] : []),
    `  logs:     ${platform.logsHint}`,
    `  status:   memproxy service status   (LiteLLM takes up to a minute to start)`,
  ];
  io.out(lines.join("\n") + "\n");
  for (const w of warnings) io.err(`memproxy: warning: ${w}\n`);
  if (empty.length) io.out(emptyMessage(empty, layout.envFile, platform));
  for (const l of platform.afterInstall()) io.out(`${l}\n`);
  if (env.fromSource) io.out(sourceNote(env));
  return 0;
}

async function uninstall(env: ServiceEnv, platform: Platform, io: ServiceIO, dryRun: boolean): Promise<number> {
  const { layout } = platform;
  if (!(await exists(layout.unitFile))) {
    io.out(`memproxy service is not installed (no ${layout.unitFile}); nothing to do.\n`);
    return 0;
  }
  const steps = platform.uninstallSteps();
  if (dryRun) {
    io.out("memproxy service uninstall --dry-run: nothing is stopped or removed.\n");
    printSteps(steps, io);
    return 0;
  }
  await carryOut(steps, (argv) => runTool(argv, env), io);
  io.out(`memproxy service removed. Kept the config and API key file in ${layout.configDir} (delete them yourself if you no longer need them).\n`);
  return 0;
}

function emptyMessage(names: string[], envFile: string, platform: Platform): string {
  return (
    `Still empty in ${envFile}: ${names.join(", ")}.\n` +
    `The config reads them (requests to models that need them fail until then): set them there, then run: ${platform.restartCommand}\n`
  );
}

/** `text` with every value shown as <redacted>, the generated one as <generated>. */
function redactEnv(text: string, generated: string): string {
  return text
    .split("\n")
    .map((l) => l.replace(/^([ \t]*[A-Za-z_][A-Za-z0-9_]*=)(.+)$/, (_, head: string, value: string) => `${head}${value.includes(generated) ? "<generated>" : "<redacted>"}`))
    .join("\n");
}

async function readConfig(path: string, configDir: string): Promise<string> {
  try {
    return await Bun.file(path).text();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "file not found" : code === "EISDIR" ? "is a directory" : code === "EACCES" ? "permission denied" : String(err);
    throw new ServiceError(`${path}: cannot read config: ${why}. Pass an existing YAML file to --config, or leave it out to use ${join(configDir, "config.yaml")}.`);
  }
}

function requireTool(env: ServiceEnv, platform: Platform, configPath: string): void {
  if (Bun.which(platform.tool, { PATH: env.vars.PATH ?? "" })) return;
  throw new ServiceError(
    `${platform.tool} was not found on PATH, so memproxy cannot be installed as a ${platform.manager} service here; nothing was changed. ` +
      `Run '${[...env.program, "--config", configPath].join(" ")}' under your own service manager instead.`,
  );
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
    `this bun moves. For a lasting service, install the compiled binary (a release, or 'npm run build') and run its 'memproxy service install'.\n`
  );
}
