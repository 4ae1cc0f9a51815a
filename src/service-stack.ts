// What the service runs: the config `memproxy service install` writes (memproxy starting LiteLLM, with
// models through Supermemory), the environment file with every variable it needs, the litellm executable,
// and the PATH of the unit.
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseDocument } from "yaml";
import configTemplate from "../scripts/service/config.yaml" with { type: "text" };
import envTemplate from "../scripts/service/memproxy.env" with { type: "text" };
import { DEFAULT_CONFIG_TEXT } from "./config.ts";
import { formatEnvLine } from "./service-env-file.ts";
import type { ServiceEnv } from "./service-platform.ts";
import { shellQuote } from "./service-plan.ts";

/** The system folders the service's PATH ends with. */
export const SYSTEM_PATH = ["/usr/local/bin", "/usr/bin", "/bin"];
/** How to install LiteLLM, for messages. */
export const LITELLM_INSTALL_HINT = "pip install 'litellm[proxy]' (or, from memproxy's source: bash scripts/setup-litellm.sh)";

/**
 * Fills `{{NAME}}` placeholders.
 * @throws Error for a placeholder without a value (a template and its caller out of step).
 */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`service template: no value for {{${name}}}`);
    return value;
  });
}

/**
 * The config a first install writes: the LiteLLM models (through Supermemory's router, keys from the
 * environment), and memproxy's defaults with LiteLLM started and supervised by memproxy.
 * @param litellmCommand the litellm executable, absolute when it was found.
 */
export function serviceConfigText(opts: { configPath: string; envFile: string; restartCommand: string; litellmCommand: string }): string {
  const doc = parseDocument(DEFAULT_CONFIG_TEXT);
  // The backend follows the LiteLLM memproxy starts (memproxy.litellm.host and port).
  doc.delete("litellm_backend_url");
  const litellm = doc.createNode({
    spawn: true,
    command: opts.litellmCommand,
    env: { LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS: "True" },
  });
  litellm.commentBefore =
    " memproxy starts LiteLLM on this file (at 127.0.0.1:8765 unless host/port are set here), supervises\n" +
    " it and forwards to it. env: no fetch of Anthropic's beta-header list at start.";
  doc.setIn(["memproxy", "litellm"], litellm);
  return renderTemplate(configTemplate, {
    CONFIG: shellQuote(opts.configPath),
    ENV_FILE: opts.envFile,
    RESTART: opts.restartCommand,
    MEMPROXY: doc.toString({ lineWidth: 0 }).trim(),
  });
}

/** The environment file a first install writes, with a generated LITELLM_MASTER_KEY when given. */
export function serviceEnvText(opts: { restartCommand: string; masterKey: string }): string {
  return renderTemplate(envTemplate, { RESTART: opts.restartCommand, MASTER_KEY_LINE: formatEnvLine("LITELLM_MASTER_KEY", opts.masterKey) });
}

/** A master key LiteLLM accepts: sk- and 64 random hex digits (what LiteLLM's own refusal message suggests). */
export function generateMasterKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `sk-${Buffer.from(bytes).toString("hex")}`;
}

/** The variables a config reads from the environment as `os.environ/NAME` (LiteLLM's form, also memproxy's). */
export function variablesUsed(configText: string): string[] {
  return [...new Set([...configText.matchAll(/^[^#\n]*?os\.environ\/([A-Za-z_][A-Za-z0-9_]*)/gm)].map((m) => m[1]!))];
}

/** Where litellm was found, and how. */
export interface LitellmLookup {
  /** The absolute path, when found. */
  path?: string;
  /** How it was found, for the user: "on PATH", "through pyenv", "installed by scripts/setup-litellm.sh". */
  how?: string;
}

/**
 * Finds the executable `command` (litellm by default) as the service will run it: on PATH, a pyenv shim
 * resolved to the real executable (the service does not get pyenv's shell setup), else (litellm only)
 * the newest install of scripts/setup-litellm.sh in memproxy's cache.
 */
export async function findLitellm(env: ServiceEnv, command = "litellm"): Promise<LitellmLookup> {
  if (command.includes("/")) return (await Bun.file(command).exists()) ? { path: command, how: "as configured" } : {};
  const onPath = Bun.which(command, { PATH: env.vars.PATH ?? "" });
  if (onPath && /\/shims$/.test(dirname(onPath))) {
    const pyenv = join(dirname(dirname(onPath)), "libexec", "pyenv");
    if (await Bun.file(pyenv).exists()) {
      const proc = Bun.spawn([pyenv, "which", command], { cwd: env.cwd, env: env.vars, stdin: "ignore", stdout: "pipe", stderr: "ignore" });
      const [out, code] = await Promise.all([proc.stdout.text(), proc.exited]);
      if (code === 0 && out.trim().startsWith("/")) return { path: out.trim(), how: "through pyenv" };
    }
  } else if (onPath) {
    return { path: onPath, how: "on PATH" };
  }
  const shim = onPath ? { path: onPath, how: "a pyenv shim (pyenv could not name the real executable)" } : {};
  if (command !== "litellm") return shim;
  const cache = env.vars.MEMPROXY_CACHE_DIR || join(env.home, ".cache", "memproxy");
  let versions: string[] = [];
  try {
    versions = readdirSync(cache).filter((d) => /^litellm-\d/.test(d));
  } catch {
    // no cache
  }
  versions.sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
  for (const v of versions) {
    const path = join(cache, v, "venv", "bin", "litellm");
    if (await Bun.file(path).exists()) return { path, how: "installed by scripts/setup-litellm.sh" };
  }
  return shim;
}

/** The unit's PATH: the folders of memproxy's program and of litellm (when known), then the system's; no repeats. */
export function servicePath(program: string[], litellm: string | undefined): string {
  const dirs = [dirname(program[0]!), ...(litellm ? [dirname(litellm)] : []), ...SYSTEM_PATH];
  return [...new Set(dirs)].join(":");
}

/** The variables a service gets from its manager besides the env file (PATH: the unit's system part). */
export function serviceVars(env: ServiceEnv): Record<string, string | undefined> {
  const { HOME, USER, LOGNAME } = env.vars;
  return { HOME: HOME ?? env.home, USER, LOGNAME, PATH: SYSTEM_PATH.join(":") };
}
