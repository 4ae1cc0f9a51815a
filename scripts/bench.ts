// The benchmark (`npm run bench`): memproxy side by side with nginx, with a feature-less Bun proxy
// (the "bun floor") and with no proxy at all, on this machine, in one run: issue 21's targets (open-loop
// latency, the features' CPU cost, throughput, team scale, idle) with PASS/FAIL. Prints the table;
// writes .bench/results-*.json. How each number is measured: scripts/bench/README.md.
//
//   bun scripts/bench.ts [--quick] [--rounds N] [--duration S] [--only json,open,sse,upload,scale,idle,startup]
//                        [--binary PATH] [--lean] [--with-page N] [--profile] [--no-install]
//   bun scripts/bench.ts --compare A.json B.json
//
// Exits 0 when it measured (even if a target failed: this is a measurement), 1 when it could not run.
import { mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import { parseConfig, type Config } from "../src/config.ts";
import { compileRouter } from "../src/router.ts";
import { withRuntimeSettings } from "../src/runtime-env.ts";
import { buildLikeMemproxy, buildMemproxy } from "./bench/builds.ts";
import type { IdleReport } from "./bench/idle-client.ts";
import { nextSweepFactor, ohaCommand, OPEN_LOOP_CONNECTIONS, parseOha, parseWrk, wrkCommand, type SweepPoint } from "./bench/loadgen.ts";
import { rssCurve, RssSampler, steadyRss } from "./bench/memory.ts";
import { nginxConfig, ROUTING_PROBES } from "./bench/nginx.ts";
import type { PageReport } from "./bench/page-client.ts";
import {
  cpuMsOf,
  fdLimitOf,
  firstProxiedAnswer,
  freePort,
  lines,
  machineBusy,
  memoryOf,
  rssOfAll,
  spawnChild,
  stopAll,
  stopChild,
  withChildren,
  withFdLimit,
} from "./bench/procs.ts";
import {
  compare,
  PATHS,
  summarize,
  table,
  type BenchResults,
  type MemoryMetrics,
  type OpenLoopMetrics,
  type PathName,
  type Round,
  type ScaleResults,
  type SseMetrics,
  type SweepStep,
  type UploadMetrics,
  type WrkMetrics,
} from "./bench/report.ts";
import type { SseResult } from "./bench/sse-client.ts";
import { median } from "./bench/stats.ts";
import { ensureTools, machine, versions, type Tools } from "./bench/tools.ts";
import { headerMap } from "../src/http.ts";

const ROOT = join(import.meta.dir, "..");
const HERE = join(import.meta.dir, "bench");
const OUT = join(ROOT, ".bench");
const UPLOAD_BYTES = 20 * 2 ** 20;
const SCENARIOS = ["json", "open", "sse", "upload", "scale", "idle", "startup"] as const;
/** Open files for the processes of the team-scale scenarios (one per connection, and some). */
const FD_LIMIT = 65_536;

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
    "with-page": { type: "string" },
    profile: { type: "boolean", default: false },
    "no-install": { type: "boolean", default: false },
    compare: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});

if (args.help) {
  process.stdout.write((await Bun.file(import.meta.path).text()).split("\n").slice(0, 10).join("\n") + "\n");
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
  /** Seconds per wrk run and per open-loop run. */
  duration: Number(args.duration ?? (quick ? 3 : 8)),
  warmup: quick ? 1 : 2,
  /** The open-loop sweep: seconds per step, steps at most, and the p99 it looks for. */
  sweep: { seconds: quick ? 2 : 4, maxSteps: quick ? 3 : 12, limitMs: 5, up: 0.1, down: 0.2, maxFactor: 2, paths: ["memproxy", "floor"] as PathName[] },
  sse: quick ? { streams: 50, events: 100, intervalMs: 10 } : { streams: 100, events: 200, intervalMs: 10 },
  uploadsPerRound: quick ? 2 : 3,
  /** Team scale: concurrent streams opened over rampMs, their events intervalMs apart; RSS followed tailMs after; idle connections held holdMs. */
  scale: quick
    ? { streams: 400, events: 10, intervalMs: 200, rampMs: 500, tailMs: 10_000, idleConnections: 1_000, holdMs: 1_000 }
    : { streams: 4_000, events: 50, intervalMs: 200, rampMs: 2_000, tailMs: 30_000, idleConnections: 10_000, holdMs: 3_000 },
  idleStarts: quick ? 1 : 3,
  startupRuns: quick ? 3 : 7,
  settleMaxMs: quick ? 10_000 : 20_000,
  scenarios: (args.only?.split(",") ?? [...SCENARIOS]) as string[],
  /** memproxy without its access line, metrics and token counting (--lean). */
  lean: args.lean!,
  /** Status page event streams held open on memproxy through the run (--with-page N). */
  page: args["with-page"] === undefined ? 0 : Number(args["with-page"]),
  /** The comparison's memproxy from source and the floor under Bun's sampling profiler (--profile). */
  profile: args.profile!,
};
const PROFILES = join(OUT, "profiles");
/** How memproxy is started: the binary, or with --profile from source (so that its profile names functions). */
function memproxyCommand(binary: string, configFile: string): string[] {
  return opts.profile ? [process.execPath, join(ROOT, "src", "main.ts"), "--config", configFile] : [binary, "--config", configFile];
}

/**
 * With --profile: the environment that makes a Bun process write a Markdown CPU profile named `name`
 * into .bench/profiles when it exits (memproxy's runtime settings included, so it need not re-execute).
 */
function profiled(env: Record<string, string | undefined>, name: string): Record<string, string | undefined> {
  if (!opts.profile) return env;
  const flags = `--cpu-prof-md --cpu-prof-dir=${PROFILES} --cpu-prof-name=${name}.md`;
  const withFlags = { ...env, BUN_OPTIONS: `${env.BUN_OPTIONS ?? ""} ${flags}`.trim() };
  return withRuntimeSettings(withFlags) ?? withFlags;
}
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
if (!(Number.isInteger(opts.page) && opts.page >= 0)) {
  log("--with-page takes the number of page event streams to hold open, e.g. --with-page 2");
  process.exit(1);
}
const wants = (s: (typeof SCENARIOS)[number]) => opts.scenarios.includes(s);

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
  const note = (line: string) => {
    notes.push(line);
    log(line);
  };

  // 1. The programs.
  const binary = args.binary ?? join(OUT, "memproxy");
  if (!args.binary) {
    log("building memproxy (bun scripts/build.ts --outfile .bench/memproxy)...");
    await buildMemproxy(binary);
  } else notes.push(`memproxy binary given with --binary: ${binary}`);
  const bare = join(OUT, "bare-bun");
  const floorBinary = join(OUT, "floor");
  if (wants("idle")) {
    log("building the bare Bun server and the bun floor with scripts/build.ts's flags (.bench/bare-bun, .bench/floor)...");
    await buildLikeMemproxy(join(HERE, "bare-server.ts"), bare);
    await buildLikeMemproxy(join(HERE, "floor.ts"), floorBinary);
  }
  const tools = await ensureTools(!args["no-install"], log);
  const busyBefore = await machineBusy();
  if (busyBefore > 0.1) note(`the machine was busy before the bench started (${(busyBefore * 100).toFixed(0)}% of its CPU used by other programs): expect noisy numbers`);
  for (const n of tools.notes) note(n);

  // 2. The backend, memproxy and nginx, each on its own loopback port.
  const backend = spawnChild(withFdLimit([process.execPath, join(HERE, "backend.ts")], FD_LIMIT), { stdout: "pipe", stderr: "inherit" });
  const backendPort = await firstJsonLine<{ port: number }>(backend.stdout as ReadableStream<Uint8Array>).then((l) => l.port);
  const backendUrl = `http://127.0.0.1:${backendPort}`;
  const configFile = join(HERE, "memproxy.yaml");
  const configText = await Bun.file(configFile).text();
  const configFor = (port: number): Config => parseConfig(configText, configFile, { ...CONFIG_ENV, BENCH_BACKEND_URL: backendUrl, MEMPROXY_PORT: String(port) });
  const memproxyEnv = (port: number, extra: Record<string, string> = {}) => ({ ...process.env, ...CONFIG_ENV, BENCH_BACKEND_URL: backendUrl, MEMPROXY_PORT: String(port), ...extra });
  if (opts.lean) note("memproxy ran lean (--lean): log level warn and metrics off, so no access line, metrics or token counting");

  const memproxyPort = freePort();
  const memproxyLog = openSync(join(OUT, "memproxy-stdout.log"), "w");
  if (opts.profile) {
    rmSync(PROFILES, { recursive: true, force: true });
    mkdirSync(PROFILES, { recursive: true });
    note(`--profile: memproxy ran from source (bun src/main.ts) and the floor, both under Bun's sampling profiler: profiles in ${PROFILES}; numbers not comparable with unprofiled runs`);
  }
  const memproxy = spawnChild(memproxyCommand(binary, configFile), { env: profiled(memproxyEnv(memproxyPort), "memproxy"), stdout: memproxyLog, stderr: memproxyLog });
  const urls: Partial<Record<PathName, string>> = { direct: backendUrl, memproxy: `http://127.0.0.1:${memproxyPort}` };
  await firstProxiedAnswer(`${urls.memproxy}/v1/chat/completions`, performance.now(), { timeoutMs: 10_000, exited: memproxy.exited });

  let nginx: Subprocess | undefined;
  let nginxPids: number[] = [];
  if (tools.nginx) {
    const started = await startNginx(tools.nginx, configFor(memproxyPort), backendPort).catch((err: Error) => {
      note(`nginx did not start: ${err.message}`);
      return undefined;
    });
    if (started) {
      urls.nginx = started.url;
      nginx = started.proc;
      nginxPids = started.pids;
    }
  }
  // The bun floor: memproxy's stack without memproxy (scripts/bench/floor.ts), on the same Bun with
  // the runtime settings memproxy re-executes itself with (its garbage collector's, fetch's limit).
  const floorPort = freePort();
  const floor = spawnChild([process.execPath, join(HERE, "floor.ts"), String(floorPort), backendUrl], {
    env: profiled(withRuntimeSettings(process.env) ?? process.env, "floor"),
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

  const results: BenchResults = {
    format: "memproxy-bench/2",
    started: started.toISOString(),
    finished: "",
    options: opts,
    machine: machine(),
    versions: await versions(tools, args.binary),
    notes,
    json: {},
    memory: {},
    rows: [],
  };

  // 4. --with-page: the status page's event streams, held open on memproxy through every scenario.
  const page = opts.page ? await PageClient.open(urls.memproxy!, opts.page) : undefined;
  if (page) {
    const r = page.opened;
    if (r.status === 200) note(`--with-page: ${r.open} of ${opts.page} status page event streams (GET /ui/api/events) held open on memproxy through the run`);
    else note(`--with-page: GET /ui/api/events answered ${r.status || `nothing (${r.errors[0] ?? "no answer"})`}: this memproxy has no page event stream, so nothing is held open`);
    results.page = { streams: opts.page, status: r.status };
  }

  // 5. Memory at idle, then sampled through the load.
  await Bun.sleep(1000);
  const idle = { memproxy: kbToMb(memoryOf(memproxy.pid)?.rssKb ?? NaN), nginx: kbToMb(rssOfAll(nginxPids)) };
  const peak = { memproxy: idle.memproxy, nginx: idle.nginx };
  const sampler = setInterval(() => {
    peak.memproxy = Math.max(peak.memproxy, kbToMb(memoryOf(memproxy.pid)?.rssKb ?? 0));
    if (nginxPids.length) peak.nginx = Math.max(peak.nginx, kbToMb(rssOfAll(nginxPids)));
  }, 100);

  // 6. The scenarios, each path in turn within a round, the order rotating between rounds.
  const order = (round: number) => paths.map((_, i) => paths[(i + round) % paths.length]!);
  const allPids = Object.values(pidsOf).flat();
  if (wants("json") && tools.wrk) {
    for (const conns of [32, 256]) {
      log(`small JSON POST, closed loop, ${conns} connections: warm-up, then ${opts.rounds} round(s) of ${opts.duration} s per path`);
      for (const p of paths) await wrk(tools.wrk, urls[p]!, conns, opts.warmup, pidsOf[p]);
      const rounds: Round<WrkMetrics>[] = [];
      for (let r = 0; r < opts.rounds; r++) {
        const round: Round<WrkMetrics> = {};
        for (const p of order(r)) {
          round[p] = await wrk(tools.wrk, urls[p]!, conns, opts.duration, pidsOf[p]);
          log(`  round ${r + 1} ${p}: ${Math.round(round[p]!.rps)} req/s, p50 ${round[p]!.p50Ms} ms, p99 ${round[p]!.p99Ms} ms, ${round[p]!.cpuUsPerReq.toFixed(1)} µs CPU/req${round[p]!.errors ? `, ${round[p]!.errors} errors` : ""}`);
          if (round[p]!.errors) notes.push(`wrk ${conns} conns via ${p}, round ${r + 1}: ${round[p]!.errors} errors`);
        }
        rounds.push(round);
      }
      results.json[String(conns)] = rounds;
    }
  }
  if (wants("open") && tools.oha) {
    results.open = await openLoop(tools, results, urls, paths, pidsOf, order, note);
  } else if (wants("open")) note("the open-loop scenario needs oha: skipped");
  // Each later scenario starts once every process is quiet again: a runtime's garbage collection
  // after the previous load would otherwise be measured as the next scenario's delay.
  const client = wants("sse") || wants("scale") ? new SseClient() : undefined;
  if (wants("sse") && client) {
    await quiet(allPids, opts.settleMaxMs);
    const { streams, events, intervalMs } = opts.sse;
    log(`streaming: ${streams} concurrent SSE streams of ${events} events, ${intervalMs} ms apart, ${opts.rounds} round(s)`);
    // Warm-up: one run of the measured size per path, so that no path (and not the client) is
    // measured while its runtime still compiles the code of a stream's start, events and end.
    for (const p of paths) await client.run(urls[p]!, streams, events, intervalMs, pidsOf[p]);
    const rounds: Round<SseMetrics>[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      const round: Round<SseMetrics> = {};
      for (const p of order(r)) {
        const res = await client.run(urls[p]!, streams, events, intervalMs, pidsOf[p]);
        round[p] = sseMetrics(res, streams * events);
        log(`  round ${r + 1} ${p}: delay p50 ${res.delayP50.toFixed(3)} ms, p99 ${res.delayP99.toFixed(3)} ms, batched ${res.batched}, out of order ${res.outOfOrder}`);
        if (res.errors.length) notes.push(`SSE via ${p}, round ${r + 1}: ${res.errors.join("; ")}`);
      }
      rounds.push(round);
    }
    results.sse = { streams, events, intervalMs, rounds };
  }
  if (wants("upload")) {
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

  // 7. Memory after the load: until it stops moving (bounded).
  clearInterval(sampler);
  const hwm = kbToMb(memoryOf(memproxy.pid)?.hwmKb ?? NaN);
  log("waiting for memory to settle after the load...");
  const settled = await settle(() => kbToMb(memoryOf(memproxy.pid)?.rssKb ?? NaN), opts.settleMaxMs);
  const memproxyMem: MemoryMetrics = { idleMb: idle.memproxy, peakMb: Math.max(peak.memproxy, hwm), afterMb: settled.value, settleMs: settled.ms };
  results.memory.memproxy = memproxyMem;
  if (nginxPids.length) results.memory.nginx = { idleMb: idle.nginx, peakMb: peak.nginx, afterMb: kbToMb(rssOfAll(nginxPids)), settleMs: settled.ms };
  if (page && results.page) {
    const closed = await page.close();
    if (closed) Object.assign(results.page, { events: closed.events, bytes: closed.bytes });
    if (closed?.status === 200) note(`--with-page: the page streams received ${closed.events} events (${closed.bytes} bytes); ${closed.open} still open at the end`);
  }
  // The comparison is over: the next scenarios run memproxy alone, on fresh processes.
  for (const proc of [memproxy, floor, nginx]) if (proc) await stopChild(proc);

  // 8. Team scale: thousands of streams, then thousands of idle connections, through one fresh memproxy.
  if (wants("scale") && client) {
    results.scale = await teamScale(binary, configFile, memproxyEnv, backendUrl, backend.pid, client, note);
  }
  await client?.stop();

  // 9. Idle memory of fresh processes: memproxy against a bare compiled Bun server.
  if (wants("idle")) {
    log(`idle memory: ${opts.idleStarts} fresh start(s) each of the bare Bun server, the compiled bun floor and memproxy`);
    const idleLog = openSync(join(OUT, "idle-stdout.log"), "w");
    const idleRss = async (cmd: string[], env: Record<string, string | undefined>, port: number) => {
      const proc = spawnChild(cmd, { env, stdout: idleLog, stderr: idleLog });
      try {
        await firstProxiedAnswer(`http://127.0.0.1:${port}/v1/chat/completions`, performance.now(), { timeoutMs: 10_000, exited: proc.exited });
        return await steadyRss(() => kbToMb(memoryOf(proc.pid)?.rssKb ?? NaN), { maxMs: 5_000 });
      } finally {
        await stopChild(proc);
      }
    };
    const memproxyMb: number[] = [];
    const bareMb: number[] = [];
    const floorMb: number[] = [];
    for (let i = 0; i < opts.idleStarts; i++) {
      const p1 = freePort();
      bareMb.push(await idleRss([bare], { ...process.env, PORT: String(p1) }, p1));
      const p2 = freePort();
      floorMb.push(await idleRss([floorBinary, String(p2), backendUrl], withRuntimeSettings(process.env) ?? process.env, p2));
      const p3 = freePort();
      memproxyMb.push(await idleRss([binary, "--config", configFile], memproxyEnv(p3), p3));
    }
    const show = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(", ");
    log(`  bare Bun ${show(bareMb)} MB; bun floor ${show(floorMb)} MB; memproxy ${show(memproxyMb)} MB`);
    results.idle = { memproxyMb, bareMb, floorMb };
  }

  // 10. Start-up: fresh processes, nothing else running against them.
  if (wants("startup")) {
    log(`start-up: ${opts.startupRuns} runs of the binary, spawn to first proxied 200`);
    const startupLog = openSync(join(OUT, "startup-stdout.log"), "w");
    const once = async () => {
      const port = freePort();
      const t0 = performance.now();
      const proc = spawnChild([binary, "--config", configFile], { env: memproxyEnv(port), stdout: startupLog, stderr: startupLog });
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
  for (const file of [join(OUT, "memproxy-stdout.log"), join(OUT, "scale-stdout.log"), join(OUT, "nginx", "access.log")]) await keepTail(file, 256 * 1024);
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
  console.log(`${opts.rounds} round(s); runs of ${opts.duration} s; medians over rounds; "vs" columns are medians of same-round comparisons.\n`);
  console.log(table(results.rows));
  if (results.scale?.rss) console.log(`\nteam scale, memproxy's RSS (s after the streams started: MB): ${results.scale.rss.curve.filter((_, i) => i % 8 === 0).map(([t, v]) => `${(t / 1000).toFixed(0)}: ${v.toFixed(0)}`).join(", ")}`);
  if (notes.length) console.log(`\nnotes:\n${notes.map((n) => `- ${n}`).join("\n")}`);
  if (opts.profile) console.log(`\nprofiles (Markdown, Bun's sampling profiler): ${PROFILES}`);
  console.log(`\nresults: ${file}`);
}

function sseMetrics(res: SseResult & { cpuMs: number }, expected: number): SseMetrics {
  return {
    delayP50: res.delayP50,
    delayP99: res.delayP99,
    delayMax: res.delayMax,
    totalMs: res.totalMs,
    received: res.received,
    expected,
    batched: res.batched,
    outOfOrder: res.outOfOrder,
    errors: res.errors,
    cpuMsPer1kEvents: (res.cpuMs / res.received) * 1000,
    maxOpen: res.maxOpen,
    timeline: res.timeline,
  };
}

/**
 * The open-loop scenario: every path offered the same constant rate, half of nginx's closed-loop
 * saturation at 32 connections (from the JSON scenario of this run, else measured here), by oha with
 * its latency corrected for coordinated omission; then, for memproxy and the floor, a sweep of rates
 * up (or down) from there until p99 passes the limit.
 */
async function openLoop(
  tools: Tools,
  results: BenchResults,
  urls: Partial<Record<PathName, string>>,
  paths: PathName[],
  pidsOf: Record<PathName, number[]>,
  order: (round: number) => PathName[],
  note: (line: string) => void,
): Promise<BenchResults["open"]> {
  const oha = tools.oha!;
  let saturation = median((results.json["32"] ?? []).flatMap((r) => (r.nginx ? [r.nginx.rps] : [])));
  let from = "the closed-loop JSON scenario at 32 connections (median of its rounds)";
  if (Number.isNaN(saturation)) {
    const ref: PathName = urls.nginx ? "nginx" : "floor";
    if (!tools.wrk) {
      note("the open-loop scenario needs a saturation rate, measured with wrk: skipped");
      return undefined;
    }
    log(`open loop: measuring ${ref}'s saturation (wrk, 32 connections, ${opts.duration} s)`);
    await wrk(tools.wrk, urls[ref]!, 32, opts.warmup, pidsOf[ref]);
    saturation = (await wrk(tools.wrk, urls[ref]!, 32, opts.duration, pidsOf[ref])).rps;
    from = `one wrk run on ${ref} at 32 connections`;
    if (ref !== "nginx") note(`no nginx: the open-loop rate is half of the bun floor's saturation, and the p99 target is not judged`);
  }
  const rate = Math.round(saturation / 2);
  const allPids = Object.values(pidsOf).flat();
  await quiet(allPids, opts.settleMaxMs);
  log(`open loop: ${rate} req/s offered (half of ${Math.round(saturation)}), ${OPEN_LOOP_CONNECTIONS} connections, warm-up then ${opts.rounds} round(s) of ${opts.duration} s per path`);
  for (const p of paths) await ohaRun(oha, urls[p]!, rate, opts.warmup, pidsOf[p]);
  const rounds: Round<OpenLoopMetrics>[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    const round: Round<OpenLoopMetrics> = {};
    for (const p of order(r)) {
      const m = (round[p] = await ohaRun(oha, urls[p]!, rate, opts.duration, pidsOf[p]));
      log(`  round ${r + 1} ${p}: ${Math.round(m.achieved)} req/s, p50 ${m.p50Ms.toFixed(2)} ms, p99 ${m.p99Ms.toFixed(2)} ms, p99.9 ${m.p999Ms.toFixed(2)} ms, ${m.cpuUsPerReq.toFixed(1)} µs CPU/req${m.errors ? `, ${m.errors} errors` : ""}`);
      if (m.errors) note(`open loop via ${p}, round ${r + 1}: ${m.errors} errors ${JSON.stringify(m.errorKinds)}`);
    }
    rounds.push(round);
  }
  const { limitMs } = opts.sweep;
  const sweep: Partial<Record<PathName, SweepStep[]>> = {};
  for (const p of opts.sweep.paths.filter((x) => urls[x])) {
    log(`open loop, ${p}: offered rate where p99 passes ${limitMs} ms (steps of ${opts.sweep.seconds} s)`);
    const first = median(rounds.flatMap((r) => (r[p] ? [r[p]!.p99Ms] : [])));
    const points: SweepPoint[] = [{ factor: 1, rate, p99Ms: first }];
    const steps: SweepStep[] = [];
    for (let f = nextSweepFactor(points, limitMs, opts.sweep); f !== undefined; f = nextSweepFactor(points, limitMs, opts.sweep)) {
      await quiet(allPids, opts.settleMaxMs);
      const m = await ohaRun(oha, urls[p]!, rate * f, opts.sweep.seconds, pidsOf[p]);
      const point = { factor: f, rate: rate * f, p99Ms: m.p99Ms };
      points.push(point);
      steps.push({ ...point, metrics: m });
      log(`  ${f.toFixed(1)}× (${Math.round(rate * f)} req/s): achieved ${Math.round(m.achieved)}, p99 ${m.p99Ms.toFixed(2)} ms`);
    }
    sweep[p] = [{ factor: 1, rate, p99Ms: first, metrics: rounds.at(-1)![p]! }, ...steps];
  }
  return { nginxSaturation: saturation, saturationFrom: from, rate, connections: OPEN_LOOP_CONNECTIONS, seconds: opts.duration, rounds, limitMs, sweep };
}

/** One oha run at `rate` for `seconds` through `base`; `pids` are the path's own processes. */
async function ohaRun(bin: string, base: string, rate: number, seconds: number, pids: number[]): Promise<OpenLoopMetrics> {
  const cpu0 = cpuMsOf(pids);
  const proc = spawnChild(ohaCommand(bin, base, rate, seconds), { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([(proc.stdout as ReadableStream).text(), (proc.stderr as ReadableStream).text(), proc.exited]);
  const cpuMs = cpuMsOf(pids) - cpu0;
  if (code !== 0) throw new Error(`oha failed (exit ${code}): ${out}${err}`);
  await Bun.sleep(300); // let the last connections close before the next run starts
  return parseOha(out, rate, cpuMs);
}

/**
 * Team scale on a fresh memproxy (its own log, a raised open-file limit, an idle timeout longer than
 * the hold): idle RSS; a warm-up of a tenth of the streams; the streams without a proxy (the client's
 * and backend's own delay); the streams through memproxy with its RSS sampled every 100 ms until
 * `tailMs` after they ended; then idle keep-alive connections opened, held, and asked again.
 */
async function teamScale(
  binary: string,
  configFile: string,
  envFor: (port: number, extra?: Record<string, string>) => Record<string, string | undefined>,
  backendUrl: string,
  backendPid: number,
  client: SseClient,
  note: (line: string) => void,
): Promise<ScaleResults> {
  const s = opts.scale;
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const scaleLog = openSync(join(OUT, "scale-stdout.log"), "w");
  const proc = spawnChild(withFdLimit(memproxyCommand(binary, configFile), FD_LIMIT), { env: profiled(envFor(port, { BENCH_IDLE_TIMEOUT: "120s" }), "memproxy-scale"), stdout: scaleLog, stderr: scaleLog });
  const out: ScaleResults = { streams: s.streams, events: s.events, intervalMs: s.intervalMs, rampMs: s.rampMs, sse: {} };
  try {
    await firstProxiedAnswer(`${url}/v1/chat/completions`, performance.now(), { timeoutMs: 10_000, exited: proc.exited });
    out.fdLimit = fdLimitOf(proc.pid);
    const needed = Math.max(2 * s.streams, s.idleConnections) + 1_000;
    if ((out.fdLimit ?? 0) < needed) note(`team scale: memproxy may open ${out.fdLimit} files, fewer than the ${needed} the scenario needs (raise the hard limit: ulimit -Hn)`);
    const rssMb = () => kbToMb(memoryOf(proc.pid)?.rssKb ?? NaN);
    const idleMb = await steadyRss(rssMb);
    log(`team scale: memproxy idle at ${idleMb.toFixed(1)} MB; warm-up with ${Math.round(s.streams / 10)} streams`);
    await client.run(url, Math.round(s.streams / 10), s.events, s.intervalMs, [proc.pid], s.rampMs / 10);
    await quiet([proc.pid, backendPid], opts.settleMaxMs);
    log(`team scale: ${s.streams} streams of ${s.events} events ${s.intervalMs} ms apart, opened over ${s.rampMs} ms: direct, then through memproxy`);
    const direct = await client.run(backendUrl, s.streams, s.events, s.intervalMs, [backendPid], s.rampMs);
    out.sse.direct = sseMetrics(direct, s.streams * s.events);
    if (direct.errors.length) note(`team scale, direct: ${direct.errors.join("; ")}`);
    await quiet([proc.pid, backendPid], opts.settleMaxMs);
    const sampler = new RssSampler(proc.pid, 100);
    const loadStart = sampler.now();
    const mine = await client.run(url, s.streams, s.events, s.intervalMs, [proc.pid], s.rampMs);
    const loadEnd = sampler.now();
    out.sse.memproxy = sseMetrics(mine, s.streams * s.events);
    if (mine.errors.length) note(`team scale, memproxy: ${mine.errors.join("; ")}`);
    log(`  direct p99 ${direct.delayP99.toFixed(2)} ms, memproxy p99 ${mine.delayP99.toFixed(2)} ms, ${mine.received} of ${s.streams * s.events} events, ${mine.maxOpen} open at most; RSS for ${s.tailMs / 1000} s more`);
    log(`  memproxy, events later than 5 ms per second of the run (longest delay): ${mine.timeline.map((t, i) => `${i}: ${t.late}/${t.events} (${t.maxMs.toFixed(0)})`).join(", ")}`);
    await Bun.sleep(s.tailMs);
    out.rss = rssCurve(sampler.stop(), idleMb, loadStart, loadEnd);

    log(`team scale: ${s.idleConnections} idle keep-alive connections, held ${s.holdMs / 1000} s, then asked again`);
    const before = rssMb();
    const held = new RssSampler(proc.pid, 100);
    const idle = spawnChild(withFdLimit([process.execPath, join(HERE, "idle-client.ts"), url, String(s.idleConnections)], FD_LIMIT), { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    const reports = lines(idle.stdout as ReadableStream<Uint8Array>);
    const next = async () => {
      const { value, done } = await reports.next();
      if (done) throw new Error(`the idle-connection client exited (code ${await idle.exited}); its error is above`);
      return JSON.parse(value) as IdleReport;
    };
    const first = await next();
    await Bun.sleep(s.holdMs);
    const stdin = idle.stdin as import("bun").FileSink;
    stdin.write("again\n");
    stdin.flush();
    const again = await next();
    stdin.end();
    await stopChild(idle);
    out.idleConnections = { count: s.idleConnections, held: first, again, rssBeforeMb: before, peakMb: Math.max(...held.stop().map((x) => x.mb)) };
    log(`  opened in ${(first.ms / 1000).toFixed(1)} s: ${first.answered} answered, ${again.answered} answered again, ${again.closed} closed; RSS ${before.toFixed(1)} → peak ${out.idleConnections.peakMb.toFixed(1)} MB`);
    if (first.errors.length || again.errors.length) note(`team scale, idle connections: ${[...first.errors, ...again.errors].slice(0, 5).join("; ")}`);
  } finally {
    await stopChild(proc);
  }
  return out;
}

/** The status page client (scripts/bench/page-client.ts) holding page event streams open on memproxy. */
class PageClient {
  private constructor(
    private readonly proc: Subprocess,
    private readonly reports: AsyncGenerator<string>,
    readonly opened: PageReport,
  ) {}

  static async open(base: string, n: number): Promise<PageClient> {
    const proc = spawnChild([process.execPath, join(HERE, "page-client.ts"), base, String(n)], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    const reports = lines(proc.stdout as ReadableStream<Uint8Array>);
    const { value, done } = await reports.next();
    if (done) throw new Error(`the page client exited (code ${await proc.exited}); its error is above`);
    return new PageClient(proc, reports, JSON.parse(value) as PageReport);
  }

  /** Closes the streams; returns what they received (undefined when none were held). */
  async close(): Promise<PageReport | undefined> {
    (this.proc.stdin as import("bun").FileSink).end();
    const { value, done } = await this.reports.next();
    await stopChild(this.proc);
    return done ? undefined : (JSON.parse(value) as PageReport);
  }
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
async function startNginx(bin: string, config: Config, backendPort: number): Promise<{ url: string; proc: Subprocess; pids: number[] }> {
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
  return { url, proc, pids: withChildren(proc.pid) };
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
      const want = router(headerMap(new Headers(headers)));
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
  const { cmd, env } = wrkCommand(bin, base, conns, seconds);
  const proc = spawnChild(cmd, { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([(proc.stdout as ReadableStream).text(), (proc.stderr as ReadableStream).text(), proc.exited]);
  const cpuMs = cpuMsOf(pids) - cpu0;
  if (code !== 0) throw new Error(`wrk failed (exit ${code}): ${out}${err}`);
  await Bun.sleep(300); // let the last connections close before the next path starts
  return parseWrk(out, cpuMs);
}

/**
 * The streaming client: one process, outside our loop, for every streaming run. It stays up from the
 * warm-up to the last round, so that its runtime has compiled its event handling before the first
 * measured run: a fresh client per run showed its own compiling as bursts of late events on every
 * path, direct included, larger through a proxy.
 */
class SseClient {
  private proc = spawnChild(withFdLimit([process.execPath, join(HERE, "sse-client.ts"), "--serve"], FD_LIMIT), { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  private lines = lines(this.proc.stdout as ReadableStream<Uint8Array>);

  /** One run through `base`, the streams opened over `rampMs`; `pids` are the path's own processes, whose CPU time it measures. */
  async run(base: string, streams: number, events: number, intervalMs: number, pids: number[], rampMs = 0): Promise<SseResult & { cpuMs: number }> {
    const cpu0 = cpuMsOf(pids);
    const stdin = this.proc.stdin as import("bun").FileSink;
    stdin.write(JSON.stringify({ url: base, streams, events, intervalMs, rampMs }) + "\n");
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
