// memproxy's entry point: `bun src/main.ts` in development, the compiled binary in production.

// Some settings of Bun's are read from the environment at process start only, so this same process
// re-executes itself (same PID, for service managers) with them set:
// - fetch() allows only 256 requests at once by default (the rest queue), and long SSE streams hold
//   theirs for minutes;
// - Bun.serve refuses request headers over 16 KiB with a bare 431 before memproxy sees them: raised
//   above the largest memproxy.limits.max_header_size, so that memproxy's own limit answers, in the
//   OpenAI error shape;
// - the garbage collector marks with one thread rather than one per core: memproxy's heap is small
//   (about 15 MB), and on a busy machine parallel marking waits for its helper threads to be scheduled.
//   Measured on 2 cores under load: eden pauses of 0.63 ms instead of 0.84 (median) and 1.2 ms instead
//   of 3.8 (longest), and the p99 of small requests 0.1 to 0.2 ms lower.
// A value already set in the environment is kept.
const FETCH_LIMIT = "BUN_CONFIG_MAX_HTTP_REQUESTS";
const HEADER_LIMIT = "--max-http-header-size";
const GC_MARKERS = "BUN_JSC_numberOfGCMarkers";
const options = process.env.BUN_OPTIONS ?? "";
if ((!process.env[FETCH_LIMIT] || !options.includes(HEADER_LIMIT) || !process.env[GC_MARKERS]) && typeof process.execve === "function") {
  const compiled = import.meta.path.startsWith("/$bunfs/") || import.meta.path.startsWith("B:/~BUN/");
  const args = compiled ? process.argv.slice(2) : process.argv.slice(1);
  process.execve(process.execPath, [process.execPath, ...args], {
    ...process.env,
    [FETCH_LIMIT]: process.env[FETCH_LIMIT] || "65535",
    BUN_OPTIONS: options.includes(HEADER_LIMIT) ? options : `${options} ${HEADER_LIMIT}=${512 * 1024}`.trim(),
    [GC_MARKERS]: process.env[GC_MARKERS] || "1",
  });
}

// Loaded only now: before a re-exec, loading the whole program would be paid twice.
const { main } = await import("./cli.ts");
process.exit(await main(process.argv.slice(2)));
