// memproxy's entry point: `bun src/main.ts` in development, the compiled binary in production.

// Long SSE streams hold their backend request for minutes, and fetch() allows only 256 at once by
// default (the rest queue). Bun reads the limit from the environment at process start only, so
// re-execute this same process (same PID, for service managers) with it raised.
const FETCH_LIMIT = "BUN_CONFIG_MAX_HTTP_REQUESTS";
if (!process.env[FETCH_LIMIT] && typeof process.execve === "function") {
  const compiled = import.meta.path.startsWith("/$bunfs/") || import.meta.path.startsWith("B:/~BUN/");
  const args = compiled ? process.argv.slice(2) : process.argv.slice(1);
  process.execve(process.execPath, [process.execPath, ...args], { ...process.env, [FETCH_LIMIT]: "65535" });
}

// Loaded only now: before a re-exec, loading the whole program would be paid twice.
const { main } = await import("./cli.ts");
process.exit(await main(process.argv.slice(2)));
