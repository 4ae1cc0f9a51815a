// The benchmark (`npm run bench`): memproxy side by side with nginx, with a feature-less Bun proxy
// (the "bun floor") and with no proxy at all, on this machine, in one run. Prints a table with
// ratios and targets; writes .bench/results-*.json.
//
//   bun scripts/bench.ts [--quick] [--rounds N] [--duration S] [--only json,sse,upload,startup]
//                        [--binary PATH] [--lean] [--no-install]
//   bun scripts/bench.ts --compare A.json B.json
//
// Exits 0 when it measured (even if a target failed: this is a measurement), 1 when it could not run.
import { mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseConfig, type Config } from "../src/config.ts";
import { compileRouter } from "../src/router.ts";
import { nginxConfig, ROUTING_PROBES } from "./bench/nginx.ts";
import {
  cpuMsOf,
  lines,
  firstProxiedAnswer,
  freePort,
  machineBusy,
  memoryOf,
  rssOfAll,
  spawnChild,
  stopAll,
  stopChild,
  withChildren,
} from "./bench/procs.ts";
import { compare, PATHS, summarize, table, type BenchResults, type MemoryMetrics, type PathName, type Round, type SseMetrics, type UploadMetrics, type WrkMetrics } from "./bench/report.ts";
import type { SseResult } from "./bench/sse-client.ts";
import { median } from "./bench/stats.ts";
import { ensureTools, machine, versions } from "./bench/tools.ts";

const ROOT = join(import.meta.dir, "..");
const HERE = join(import.meta.dir, "bench");
const OUT = join(ROOT, ".bench");
const UPLOAD_BYTES = 20 * 2 ** 20;
const SCENARIOS = ["json", "sse", "upload", "startup"] as const;

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  allowPositionals: true,
  options: {
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    duration: { type: "string" },
    only: { type: "string" },
    binary: { type: "string" },
    lean: { type: "boolean", default: false },
    "no-install": { type: "boolean", default: false },
    compare: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});

if (args.help) {
  process.stdout.write((await Bun.file(import.meta.path).text()).split("\n").slice(0, 8).join("\n") + "\n");
  process.exit(0);
}
if (args.compare) {
  const files = Bun.argv.slice(2).filter((a) => a.endsWith(".json"));
  if (files.length !== 2) {
    log("--compare needs two results files, e.g. --compare .bench/results-A.json .bench/results-B.json");
    process.exit(1);
  }
  const [a, b] = await Promise.all(files.map((f) => Bun.file(f).json() as Promise<BenchResults>));
  console.log(compare(a!, b!));
  process.exit(0);
}

const quick = args.quick!;
const opts = {
  quick,
  rounds: Number(args.rounds ?? (quick ? 1 : 3)),
  /** Seconds per wrk run. */
  duration: Number(args.duration ?? (quick ? 3 : 8)),
  warmup: quick ? 1 : 2,
  sse: { streams: 100, events: 200, intervalMs: 10 },
  uploadsPerRound: quick ? 2 : 3,
  startupRuns: quick ? 3 : 7,
  settleMaxMs: quick ? 10_000 : 20_000,
  scenarios: (args.only?.split(",") ?? [...SCENARIOS]) as string[],
  /** memproxy without its access line, metrics and token counting (--lean). */
  lean: args.lean!,
};
/** What memproxy's bench config is given besides its backend and port: --lean turns the observation off. */
const CONFIG_ENV = opts.lean ? { BENCH_LOG_LEVEL: "warn", BENCH_METRICS: "false" } : { BENCH_LOG_LEVEL: "info", BENCH_METRICS: "true" };
for (const s of opts.scenarios) {
  if (!(SCENARIOS as readonly string[]).includes(s)) {
    log(`--only: unknown scenario '${s}' (choose from ${SCENARIOS.join(", ")})`);
    process.exit(1);
  }
}
if (!(opts.rounds >= 1) || !(opts.duration >= 1)) {
  log("--rounds and --duration must be numbers of at least 1");
  process.exit(1);
}

process.on("SIGINT", async () => {
  log("interrupted: stopping the processes the bench started");
  await stopAll();
  process.exit(130);
});

try {
  await bench();
  await stopAll();
  process.exit(0);
} catch (err) {
  log(`could not run: ${err instanceof Error ? err.message : String(err)}`);
  await stopAll();
  process.exit(1);
}

async function bench(): Promise<void> {
  const started = new Date();
  mkdirSync(OUT, { recursive: true });
  const notes: string[] = [];

  // 1. The programs.
  const binary = args.binary ?? join(OUT, "memproxy");
  if (!args.binary) {
    log("building memproxy (bun scripts/build.ts --outfile .bench/memproxy)...");
    const build = Bun.spawn([process.execPath, "scripts/build.ts", "--outfile", binary], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([build.stdout.text(), build.stderr.text(), build.exited]);
    if (code !== 0) throw new Error(`the build failed (exit ${code}):\n${out}${err}`);
  } else notes.push(`memproxy binary given with --binary: ${binary}`);
  const tools = await ensureTools(!args["no-install"], log);
  const busyBefore = await machineBusy();
  if (busyBefore > 0.1) {
    notes.push(`the machine was busy before the bench started (${(busyBefore * 100).toFixed(0)}% of its CPU used by other programs): expect noisy numbers`);
    log(notes.at(-1)!);
  }
  notes.push(...tools.notes);
  for (const n of tools.notes) log(n);

  // 2. The backend, memproxy and nginx, each on its own loopback port.
  const backend = spawnChild([process.execPath, join(HERE, "backend.ts")], { stdout: "pipe", stderr: "inherit" });
  const backendPort = await firstJsonLine<{ port: number }>(backend.stdout as ReadableStream<Uint8Array>).then((l) => l.port);
  const backendUrl = `http://127.0.0.1:${backendPort}`;
  const configFile = join(HERE, "memproxy.yaml");
  const configText = await Bun.file(configFile).text();
  const configFor = (port: number): Config => parseConfig(configText, configFile, { ...CONFIG_ENV, BENCH_BACKEND_URL: backendUrl, MEMPROXY_PORT: String(port) });
  if (opts.lean) {
    notes.push("memproxy ran lean (--lean): log level warn and metrics off, so no access line, metrics or token counting");
    log(notes.at(-1)!);
  }

  const memproxyPort = freePort();
  const memproxyLog = openSync(join(OUT, "memproxy-stdout.log"), "w");
  const memproxyEnv = { ...process.env, ...CONFIG_ENV, BENCH_BACKEND_URL: backendUrl, MEMPROXY_PORT: String(memproxyPort) };
  const memproxy = spawnChild([binary, "--config", configFile], { env: memproxyEnv, stdout: memproxyLog, stderr: memproxyLog });
  const urls: Partial<Record<PathName, string>> = { direct: backendUrl, memproxy: `http://127.0.0.1:${memproxyPort}` };
  await firstProxiedAnswer(`${urls.memproxy}/v1/chat/completions`, performance.now(), { timeoutMs: 10_000, exited: memproxy.exited });

  let nginxPids: number[] = [];
  if (tools.nginx) {
    const nginxUrl = await startNginx(tools.nginx, configFor(memproxyPort), backendPort).catch((err: Error) => {
      notes.push(`nginx did not start: ${err.message}`);
      log(`nginx did not start: ${err.message}`);
      return undefined;
    });
    if (nginxUrl) {
      urls.nginx = nginxUrl.url;
      nginxPids = nginxUrl.pids;
    }
  }
  // The bun floor: memproxy's stack without memproxy (scripts/bench/floor.ts), on the same Bun.
  const floorPort = freePort();
  const floor = spawnChild([process.execPath, join(HERE, "floor.ts"), String(floorPort), backendUrl], {
    env: { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: "65535" },
    stdout: "ignore",
    stderr: "inherit",
  });
  urls.floor = `http://127.0.0.1:${floorPort}`;
  await firstProxiedAnswer(`${urls.floor}/v1/chat/completions`, performance.now(), { timeoutMs: 10_000, exited: floor.exited });
  const paths = PATHS.filter((p) => urls[p]);
  const pidsOf: Record<PathName, number[]> = { direct: [backend.pid], nginx: nginxPids, floor: [floor.pid], memproxy: [memproxy.pid] };
  log(`paths: ${paths.map((p) => `${p} ${urls[p]}`).join(", ")}`);

  // 3. Same routing on both proxies, and what memproxy exposes.
  notes.push(...(await checkRouting(configFor(memproxyPort), urls)));
  const metrics = await fetch(`${urls.memproxy}/metrics`).then(async (r) => ((await r.text(), r.status === 200) ? "answered" : `status ${r.status}`)).catch(() => "unreachable");
  notes.push(`memproxy GET /metrics: ${metrics}`);

  // 4. Memory at idle, then sampled through the load.
  await Bun.sleep(1000);
  const idle = { memproxy: kbToMb(memoryOf(memproxy.pid!)?.rssKb ?? NaN), nginx: kbToMb(rssOfAll(nginxPids)) };
  const peak = { memproxy: idle.memproxy, nginx: idle.nginx };
  const sampler = setInterval(() => {
    peak.memproxy = Math.max(peak.memproxy, kbToMb(memoryOf(memproxy.pid!)?.rssKb ?? 0));
    if (nginxPids.length) peak.nginx = Math.max(peak.nginx, kbToMb(rssOfAll(nginxPids)));
  }, 100);

  const results: BenchResults = {
    format: "memproxy-bench/1",
    started: started.toISOString(),
    finished: "",
    options: opts,
    machine: machine(),
    versions: await versions(tools),
    notes,
    json: {},
    memory: {},
    rows: [],
  };

  // 5. The scenarios, each path in turn within a round, the order rotating between rounds.
  const order = (round: number) => paths.map((_, i) => paths[(i + round) % paths.length]!);
  if (opts.scenarios.includes("json") && tools.wrk) {
    for (const conns of [32, 256]) {
      log(`small JSON POST, ${conns} connections: warm-up, then ${opts.rounds} round(s) of ${opts.duration} s per path`);
      for (const p of paths) await wrk(tools.wrk, urls[p]!, conns, opts.warmup, pidsOf[p]);
      const rounds: Round<WrkMetrics>[] = [];
      for (let r = 0; r < opts.rounds; r++) {
        const round: Round<WrkMetrics> = {};
        for (const p of order(r)) {
          round[p] = await wrk(tools.wrk, urls[p]!, conns, opts.duration, pidsOf[p]);
          log(`  round ${r + 1} ${p}: ${Math.round(round[p]!.rps)} req/s, p50 ${round[p]!.p50Ms} ms, p99 ${round[p]!.p99Ms} ms${round[p]!.errors ? `, ${round[p]!.errors} errors` : ""}`);
          if (round[p]!.errors) notes.push(`wrk ${conns} conns via ${p}, round ${r + 1}: ${round[p]!.errors} errors`);
        }
        rounds.push(round);
      }
      results.json[String(conns)] = rounds;
    }
  }
  // Each later scenario starts once every process is quiet again: a runtime's garbage collection
  // after the previous load would otherwise be measured as the next scenario's delay.
  const allPids = Object.values(pidsOf).flat();
  if (opts.scenarios.includes("sse")) {
    await quiet(allPids, opts.settleMaxMs);
    const { streams, events, intervalMs } = opts.sse;
    log(`streaming: ${streams} concurrent SSE streams of ${events} events, ${intervalMs} ms apart, ${opts.rounds} round(s)`);
    // Warm-up: one run of the measured size per path, so that no path (and not the client) is
    // measured while its runtime still compiles the code of a stream's start, events and end.
    const client = new SseClient();
    for (const p of paths) await client.run(urls[p]!, streams, events, intervalMs, pidsOf[p]);
    const rounds: Round<SseMetrics>[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      const round: Round<SseMetrics> = {};
      for (const p of order(r)) {
        const res = await client.run(urls[p]!, streams, events, intervalMs, pidsOf[p]);
        round[p] = {
          delayP50: res.delayP50,
          delayP99: res.delayP99,
          delayMax: res.delayMax,
          totalMs: res.totalMs,
          received: res.received,
          expected: streams * events,
          batched: res.batched,
          outOfOrder: res.outOfOrder,
          errors: res.errors,
          cpuMsPer1kEvents: (res.cpuMs / res.received) * 1000,
        };
        log(`  round ${r + 1} ${p}: delay p50 ${res.delayP50.toFixed(3)} ms, p99 ${res.delayP99.toFixed(3)} ms, batched ${res.batched}, out of order ${res.outOfOrder}`);
        if (res.errors.length) notes.push(`SSE via ${p}, round ${r + 1}: ${res.errors.join("; ")}`);
      }
      rounds.push(round);
    }
    await client.stop();
    results.sse = { streams, events, intervalMs, rounds };
  }
  if (opts.scenarios.includes("upload")) {
    await quiet(allPids, opts.settleMaxMs);
    log(`request body of ${UPLOAD_BYTES / 2 ** 20} MB: ${opts.uploadsPerRound} per path per round, ${opts.rounds} round(s)`);
    const payload = new Uint8Array(UPLOAD_BYTES).map((_, i) => (i * 31) & 0xff);
    for (const p of paths) await upload(urls[p]!, payload);
    const rounds: Round<UploadMetrics>[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      const round: Round<UploadMetrics> = {};
      for (const p of order(r)) {
        const runsMs: number[] = [];
        for (let i = 0; i < opts.uploadsPerRound; i++) runsMs.push(await upload(urls[p]!, payload));
        round[p] = { ms: median(runsMs), runsMs };
      }
      log(`  round ${r + 1}: ${paths.map((p) => `${p} ${round[p]!.ms.toFixed(1)} ms`).join(", ")}`);
      rounds.push(round);
    }
    results.upload = { bytes: UPLOAD_BYTES, rounds };
  }

  // 6. Memory after the load: until it stops moving (bounded).
  clearInterval(sampler);
  const hwm = kbToMb(memoryOf(memproxy.pid!)?.hwmKb ?? NaN);
  log("waiting for memory to settle after the load...");
  const settled = await settle(() => kbToMb(memoryOf(memproxy.pid!)?.rssKb ?? NaN), opts.settleMaxMs);
  const memproxyMem: MemoryMetrics = { idleMb: idle.memproxy, peakMb: Math.max(peak.memproxy, hwm), afterMb: settled.value, settleMs: settled.ms };
  results.memory.memproxy = memproxyMem;
  if (nginxPids.length) {
    results.memory.nginx = { idleMb: idle.nginx, peakMb: peak.nginx, afterMb: kbToMb(rssOfAll(nginxPids)), settleMs: settled.ms };
  }

  // 7. Start-up: fresh processes, nothing else running against them.
  if (opts.scenarios.includes("startup")) {
    log(`start-up: ${opts.startupRuns} runs of the binary, spawn to first proxied 200`);
    const startupLog = openSync(join(OUT, "startup-stdout.log"), "w");
    const once = async () => {
      const port = freePort();
      const t0 = performance.now();
      const proc = spawnChild([binary, "--config", configFile], {
        env: { ...process.env, ...CONFIG_ENV, BENCH_BACKEND_URL: backendUrl, MEMPROXY_PORT: String(port) },
        stdout: startupLog,
        stderr: startupLog,
      });
      try {
        return await firstProxiedAnswer(`http://127.0.0.1:${port}/v1/chat/completions`, t0, { timeoutMs: 10_000, exited: proc.exited });
      } finally {
        await stopChild(proc);
      }
    };
    await once(); // the binary's pages into the cache
    const runsMs: number[] = [];
    for (let i = 0; i < opts.startupRuns; i++) runsMs.push(await once());
    results.startup = { runsMs, medianMs: median(runsMs), maxMs: Math.max(...runsMs) };
  }

  await stopAll();
  // A full run logs some 750 MB (one line per request from each proxy): keep only the tails.
  for (const log of [join(OUT, "memproxy-stdout.log"), join(OUT, "nginx", "access.log")]) await keepTail(log, 256 * 1024);
  const busyAfter = await machineBusy();
  if (busyAfter > 0.1) notes.push(`the machine was busy right after the bench (${(busyAfter * 100).toFixed(0)}% of its CPU used by other programs): expect noisy numbers`);
  results.busy = { before: busyBefore, after: busyAfter };
  results.finished = new Date().toISOString();
  results.rows = summarize(results);
  const file = join(OUT, `results-${started.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");

  const m = results.machine;
  console.log(`\nmemproxy benchmark — ${m.nproc} cores, ${m.cpu}, ${m.memory_gib} GiB, Linux ${m.kernel}`);
  console.log(Object.entries(results.versions).map(([k, v]) => `${k} ${v}`).join(" · "));
  console.log(`${opts.rounds} round(s); wrk runs of ${opts.duration} s; medians over rounds; "vs" columns are medians of same-round comparisons.\n`);
  console.log(table(results.rows));
  if (notes.length) console.log(`\nnotes:\n${notes.map((n) => `- ${n}`).join("\n")}`);
  console.log(`\nresults: ${file}`);
}

function kbToMb(kb: number): number {
  return kb / 1024;
}

/** Reads a child's stdout up to its first line, parsed as JSON. */
async function firstJsonLine<T>(stream: ReadableStream<Uint8Array>): Promise<T> {
  const dec = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += dec.decode(chunk, { stream: true });
    const nl = text.indexOf("\n");
    if (nl >= 0) return JSON.parse(text.slice(0, nl)) as T;
  }
  throw new Error(`the backend exited without saying its port (output: ${JSON.stringify(text)})`);
}

/** Starts nginx in the foreground with its own prefix under .bench/nginx; resolves once it proxies. */
async function startNginx(bin: string, config: Config, backendPort: number): Promise<{ url: string; pids: number[] }> {
  const prefix = join(OUT, "nginx");
  rmSync(prefix, { recursive: true, force: true });
  mkdirSync(prefix, { recursive: true });
  const buildInfo = await Bun.spawn([bin, "-V"], { stdout: "pipe", stderr: "pipe" }).stderr.text();
  const port = freePort();
  const conf = join(prefix, "nginx.conf");
  writeFileSync(conf, nginxConfig(config, { port, backendPort, prefix, buildInfo }));
  const proc = spawnChild([bin, "-p", prefix, "-e", join(prefix, "error.log"), "-c", conf], { stdout: "ignore", stderr: "pipe" });
  const url = `http://127.0.0.1:${port}`;
  try {
    await firstProxiedAnswer(`${url}/v1/chat/completions`, performance.now(), { timeoutMs: 10_000, exited: proc.exited });
  } catch (err) {
    const stderr = proc.exitCode !== null ? await (proc.stderr as ReadableStream<Uint8Array>).text() : "";
    throw new Error(`${(err as Error).message}${stderr ? `\n${stderr.trim()}` : ""} (config: ${conf})`);
  }
  return { url, pids: withChildren(proc.pid) };
}

/**
 * Sends the same header sets through each proxy and compares the user id the backend received
 * with memproxy's own router: the nginx config must route exactly alike for the race to be fair.
 * @returns notes on any difference (none when all agree).
 */
async function checkRouting(config: Config, urls: Partial<Record<PathName, string>>): Promise<string[]> {
  const router = compileRouter(config.routing);
  const problems: string[] = [];
  for (const p of ["memproxy", "nginx"] as const) {
    if (!urls[p]) continue;
    for (const headers of ROUTING_PROBES) {
      const want = router(new Headers(headers));
      const res = await fetch(`${urls[p]}/v1/chat/completions`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: "{}" });
      const body = (await res.json().catch(() => ({}))) as { user?: string };
      const got = res.status === 200 ? body.user : `status ${res.status}`;
      const expected = want.ok ? want.decision.user_id : "status 400";
      if (got !== expected) problems.push(`routing differs via ${p} for ${JSON.stringify(headers)}: got ${got}, memproxy's router says ${expected}`);
    }
  }
  for (const line of problems) log(line);
  if (!problems.length) log("routing check: memproxy and nginx route all probes alike");
  return problems;
}

/** One wrk run; `conns` connections on 2 threads (at most one per connection); `pids` are the path's own processes. */
async function wrk(bin: string, base: string, conns: number, seconds: number, pids: number[]): Promise<WrkMetrics> {
  const cpu0 = cpuMsOf(pids);
  const proc = spawnChild(
    [bin, `-t${Math.min(2, conns)}`, `-c${conns}`, `-d${seconds}s`, "--timeout", "10s", "-s", join(HERE, "post-json.lua"), `${base}/v1/chat/completions`],
    { stdout: "pipe", stderr: "pipe" },
  );
  const [out, err, code] = await Promise.all([(proc.stdout as ReadableStream).text(), (proc.stderr as ReadableStream).text(), proc.exited]);
  const line = out.split("\n").find((l) => l.startsWith("BENCH_RESULT "));
  const cpuMs = cpuMsOf(pids) - cpu0;
  if (code !== 0 || !line) throw new Error(`wrk failed (exit ${code}): ${out}${err}`);
  const r = JSON.parse(line.slice("BENCH_RESULT ".length)) as {
    requests: number;
    duration_us: number;
    errors: Record<string, number>;
    p50_us: number;
    p90_us: number;
    p99_us: number;
    max_us: number;
  };
  await Bun.sleep(300); // let the last connections close before the next path starts
  return {
    rps: r.requests / (r.duration_us / 1e6),
    p50Ms: r.p50_us / 1000,
    p90Ms: r.p90_us / 1000,
    p99Ms: r.p99_us / 1000,
    maxMs: r.max_us / 1000,
    requests: r.requests,
    errors: Object.values(r.errors).reduce((a, b) => a + b, 0),
    cpuUsPerReq: (cpuMs * 1000) / r.requests,
  };
}

/**
 * The streaming client: one process, outside our loop, for every streaming run. It stays up from the
 * warm-up to the last round, so that its runtime has compiled its event handling before the first
 * measured run: a fresh client per run showed its own compiling as bursts of late events on every
 * path, direct included, larger through a proxy.
 */
class SseClient {
  private proc = spawnChild([process.execPath, join(HERE, "sse-client.ts"), "--serve"], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  private lines = lines(this.proc.stdout as ReadableStream<Uint8Array>);

  /** One run through `base`; `pids` are the path's own processes, whose CPU time it measures. */
  async run(base: string, streams: number, events: number, intervalMs: number, pids: number[]): Promise<SseResult & { cpuMs: number }> {
    const cpu0 = cpuMsOf(pids);
    const stdin = this.proc.stdin as import("bun").FileSink;
    stdin.write(JSON.stringify({ url: base, streams, events, intervalMs }) + "\n");
    stdin.flush();
    const { value: out, done } = await this.lines.next();
    const cpuMs = cpuMsOf(pids) - cpu0;
    if (done) throw new Error(`the SSE client exited (code ${await this.proc.exited}); its error is above`);
    await Bun.sleep(300);
    return { ...(JSON.parse(out) as SseResult), cpuMs };
  }

  async stop(): Promise<void> {
    (this.proc.stdin as import("bun").FileSink).end();
    await stopChild(this.proc);
  }
}

/** POSTs the body once; checks the backend got every byte; returns the time in ms. */
async function upload(base: string, payload: Uint8Array): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/upload`, {
    method: "POST",
    body: payload,
    headers: { "content-type": "application/octet-stream", "user-agent": "claude-cli/2.1.197 (external, cli)" },
  });
  const got = (await res.json()) as { bytes?: number };
  const ms = performance.now() - t0;
  if (res.status !== 200 || got.bytes !== payload.length) {
    throw new Error(`upload via ${base}: status ${res.status}, backend got ${got.bytes} of ${payload.length} bytes`);
  }
  return ms;
}

/** Cuts a file down to its last `bytes` bytes (a missing file is left alone). */
async function keepTail(path: string, bytes: number): Promise<void> {
  const file = Bun.file(path);
  if (!(await file.exists()) || file.size <= bytes) return;
  const tail = await file.slice(file.size - bytes).text();
  await Bun.write(path, tail.slice(tail.indexOf("\n") + 1));
}

/** Waits until `pids` used at most one clock tick (10 ms) in each of two 250 ms samples in a row, or `maxMs` passed. */
async function quiet(pids: number[], maxMs: number): Promise<void> {
  const t0 = performance.now();
  let last = cpuMsOf(pids);
  let calm = 0;
  while (calm < 2 && performance.now() - t0 < maxMs) {
    await Bun.sleep(250);
    const now = cpuMsOf(pids);
    calm = now - last <= 10 ? calm + 1 : 0;
    last = now;
  }
  log(`processes quiet after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/** Samples `read` every 500 ms until four samples in a row lie within 1 MB, or `maxMs` passed. */
async function settle(read: () => number, maxMs: number): Promise<{ value: number; ms: number }> {
  const t0 = performance.now();
  const recent: number[] = [];
  for (;;) {
    recent.push(read());
    if (recent.length > 4) recent.shift();
    const elapsed = performance.now() - t0;
    if ((recent.length === 4 && Math.max(...recent) - Math.min(...recent) <= 1) || elapsed >= maxMs) {
      return { value: recent.at(-1)!, ms: elapsed };
    }
    await Bun.sleep(500);
  }
}
