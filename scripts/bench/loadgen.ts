// The load generators of the JSON scenarios and what they report: wrk for the closed loop (fixed
// connections, each sending its next request when the last answer arrived) and oha for the open loop
// (a constant offered rate, latency counted from each request's scheduled time, so that a stalled
// server is not hidden by the generator waiting for it: coordinated omission). Both send the same
// request. Pure, apart from running the programs, so that test/scripts/bench.test.ts can check the parsing.
import { join } from "node:path";
import type { OpenLoopMetrics, WrkMetrics } from "./report.ts";

/**
 * The small chat request of the JSON scenarios: 198 bytes with the OpenAI Node SDK's headers, which
 * only the 8th rule of the bench config matches, so that the router walks most of its patterns.
 */
export const SMALL_REQUEST = {
  path: "/v1/chat/completions",
  headers: {
    "Content-Type": "application/json",
    Accept: "application/json",
    "User-Agent": "OpenAI/JS 6.49.0",
    Authorization: "Bearer sk-bench-0123456789abcdef",
    "X-Stainless-Lang": "js",
    "X-Stainless-Package-Version": "6.49.0",
  } as Record<string, string>,
  body:
    '{"model":"bench-model","messages":[{"role":"system","content":"You are a helpful assistant."},' +
    '{"role":"user","content":"Say hello in one short sentence, please."}],"max_tokens":64,"temperature":0.2}',
};

/** The wrk command (and the environment its script reads) for one closed-loop run of `seconds` on `conns` connections. */
export function wrkCommand(bin: string, base: string, conns: number, seconds: number): { cmd: string[]; env: Record<string, string> } {
  return {
    cmd: [bin, `-t${Math.min(2, conns)}`, `-c${conns}`, `-d${seconds}s`, "--timeout", "10s", "-s", join(import.meta.dir, "post-json.lua"), base + SMALL_REQUEST.path],
    env: {
      BENCH_HEADERS: Object.entries(SMALL_REQUEST.headers)
        .map(([k, v]) => `${k}: ${v}`)
        .join("\n"),
      BENCH_BODY: SMALL_REQUEST.body,
    },
  };
}

/** Reads the BENCH_RESULT line post-json.lua prints; `cpuMs` is the path's own CPU time during the run. */
export function parseWrk(stdout: string, cpuMs: number): WrkMetrics {
  const line = stdout.split("\n").find((l) => l.startsWith("BENCH_RESULT "));
  if (!line) throw new Error(`wrk printed no BENCH_RESULT line: ${stdout.trim().slice(0, 500)}`);
  const r = JSON.parse(line.slice("BENCH_RESULT ".length)) as {
    requests: number;
    duration_us: number;
    errors: Record<string, number>;
    p50_us: number;
    p90_us: number;
    p99_us: number;
    max_us: number;
  };
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

/** Connections oha spreads the offered rate over: more than the rate needs, so that they are not what limits it. */
export const OPEN_LOOP_CONNECTIONS = 64;

/**
 * The oha command for one open-loop run: `rate` requests/s for `seconds`, latency corrected for
 * coordinated omission (counted from when each request was due, queueing for a free connection
 * included), requests in flight at the end awaited, JSON on stdout.
 */
export function ohaCommand(bin: string, base: string, rate: number, seconds: number, conns = OPEN_LOOP_CONNECTIONS): string[] {
  return [
    bin,
    "--no-tui",
    "--output-format",
    "json",
    "--latency-correction",
    "-q",
    String(Math.round(rate)),
    "-z",
    `${seconds}s`,
    "-c",
    String(conns),
    "-w",
    "-t",
    "10s",
    "--disable-compression",
    "-m",
    "POST",
    ...Object.entries(SMALL_REQUEST.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
    "-d",
    SMALL_REQUEST.body,
    base + SMALL_REQUEST.path,
  ];
}

/** oha's JSON summary, the parts the bench reads. Latencies are in seconds. */
interface OhaJson {
  summary: { requestsPerSec: number; slowest: number | null };
  latencyPercentiles: Record<string, number | null>;
  statusCodeDistribution: Record<string, number>;
  errorDistribution: Record<string, number>;
}

/** Reads oha's JSON output for a run offered at `rate`; `cpuMs` is the path's own CPU time during the run. */
export function parseOha(stdout: string, rate: number, cpuMs: number): OpenLoopMetrics {
  const j = JSON.parse(stdout) as OhaJson;
  const statuses = Object.entries(j.statusCodeDistribution ?? {});
  const ok = statuses.filter(([s]) => s === "200").reduce((a, [, n]) => a + n, 0);
  const other = statuses.filter(([s]) => s !== "200").reduce((a, [, n]) => a + n, 0);
  const failed = Object.values(j.errorDistribution ?? {}).reduce((a, n) => a + n, 0);
  const p = (key: string) => (j.latencyPercentiles[key] ?? NaN) * 1000;
  return {
    offered: rate,
    achieved: j.summary.requestsPerSec,
    p50Ms: p("p50"),
    p90Ms: p("p90"),
    p99Ms: p("p99"),
    p999Ms: p("p99.9"),
    maxMs: (j.summary.slowest ?? NaN) * 1000,
    requests: ok + other,
    errors: other + failed,
    errorKinds: Object.fromEntries([...statuses.filter(([s]) => s !== "200").map(([s, n]) => [`status ${s}`, n] as const), ...Object.entries(j.errorDistribution ?? {})]),
    cpuUsPerReq: ok + other ? (cpuMs * 1000) / (ok + other) : NaN,
  };
}

/** One step of the rate sweep: the rate offered as a multiple of the open-loop rate, and the p99 seen. */
export interface SweepPoint {
  factor: number;
  rate: number;
  p99Ms: number;
}

/**
 * The next factor of the open-loop rate to offer in the sweep for the rate at which p99 passes
 * `limitMs`, or undefined when it is found or out of range. Upward from the first point in steps of
 * `up` while p99 stays under the limit (at most `maxFactor`); downward in steps of `down` while it is
 * over (at least `down`). Found once one point is under and one over.
 */
export function nextSweepFactor(points: readonly SweepPoint[], limitMs: number, opts: { up: number; down: number; maxFactor: number; maxSteps: number }): number | undefined {
  if (!points.length) return 1;
  if (points.length >= opts.maxSteps) return undefined;
  const under = points.some((p) => p.p99Ms <= limitMs);
  const over = points.some((p) => !(p.p99Ms <= limitMs));
  if (under && over) return undefined;
  const last = points.at(-1)!;
  const round = (x: number) => Math.round(x * 100) / 100;
  if (under) {
    const next = round(last.factor + opts.up);
    return next <= opts.maxFactor + 1e-9 ? next : undefined;
  }
  const next = round(last.factor - opts.down);
  return next >= opts.down - 1e-9 ? next : undefined;
}

/** Where the sweep saw p99 pass the limit. */
export interface Crossing {
  /** The highest rate under the limit below the first rate over it. */
  lastUnder?: SweepPoint;
  /** The lowest rate over the limit. */
  firstOver?: SweepPoint;
  /** The rate where p99 reaches the limit, interpolated linearly between the two; undefined when not bracketed. */
  estimate?: number;
}

/** Finds the crossing of `limitMs` in the sweep's points (by rate, the first rate over the limit counts). */
export function crossing(points: readonly SweepPoint[], limitMs: number): Crossing {
  const sorted = [...points].sort((a, b) => a.rate - b.rate);
  const i = sorted.findIndex((p) => !(p.p99Ms <= limitMs));
  if (i < 0) return { lastUnder: sorted.at(-1) };
  const firstOver = sorted[i]!;
  const lastUnder = i > 0 ? sorted[i - 1] : undefined;
  if (!lastUnder) return { firstOver };
  const over = Number.isFinite(firstOver.p99Ms) ? firstOver.p99Ms : limitMs * 2;
  const t = (limitMs - lastUnder.p99Ms) / (over - lastUnder.p99Ms);
  return { lastUnder, firstOver, estimate: lastUnder.rate + t * (firstOver.rate - lastUnder.rate) };
}
