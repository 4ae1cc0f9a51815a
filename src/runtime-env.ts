// Settings of memproxy's own Bun runtime that Bun reads from the environment at process start only:
// main.ts re-executes memproxy with them set (or, where that fails, e.g. under QEMU user emulation, runs
// without them and says so in one line), and the supervisor keeps them out of LiteLLM's environment.
// - fetch() allows only 256 requests at once by default (the rest queue), and long SSE streams hold
//   theirs for minutes;
// - Bun.serve refuses request headers over 16 KiB with a bare 431 before memproxy sees them: raised
//   above the largest memproxy.limits.max_header_size, so that memproxy's own limit answers, in the
//   OpenAI error shape;
// - the garbage collector marks with one thread rather than one per core: memproxy's heap is small, and on
//   a busy machine parallel marking waits for its helper threads to be scheduled (shorter pauses; the
//   measurements are in scripts/bench/README.md).

/** Environment variables and the values memproxy runs with unless they are set already. */
const VARIABLES: Record<string, string> = {
  BUN_CONFIG_MAX_HTTP_REQUESTS: "65535",
  BUN_JSC_numberOfGCMarkers: "1",
};
/** A flag given through BUN_OPTIONS, unless BUN_OPTIONS already gives it. */
const HEADER_LIMIT = "--max-http-header-size";
const HEADER_LIMIT_BYTES = 512 * 1024;
const HEADER_FLAG = `${HEADER_LIMIT}=${HEADER_LIMIT_BYTES}`;
/** What memproxy does without each setting, for the warning when it cannot have them. */
const WITHOUT: Record<string, string> = {
  BUN_CONFIG_MAX_HTTP_REQUESTS: "at most 256 backend requests at once (more queue)",
  BUN_JSC_numberOfGCMarkers: "longer GC pauses on a busy machine",
  BUN_OPTIONS: "request headers over 16 KiB get a bare 431",
};

/** Every variable memproxy's runtime settings are made of. */
export const RUNTIME_ENV_NAMES: readonly string[] = [...Object.keys(VARIABLES), "BUN_OPTIONS"];

/**
 * The environment memproxy should run with: `env` with every setting it lacks added (a value already
 * set is kept).
 * @returns undefined when `env` has them all.
 */
export function withRuntimeSettings(env: Record<string, string | undefined>): Record<string, string | undefined> | undefined {
  const options = env.BUN_OPTIONS ?? "";
  const missing = Object.keys(VARIABLES).filter((name) => !env[name]);
  if (!missing.length && options.includes(HEADER_LIMIT)) return undefined;
  const out = { ...env };
  for (const name of missing) out[name] = VARIABLES[name];
  if (!options.includes(HEADER_LIMIT)) out.BUN_OPTIONS = `${options} ${HEADER_FLAG}`.trim();
  return out;
}

/**
 * The one line memproxy logs when it could not re-execute itself with `wanted` (from withRuntimeSettings):
 * what it runs without, what that means, and how to start it with them. `env` is the environment it runs with.
 */
export function runtimeSettingsWarning(env: Record<string, string | undefined>, wanted: Record<string, string | undefined>, error: unknown): string {
  const changed = RUNTIME_ENV_NAMES.filter((name) => wanted[name] !== env[name]);
  const code = (error as { code?: unknown } | null)?.code;
  const why = (typeof code === "string" ? code : error instanceof Error ? error.message : String(error)).replace(/\s+/g, " ");
  // The user's own BUN_OPTIONS is not repeated (it can be long): only what it lacks.
  const fixes = changed.map((name) =>
    name !== "BUN_OPTIONS" ? `${name}=${wanted[name]}` : env.BUN_OPTIONS ? `${HEADER_FLAG} added to BUN_OPTIONS` : `BUN_OPTIONS=${HEADER_FLAG}`,
  );
  return (
    `memproxy: warning: cannot re-execute itself with its runtime settings (${why}), so it runs without them: ` +
    `${changed.map((name) => WITHOUT[name]).join(", ")}. To avoid this, start it with ${fixes.join(" ")}`
  );
}
