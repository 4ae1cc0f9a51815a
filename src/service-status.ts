// `memproxy service status`: whether the service runs, and whether the memproxy answering at its address is
// the service's own (the PID its manager reports against the pid memproxy reports in GET /health).
import { urlOf } from "./address.ts";
import { ConfigError, parseConfig, type Config } from "./config.ts";
import { ENDPOINTS } from "./endpoints.ts";
import { parseEnvFile } from "./service-env-file.ts";
import { runTool, type ManagerState, type Platform, type ServiceEnv } from "./service-platform.ts";
import { exists, readText, shellQuote, type ServiceIO } from "./service-plan.ts";
import { serviceVars } from "./service-stack.ts";

/** What answers at memproxy's address. */
type Answer =
  | { kind: "nothing"; error: string }
  | { kind: "other"; status: number }
  | { kind: "memproxy"; pid: number | undefined; health: string; problem: string | undefined };

/**
 * Prints the service's state and who answers at its address.
 * @returns 0 when the service's own memproxy answers and is healthy, 3 when not (with why), 4 when not installed.
 */
export async function serviceStatus(env: ServiceEnv, platform: Platform, io: ServiceIO): Promise<number> {
  const { layout } = platform;
  if (!(await exists(layout.unitFile))) {
    io.out(`memproxy service is not installed (no ${layout.unitFile}). Install it with: memproxy service install\n`);
    return 4;
  }
  const args = platform.programArgs(await Bun.file(layout.unitFile).text());
  const at = args.indexOf("--config");
  const configPath = at >= 0 ? args[at + 1] : undefined;
  io.out(`${`${platform.unitLabel}:`.padEnd(10)} ${layout.unitFile}\n`);
  io.out(`${"runs:".padEnd(10)} ${args.map(shellQuote).join(" ")}\n`);

  const state: ManagerState = Bun.which(platform.tool, { PATH: env.vars.PATH ?? "" })
    ? await platform.query((argv) => runTool(argv, env))
    : { summary: `${platform.tool} is not on PATH: cannot ask ${platform.manager} about the service`, pid: null };
  io.out(`${`${platform.manager}:`.padEnd(10)} ${state.summary}\n`);

  const base = await listenUrl(env, layout.envFile, configPath);
  if (typeof base !== "string") {
    io.out(`cannot tell where memproxy listens: ${base.error}\n`);
    return notServing(io, platform, state);
  }
  const answer = await probe(base);
  const own = answer.kind === "memproxy" && state.pid !== null && answer.pid === state.pid;
  if (own) {
    io.out(`answering: ${base}: the service's memproxy (pid ${state.pid}), ${answer.health}\n`);
    if (!answer.problem) return 0;
    io.out(`not ready: ${answer.problem}\n`);
    return notServing(io, platform, state);
  }
  const service = state.pid === null ? "the service is not running" : `the service runs (pid ${state.pid})`;
  if (answer.kind === "nothing") io.out(`not answering: ${base}${ENDPOINTS.health} (${answer.error}); ${service}\n`);
  else if (answer.kind === "other") io.out(`not memproxy: something else answers at ${base} (GET ${ENDPOINTS.health}: ${answer.status}); ${service}\n`);
  else if (answer.pid === undefined) io.out(`not the service's: a memproxy that does not report its pid (an older version?) answers at ${base}; ${service}\n`);
  else {
    io.out(`not the service's: another memproxy answers at ${base}: pid ${answer.pid}${await commandOf(answer.pid, env)}; ${service}\n`);
    io.out(`Stop that one (it holds the service's address), then: ${platform.restartCommand}\n`);
  }
  return notServing(io, platform, state);
}

function notServing(io: ServiceIO, platform: Platform, state: ManagerState): number {
  if (state.details) io.out(`${state.details}\n`);
  io.out(`See the logs: ${platform.logsHint}\n`);
  return 3;
}

/** memproxy's base URL from the config in the unit, read with the env file's variables as the service reads it. */
async function listenUrl(env: ServiceEnv, envPath: string, configPath: string | undefined): Promise<string | { error: string }> {
  if (!configPath) return { error: "no --config in the unit" };
  let config: Config;
  try {
    const envVars = parseEnvFile((await readText(envPath)) ?? "").vars;
    config = parseConfig(await Bun.file(configPath).text(), configPath, { ...serviceVars(env), ...envVars });
  } catch (err) {
    return { error: err instanceof ConfigError ? err.problems.join("; ") : `${configPath}: ${(err as Error).message}` };
  }
  return urlOf(config.listen.host, config.listen.port);
}

/** Asks GET /health who answers: memproxy reports its pid and state there. */
async function probe(base: string): Promise<Answer> {
  let res: Response;
  try {
    res = await fetch(`${base}${ENDPOINTS.health}`, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    return { kind: "nothing", error: (err as Error).message };
  }
  const body = (await res.json().catch(() => undefined)) as Record<string, any> | undefined;
  if (!body || body.memory_proxy !== "up") return { kind: "other", status: res.status };
  const pid = typeof body.pid === "number" ? body.pid : undefined;
  const health = typeof body.status === "string" ? body.status : "unknown";
  let problem: string | undefined;
  if (health !== "healthy") {
    const child = body.litellm as { state?: string; error?: string | null } | undefined;
    const down = Array.isArray(body.backends) ? body.backends.filter((b: any) => b?.status !== "up").map((b: any) => `${b.url}${b.last_error ? ` (${b.last_error})` : ""}`) : [];
    problem = [
      `memproxy reports ${health}`,
      child?.state && child.state !== "ready" ? `LiteLLM ${child.state}${child.error ? `: ${child.error}` : ""}` : "",
      down.length ? `backend down: ${down.join(", ")}` : "",
    ]
      .filter(Boolean)
      .join("; ");
  }
  return { kind: "memproxy", pid, health, problem };
}

/** The command line of process `pid`, when this machine shows it (" (memproxy --config ...)"), else "". */
async function commandOf(pid: number, env: ServiceEnv): Promise<string> {
  try {
    const cmdline = await Bun.file(`/proc/${pid}/cmdline`).text();
    return ` (${cmdline.split("\0").filter(Boolean).map(shellQuote).join(" ")})`;
  } catch {
    const r = await runTool(["ps", "-o", "command=", "-p", String(pid)], env);
    return r.code === 0 && r.stdout.trim() ? ` (${r.stdout.trim()})` : "";
  }
}
