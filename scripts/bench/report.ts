// The benchmark's results: their JSON shape, the summary table with ratios and targets (issue 21's,
// and issue 6's that still stand), and the comparison of two saved runs against their own noise.
import type { RssCurve } from "./memory.ts";
import type { IdleReport } from "./idle-client.ts";
import type { SweepPoint } from "./loadgen.ts";
import { crossing } from "./loadgen.ts";
import { median } from "./stats.ts";

/** direct: no proxy; floor: a feature-less Bun proxy (scripts/bench/floor.ts), the most memproxy's stack gives. */
export const PATHS = ["direct", "nginx", "floor", "memproxy"] as const;
export type PathName = (typeof PATHS)[number];
/** One round: each path's measurements, taken back to back. */
export type Round<M> = Partial<Record<PathName, M>>;

/** One closed-loop run (wrk). */
export interface WrkMetrics {
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  requests: number;
  errors: number;
  /** CPU time the path's own process(es) used per request, µs (direct: the backend's). */
  cpuUsPerReq: number;
}
/** One open-loop run (oha at a constant offered rate, latency corrected for coordinated omission). */
export interface OpenLoopMetrics {
  /** Requests/s offered. */
  offered: number;
  /** Requests/s completed. */
  achieved: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  requests: number;
  /** Answers other than 200, and requests that failed. */
  errors: number;
  errorKinds: Record<string, number>;
  /** CPU time the path's own process(es) used per request, µs. */
  cpuUsPerReq: number;
}
export interface SseMetrics {
  delayP50: number;
  delayP99: number;
  delayMax: number;
  totalMs: number;
  received: number;
  expected: number;
  batched: number;
  outOfOrder: number;
  errors: string[];
  /** CPU time the path's own process(es) used per 1000 events, ms (direct: the backend's). */
  cpuMsPer1kEvents: number;
  /** The most streams open at once. */
  maxOpen?: number;
  /** Per second of the run: events, events later than 5 ms, the longest delay (ms). */
  timeline?: { events: number; late: number; maxMs: number }[];
}
export interface UploadMetrics {
  ms: number;
  runsMs: number[];
}
export interface MemoryMetrics {
  idleMb: number;
  peakMb: number;
  afterMb: number;
  settleMs: number;
}
/** One sweep step: the point, and what oha measured there. */
export type SweepStep = SweepPoint & { metrics: OpenLoopMetrics };

/** The team-scale scenarios, on a memproxy of their own. */
export interface ScaleResults {
  streams: number;
  events: number;
  intervalMs: number;
  rampMs: number;
  /** The open-file limit the scale memproxy ran with. */
  fdLimit?: number;
  /** The same streams without a proxy (the client's and backend's own delay), then through memproxy. */
  sse: { direct?: SseMetrics; memproxy?: SseMetrics };
  /** memproxy's RSS around the streaming load; idle is the fresh instance's. */
  rss?: RssCurve;
  idleConnections?: {
    count: number;
    held: IdleReport;
    again?: IdleReport;
    /** RSS before the connections were opened, and its largest sample while they were open. */
    rssBeforeMb: number;
    peakMb: number;
  };
}

/** Everything one run measured; written to .bench/results-<timestamp>.json. */
export interface BenchResults {
  format: "memproxy-bench/1" | "memproxy-bench/2";
  started: string;
  finished: string;
  options: Record<string, unknown>;
  machine: Record<string, string | number>;
  versions: Record<string, string>;
  notes: string[];
  /** Share of the machine's CPU other programs used just before and just after the run (0–1). */
  busy?: { before: number; after: number };
  json: Record<string, Round<WrkMetrics>[]>;
  open?: {
    /** nginx's closed-loop saturation (requests/s at 32 connections), and where it was measured. */
    nginxSaturation: number;
    saturationFrom: string;
    /** The rate offered to every path: half of nginx's saturation. */
    rate: number;
    connections: number;
    seconds: number;
    rounds: Round<OpenLoopMetrics>[];
    /** The rate sweep: offered rates (factors of `rate`) until p99 passes `limitMs`. */
    limitMs: number;
    sweep: Partial<Record<PathName, SweepStep[]>>;
  };
  sse?: { streams: number; events: number; intervalMs: number; rounds: Round<SseMetrics>[] };
  upload?: { bytes: number; rounds: Round<UploadMetrics>[] };
  memory: { memproxy?: MemoryMetrics; nginx?: MemoryMetrics };
  scale?: ScaleResults;
  /** Idle RSS of fresh processes, MB, one per start: memproxy, a bare compiled Bun server, the bun floor compiled alike. */
  idle?: { memproxyMb: number[]; bareMb: number[]; floorMb?: number[] };
  startup?: { runsMs: number[]; medianMs: number; maxMs: number };
  /** --with-page: the status page's event streams held open through the run. */
  page?: { streams: number; status: number; events?: number; bytes?: number };
  rows: Row[];
}

/** One line of the summary table. */
export interface Row {
  key: string;
  label: string;
  values: Partial<Record<PathName, string>>;
  /** Raw numbers behind `values` (medians over rounds), for comparing runs. */
  numbers: Partial<Record<PathName, number>>;
  /** Each round's (or run's) number, for the noise in a comparison of runs. */
  samples?: Partial<Record<PathName, number[]>>;
  /** Which way is better, for a comparison of runs. */
  better?: "higher" | "lower";
  /** memproxy against its reference path, round by round (what the target judges), for a comparison of runs. */
  relative?: { label: string; samples: number[]; kind: "ratio" | "diff" };
  vsNginx?: string;
  vsFloor?: string;
  vsDirect?: string;
  /** The bun floor against nginx, in the same round: how far the stack itself stands from nginx. */
  floorVsNginx?: string;
  target?: string;
  /** true PASS, false FAIL, null not judged (a path is missing); undefined: reported, no target. */
  pass?: boolean | null;
}

const us = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} µs` : "–");
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)} ms` : "–");
const mb = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} MB` : "–");
const rps = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "–");
const times = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "–");
const plusMs = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(2)} ms` : "–");
const count = (x: number) => Math.round(x).toLocaleString("en-US");

/** Each path's values over the rounds. */
function perRound<M>(rounds: Round<M>[], pick: (m: M) => number): Partial<Record<PathName, number[]>> {
  const out: Partial<Record<PathName, number[]>> = {};
  for (const p of PATHS) {
    const vals = rounds.flatMap((r) => (r[p] ? [pick(r[p]!)] : []));
    if (vals.length) out[p] = vals;
  }
  return out;
}

/** A comparison of `mine` with `other` in each round where both ran. */
function pairs<M>(rounds: Round<M>[], other: PathName, pick: (m: M) => number, cmp: (mine: number, theirs: number) => number, mine: PathName = "memproxy"): number[] {
  return rounds.flatMap((r) => (r[mine] && r[other] ? [cmp(pick(r[mine]!), pick(r[other]!))] : []));
}
const ratio = (a: number, b: number) => a / b;
const diff = (a: number, b: number) => a - b;

/** A row about the proxy itself: the direct path's number (the backend's) is kept in the JSON only. */
function noDirect(r: Row): Row {
  delete r.values.direct;
  delete r.numbers.direct;
  r.vsDirect = undefined;
  return r;
}

function row<M>(key: string, label: string, rounds: Round<M>[], pick: (m: M) => number, fmt: (x: number) => string, vs: "ratio" | "diff", better: "higher" | "lower"): Row {
  const samples = perRound(rounds, pick);
  const numbers: Row["numbers"] = {};
  const values: Row["values"] = {};
  for (const p of PATHS) {
    if (!samples[p]) continue;
    numbers[p] = median(samples[p]!);
    values[p] = fmt(numbers[p]!);
  }
  const cmp = vs === "ratio" ? ratio : diff;
  const show = (x: number) => (Number.isNaN(x) ? undefined : vs === "ratio" ? times(x) : plusMs(x));
  return {
    key,
    label,
    values,
    numbers,
    samples,
    better,
    vsNginx: show(median(pairs(rounds, "nginx", pick, cmp))),
    vsFloor: show(median(pairs(rounds, "floor", pick, cmp))),
    vsDirect: show(median(pairs(rounds, "direct", pick, cmp))),
    floorVsNginx: show(median(pairs(rounds, "nginx", pick, cmp, "floor"))),
  };
}

/** Keeps memproxy's comparison with `other`, round by round, for a comparison of runs. */
function relate<M>(r: Row, rounds: Round<M>[], other: PathName, pick: (m: M) => number, kind: "ratio" | "diff"): number[] {
  const s = pairs(rounds, other, pick, kind === "ratio" ? ratio : diff);
  r.relative = { label: kind === "ratio" ? `÷ ${other}` : `− ${other}`, samples: s, kind };
  return s;
}

/** Sets a row's target, judged on memproxy against `other` round by round (median of the rounds). */
function judge<M>(r: Row, rounds: Round<M>[], other: PathName, pick: (m: M) => number, kind: "ratio" | "diff", target: string, ok: (x: number) => boolean): Row {
  const x = median(relate(r, rounds, other, pick, kind));
  r.target = target;
  r.pass = Number.isNaN(x) ? null : ok(x);
  return r;
}

/** A row with one value for memproxy only. */
function single(key: string, label: string, value: number, fmt: (x: number) => string, better: "higher" | "lower", samples?: number[]): Row {
  return { key, label, values: { memproxy: fmt(value) }, numbers: { memproxy: value }, samples: samples ? { memproxy: samples } : undefined, better };
}

/** Builds the summary rows, each target judged. */
export function summarize(r: BenchResults): Row[] {
  const rows: Row[] = [];
  for (const [conns, rounds] of Object.entries(r.json)) {
    // Issue 21: the 32-connection targets stand; at 256 connections (a closed loop at saturation measures
    // the machine as much as the proxy) the numbers are reported without a verdict.
    const judged = conns === "32";
    const t = row(`json${conns}.rps`, `JSON POST, ${conns} conns: requests/s`, rounds, (m) => m.rps, rps, "ratio", "higher");
    if (judged) judge(t, rounds, "nginx", (m) => m.rps, "ratio", "≥ 0.65× nginx", (x) => x >= 0.65);
    else {
      relate(t, rounds, "nginx", (m) => m.rps, "ratio");
      t.target = "reported";
    }
    rows.push(t);
    const cpu = noDirect(row(`json${conns}.cpu`, `JSON POST, ${conns} conns: proxy CPU per request`, rounds, (m) => m.cpuUsPerReq, us, "ratio", "lower"));
    rows.push(judge(cpu, rounds, "floor", (m) => m.cpuUsPerReq, "ratio", "≤ 1.2× bun floor", (x) => x <= 1.2));
    rows.push(row(`json${conns}.p50`, `JSON POST, ${conns} conns: p50`, rounds, (m) => m.p50Ms, ms, "diff", "lower"));
    const p99 = row(`json${conns}.p99`, `JSON POST, ${conns} conns: p99`, rounds, (m) => m.p99Ms, ms, "diff", "lower");
    if (judged) judge(p99, rounds, "nginx", (m) => m.p99Ms, "diff", "≤ nginx + 1 ms", (x) => x <= 1);
    else {
      relate(p99, rounds, "nginx", (m) => m.p99Ms, "diff");
      p99.target = "reported";
    }
    rows.push(p99);
  }
  if (r.open) rows.push(...openRows(r.open));
  if (r.sse) {
    const { rounds, streams, events } = r.sse;
    const name = `SSE ${streams}×${events} events`;
    rows.push(row("sse.p50", `${name}: delay p50`, rounds, (m) => m.delayP50, ms, "diff", "lower"));
    const p99 = row("sse.p99", `${name}: delay p99`, rounds, (m) => m.delayP99, ms, "diff", "lower");
    rows.push(judge(p99, rounds, "direct", (m) => m.delayP99, "diff", "added (vs direct) < 1 ms", (x) => x < 1));
    rows.push(row("sse.max", `${name}: delay max`, rounds, (m) => m.delayMax, ms, "diff", "lower"));
    rows.push(noDirect(row("sse.cpu", `${name}: proxy CPU per 1000 events`, rounds, (m) => m.cpuMsPer1kEvents, ms, "ratio", "lower")));
    rows.push(row("sse.total", `${name}: total time`, rounds, (m) => m.totalMs, ms, "ratio", "lower"));
    const integrity = row("sse.batched", `${name}: batched / out of order / lost`, rounds, (m) => m.batched, String, "diff", "lower");
    for (const p of PATHS) {
      const all = rounds.flatMap((x) => (x[p] ? [x[p]!] : []));
      if (!all.length) continue;
      const sum = (f: (m: SseMetrics) => number) => all.reduce((a, m) => a + f(m), 0);
      integrity.values[p] = `${sum((m) => m.batched)} / ${sum((m) => m.outOfOrder)} / ${sum((m) => m.expected - m.received)}`;
      integrity.numbers[p] = sum((m) => m.batched);
    }
    integrity.vsNginx = integrity.vsDirect = integrity.vsFloor = integrity.floorVsNginx = undefined;
    integrity.target = "none batched (≤ direct), in order";
    const mine = rounds.flatMap((x) => (x.memproxy ? [x.memproxy] : []));
    const direct = rounds.flatMap((x) => (x.direct ? [x.direct] : []));
    integrity.pass = mine.length
      ? mine.every((m) => m.outOfOrder === 0 && m.received === m.expected) && mine.reduce((a, m) => a + m.batched, 0) <= direct.reduce((a, m) => a + m.batched, 0)
      : null;
    rows.push(integrity);
  }
  if (r.upload) {
    rows.push(row("upload.ms", `${(r.upload.bytes / 2 ** 20).toFixed(0)} MB request body: time`, r.upload.rounds, (m) => m.ms, ms, "ratio", "lower"));
  }
  rows.push(...memoryRows(r.memory));
  if (r.scale) rows.push(...scaleRows(r.scale));
  if (r.idle && r.idle.memproxyMb.length && r.idle.bareMb.length) {
    const mine = median(r.idle.memproxyMb);
    const bare = median(r.idle.bareMb);
    const idle = single("idle.rss", `Idle RSS, fresh process (bare compiled Bun server: ${mb(bare)})`, mine, mb, "lower", r.idle.memproxyMb);
    idle.target = `≤ 1.3× bare Bun (${mb(1.3 * bare)}): ${times(mine / bare)}`;
    idle.pass = mine <= 1.3 * bare;
    const n = Math.min(r.idle.memproxyMb.length, r.idle.bareMb.length);
    idle.relative = { label: "÷ bare Bun", samples: r.idle.memproxyMb.slice(0, n).map((x, i) => x / r.idle!.bareMb[i]!), kind: "ratio" };
    if (r.idle.floorMb?.length) {
      idle.numbers.floor = median(r.idle.floorMb);
      idle.values.floor = `${mb(idle.numbers.floor)} (compiled)`;
      idle.samples!.floor = r.idle.floorMb;
      idle.vsFloor = times(mine / idle.numbers.floor);
    }
    rows.push(idle);
  }
  if (r.startup) {
    const s = single("startup.ms", `Start-up to first proxied answer (median of ${r.startup.runsMs.length})`, r.startup.medianMs, ms, "lower", r.startup.runsMs);
    s.target = "< 50 ms";
    s.pass = r.startup.medianMs < 50;
    rows.push(s);
  }
  return rows;
}

/** The open-loop rows: every path at the same offered rate, then the sweep for the rate where p99 passes the limit. */
function openRows(o: NonNullable<BenchResults["open"]>): Row[] {
  const rows: Row[] = [];
  const name = `Open loop, ${rps(o.rate)} req/s offered (½ nginx's saturation)`;
  const rounds = o.rounds;
  rows.push(row("open.achieved", `${name}: achieved req/s`, rounds, (m) => m.achieved, rps, "ratio", "higher"));
  rows.push(row("open.p50", `${name}: p50`, rounds, (m) => m.p50Ms, ms, "diff", "lower"));
  const p99 = row("open.p99", `${name}: p99`, rounds, (m) => m.p99Ms, ms, "diff", "lower");
  rows.push(judge(p99, rounds, "nginx", (m) => m.p99Ms, "diff", "≤ nginx + 0.5 ms", (x) => x <= 0.5));
  rows.push(row("open.p999", `${name}: p99.9`, rounds, (m) => m.p999Ms, ms, "diff", "lower"));
  rows.push(noDirect(row("open.cpu", `${name}: proxy CPU per request`, rounds, (m) => m.cpuUsPerReq, us, "ratio", "lower")));
  const errors = row("open.errors", `${name}: errors`, rounds, (m) => m.errors, count, "diff", "lower");
  errors.vsNginx = errors.vsDirect = errors.vsFloor = errors.floorVsNginx = undefined;
  rows.push(errors);
  const sweep: Row = { key: "open.passes", label: `Open loop: offered req/s where p99 passes ${o.limitMs} ms`, values: {}, numbers: {}, better: "higher", target: "reported" };
  for (const p of PATHS) {
    const steps = o.sweep[p];
    if (!steps?.length) continue;
    const c = crossing(steps, o.limitMs);
    if (c.estimate !== undefined) {
      sweep.numbers[p] = c.estimate;
      sweep.values[p] = `≈ ${rps(c.estimate)} (${times(c.estimate / o.nginxSaturation)} nginx sat.)`;
    } else if (c.firstOver) sweep.values[p] = `< ${rps(c.firstOver.rate)}`;
    else if (c.lastUnder) sweep.values[p] = `> ${rps(c.lastUnder.rate)}`;
  }
  if (Object.keys(sweep.values).length) rows.push(sweep);
  return rows;
}

function memoryRows(mem: BenchResults["memory"]): Row[] {
  if (!mem.memproxy) return [];
  const memRow = (key: keyof MemoryMetrics, label: string): Row => {
    const numbers: Row["numbers"] = {};
    const values: Row["values"] = {};
    for (const p of ["nginx", "memproxy"] as const) {
      const v = mem[p]?.[key];
      if (v !== undefined) {
        numbers[p] = v;
        values[p] = mb(v);
      }
    }
    const n = numbers.memproxy !== undefined && numbers.nginx !== undefined ? numbers.memproxy / numbers.nginx : NaN;
    return { key: `memory.${key}`, label, values, numbers, better: "lower", vsNginx: Number.isNaN(n) ? undefined : times(n) };
  };
  const after = memRow("afterMb", `Memory (RSS): after the load (settled ${(mem.memproxy.settleMs / 1000).toFixed(0)} s)`);
  after.target = "< 80 MB and ≤ 1.5× idle";
  after.pass = mem.memproxy.afterMb < 80 && mem.memproxy.afterMb <= 1.5 * mem.memproxy.idleMb;
  return [memRow("idleMb", "Memory (RSS): idle"), memRow("peakMb", "Memory (RSS): peak under load"), after];
}

function scaleRows(s: ScaleResults): Row[] {
  const rows: Row[] = [];
  const name = `Team scale, ${count(s.streams)} SSE streams × ${s.events} events`;
  const { direct, memproxy } = s.sse;
  if (memproxy) {
    const both = (pick: (m: SseMetrics) => number, fmt: (x: number) => string) => {
      const values: Row["values"] = { memproxy: fmt(pick(memproxy)) };
      const numbers: Row["numbers"] = { memproxy: pick(memproxy) };
      if (direct) {
        values.direct = fmt(pick(direct));
        numbers.direct = pick(direct);
      }
      return { values, numbers };
    };
    const lost = memproxy.expected - memproxy.received;
    rows.push({
      key: "scale.integrity",
      label: `${name}: received / out of order / lost (streams open at once)`,
      values: { memproxy: `${count(memproxy.received)} / ${memproxy.outOfOrder} / ${lost} (${count(memproxy.maxOpen ?? NaN)})`, ...(direct ? { direct: `${count(direct.received)} / ${direct.outOfOrder} / ${direct.expected - direct.received} (${count(direct.maxOpen ?? NaN)})` } : {}) },
      numbers: { memproxy: lost + memproxy.outOfOrder },
      better: "lower",
      target: "every event, in order",
      pass: lost === 0 && memproxy.outOfOrder === 0 && memproxy.errors.length === 0,
    });
    const p99: Row = { key: "scale.p99", label: `${name}: delay p99`, ...both((m) => m.delayP99, ms), better: "lower" };
    if (direct) {
      const added = memproxy.delayP99 - direct.delayP99;
      p99.vsDirect = plusMs(added);
      p99.target = "added (vs direct) < 5 ms";
      p99.pass = added < 5;
      p99.relative = { label: "− direct", samples: [added], kind: "diff" };
    } else {
      p99.target = "< 5 ms (no direct run: all of it counted as added)";
      p99.pass = memproxy.delayP99 < 5;
    }
    rows.push(p99);
    const max: Row = { key: "scale.max", label: `${name}: delay max`, ...both((m) => m.delayMax, ms), better: "lower" };
    if (direct) max.vsDirect = plusMs(memproxy.delayMax - direct.delayMax);
    rows.push(max);
    rows.push({ key: "scale.cpu", label: `${name}: proxy CPU per 1000 events`, values: { memproxy: ms(memproxy.cpuMsPer1kEvents) }, numbers: { memproxy: memproxy.cpuMsPer1kEvents }, better: "lower" });
  }
  if (s.rss) {
    const c = s.rss;
    const peak = single("scale.peak", `${name}: RSS peak (idle ${mb(c.idleMb)}; peak at ${(c.peakAtMs / 1000).toFixed(1)} s)`, c.peakMb, mb, "lower");
    peak.target = "< 200 MB";
    peak.pass = c.peakMb < 200;
    rows.push(peak);
    const marks = Object.entries(c.after);
    const back = single("scale.after", `${name}: RSS at the end, then ${marks.map(([k]) => `+${k}`).join(" / ")}`, c.after["30s"] ?? NaN, mb, "lower");
    back.values.memproxy = [c.endMb, ...marks.map(([, v]) => v)].map((x) => x.toFixed(0)).join(" / ") + " MB";
    back.target = `< 1.5× idle (${mb(c.boundMb)}) within 30 s: ${c.backUnderMs === undefined ? "not back" : `back after ${(c.backUnderMs / 1000).toFixed(1)} s`}`;
    // Not back by the end of a tail shorter than 30 s (--quick) is not judged.
    back.pass = c.backUnderMs !== undefined && c.backUnderMs <= 30_000 ? true : "30s" in c.after ? false : null;
    rows.push(back);
  }
  if (s.idleConnections) {
    const ic = s.idleConnections;
    const held = ic.again ? Math.min(ic.held.answered, ic.again.answered) : ic.held.answered;
    const r = single("scale.idle", `${count(ic.count)} idle keep-alive connections: RSS peak (before: ${mb(ic.rssBeforeMb)}); held`, ic.peakMb, mb, "lower");
    r.values.memproxy = `${mb(ic.peakMb)}; ${count(held)} held`;
    r.target = "all held, RSS < 150 MB";
    r.pass = held === ic.count && ic.peakMb < 150;
    rows.push(r);
  }
  return rows;
}

const verdict = (p: boolean | null | undefined) => (p === true ? "PASS" : p === false ? "FAIL" : p === null ? "n/a" : "");

/** The summary as a Markdown table (it reads well in a terminal too). */
export function table(rows: Row[]): string {
  const head = ["measurement", "direct", "nginx", "bun floor", "memproxy", "memproxy vs nginx", "memproxy vs floor", "memproxy vs direct", "floor vs nginx", "target", ""];
  const lines = rows.map((x) => [
    x.label,
    x.values.direct ?? "",
    x.values.nginx ?? "",
    x.values.floor ?? "",
    x.values.memproxy ?? "",
    x.vsNginx ?? "",
    x.vsFloor ?? "",
    x.vsDirect ?? "",
    x.floorVsNginx ?? "",
    x.target ?? "",
    verdict(x.pass),
  ]);
  return markdown(head, lines);
}

function markdown(head: string[], lines: string[][]): string {
  const width = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(width[i]!)).join(" | ")} |`;
  return [fmt(head), `| ${width.map((w) => "-".repeat(w)).join(" | ")} |`, ...lines.map(fmt)].join("\n");
}

/** How two sets of samples of one measurement differ, judged against their own spread. */
export interface Difference {
  a: number;
  b: number;
  /** b − a. */
  change: number;
  /** The larger of the two runs' spreads between their own rounds (max − min): what the same code varies by. */
  noise: number;
  /** "better"/"worse": every sample of one run beyond every sample of the other; "within noise": they overlap; "n/a": a run has a single sample. */
  verdict: "better" | "worse" | "within noise" | "n/a";
}

/**
 * Compares the samples of two runs. A change counts only when the two runs' samples do not overlap at
 * all: with 3 rounds each that happens by chance one time in 10 (either way), with 5 rounds one time
 * in 126; the spread shown is the larger of the two runs' own (max − min).
 */
export function difference(a: number[], b: number[], better: "higher" | "lower"): Difference {
  const [ma, mb2] = [median(a), median(b)];
  const spread = (s: number[]) => (s.length ? Math.max(...s) - Math.min(...s) : NaN);
  const noise = Math.max(spread(a), spread(b));
  let verdict: Difference["verdict"] = "n/a";
  if (a.length >= 2 && b.length >= 2) {
    const up = Math.min(...b) > Math.max(...a);
    const down = Math.max(...b) < Math.min(...a);
    verdict = !up && !down ? "within noise" : up === (better === "higher") ? "better" : "worse";
  }
  return { a: ma, b: mb2, change: mb2 - ma, noise, verdict };
}

/**
 * Two saved runs side by side, each row recomputed from the runs' raw numbers (so older result files
 * compare too): memproxy's median in each, the change, the noise (its own rounds' spread) and whether
 * the change is beyond it; then the same for memproxy against its reference path round by round
 * (÷ floor, − nginx, …), which cancels what the machine did between the two runs.
 */
export function compare(a: BenchResults, b: BenchResults): string {
  const rowsA = summarize(a);
  const rowsB = summarize(b);
  const keys = [...new Set([...rowsA.map((r) => r.key), ...rowsB.map((r) => r.key)])];
  const lines = keys.map((key) => {
    const ra = rowsA.find((r) => r.key === key);
    const rb = rowsB.find((r) => r.key === key);
    const label = (ra ?? rb)!.label;
    const better = (ra ?? rb)!.better ?? "lower";
    const sa = ra?.samples?.memproxy ?? (ra?.numbers.memproxy !== undefined ? [ra.numbers.memproxy] : []);
    const sb = rb?.samples?.memproxy ?? (rb?.numbers.memproxy !== undefined ? [rb.numbers.memproxy] : []);
    const cells = [label, ra?.values.memproxy ?? "", rb?.values.memproxy ?? "", "", "", ""];
    if (sa.length && sb.length) {
      const d = difference(sa, sb, better);
      const pct = d.a !== 0 ? ` (${d.change >= 0 ? "+" : "−"}${Math.abs((d.change / d.a) * 100).toFixed(1)}%)` : "";
      cells[3] = `${signed(d.change)}${pct}`;
      cells[4] = Number.isFinite(d.noise) && d.verdict !== "n/a" ? `±${trim(d.noise)}` : "";
      cells[5] = d.verdict;
    }
    const rel = ra?.relative ?? rb?.relative;
    const relCells = ["", "", "", "", ""];
    if (rel) {
      relCells[0] = rel.label;
      const show = (s?: number[]) => (s?.length ? (rel.kind === "ratio" ? times(median(s)) : trim(median(s))) : "");
      relCells[1] = show(ra?.relative?.samples);
      relCells[2] = show(rb?.relative?.samples);
      if (ra?.relative?.samples.length && rb?.relative?.samples.length) {
        const d = difference(ra.relative.samples, rb.relative.samples, better);
        relCells[3] = `${signed(d.change)}${d.verdict !== "n/a" ? ` ±${trim(d.noise)}` : ""}`;
        relCells[4] = d.verdict;
      }
    }
    return [...cells, ...relCells];
  });
  const head = ["measurement", `memproxy A`, `memproxy B`, "B − A", "noise", "verdict", "against", "A", "B", "B − A, noise", "verdict"];
  const differ = [
    a.machine.cpu !== b.machine.cpu || a.machine.nproc !== b.machine.nproc ? "machines" : "",
    Boolean(a.options.quick) !== Boolean(b.options.quick) ? "--quick" : "",
    Boolean(a.options.lean) !== Boolean(b.options.lean) ? "--lean" : "",
    Boolean(a.options.profile) !== Boolean(b.options.profile) ? "--profile" : "",
    (a.options.page ?? 0) !== (b.options.page ?? 0) ? "--with-page" : "",
  ].filter(Boolean);
  return [
    ...(differ.length ? [`note: the two runs differ in ${differ.join(", ")}`] : []),
    `A: ${a.started} (${a.versions.memproxy_commit ?? "?"}, ${roundsOf(a)})`,
    `B: ${b.started} (${b.versions.memproxy_commit ?? "?"}, ${roundsOf(b)})`,
    "noise: the larger of the two runs' spreads between their own rounds (max − min); a change counts (better/worse) only when",
    "no round of one run overlaps a round of the other. 'against': memproxy compared with its reference path in the same round.",
    "",
    markdown(head, lines),
  ].join("\n");
}

function roundsOf(r: BenchResults): string {
  const n = r.options.rounds;
  return typeof n === "number" ? `${n} round${n === 1 ? "" : "s"}` : "rounds unknown";
}

/** A number with 3 significant digits at most, as plain text. */
function trim(x: number): string {
  if (!Number.isFinite(x)) return "–";
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toFixed(3);
}
const signed = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? "+" : "−"}${trim(Math.abs(x))}` : "–");
