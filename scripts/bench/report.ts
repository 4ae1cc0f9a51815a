// The benchmark's results: their JSON shape, the summary table with ratios and targets, and the
// side-by-side comparison of two saved runs.
import { median } from "./stats.ts";

/** direct: no proxy; floor: a feature-less Bun proxy (scripts/bench/floor.ts), the most memproxy's stack gives. */
export const PATHS = ["direct", "nginx", "floor", "memproxy"] as const;
export type PathName = (typeof PATHS)[number];
/** One round: each path's measurements, taken back to back. */
export type Round<M> = Partial<Record<PathName, M>>;

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

/** Everything one run measured; written to .bench/results-<timestamp>.json. */
export interface BenchResults {
  format: "memproxy-bench/1";
  started: string;
  finished: string;
  options: Record<string, unknown>;
  machine: Record<string, string | number>;
  versions: Record<string, string>;
  notes: string[];
  /** Share of the machine's CPU other programs used just before and just after the run (0–1). */
  busy?: { before: number; after: number };
  json: Record<string, Round<WrkMetrics>[]>;
  sse?: { streams: number; events: number; intervalMs: number; rounds: Round<SseMetrics>[] };
  upload?: { bytes: number; rounds: Round<UploadMetrics>[] };
  memory: { memproxy?: MemoryMetrics; nginx?: MemoryMetrics };
  startup?: { runsMs: number[]; medianMs: number; maxMs: number };
  rows: Row[];
}

/** One line of the summary table. */
export interface Row {
  key: string;
  label: string;
  values: Partial<Record<PathName, string>>;
  /** Raw numbers behind `values`, for comparing runs. */
  numbers: Partial<Record<PathName, number>>;
  vsNginx?: string;
  vsDirect?: string;
  /** The bun floor against nginx, in the same round: how far the stack itself stands from nginx. */
  floorVsNginx?: string;
  target?: string;
  /** true PASS, false FAIL, null not judged (a path is missing). */
  pass?: boolean | null;
}

const us = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} µs` : "–");
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)} ms` : "–");
const mb = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} MB` : "–");
const rps = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "–");
const times = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "–");
const plusMs = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(2)} ms` : "–");

/** Median over rounds of each path's value. */
function perPath<M>(rounds: Round<M>[], pick: (m: M) => number): Partial<Record<PathName, number>> {
  const out: Partial<Record<PathName, number>> = {};
  for (const p of PATHS) {
    const vals = rounds.flatMap((r) => (r[p] ? [pick(r[p]!)] : []));
    if (vals.length) out[p] = median(vals);
  }
  return out;
}

/** Median over rounds of a comparison of memproxy (or `mine`) with another path measured in the same round. */
function paired<M>(
  rounds: Round<M>[],
  other: PathName,
  pick: (m: M) => number,
  cmp: (mine: number, theirs: number) => number,
  mine: PathName = "memproxy",
): number {
  return median(rounds.flatMap((r) => (r[mine] && r[other] ? [cmp(pick(r[mine]!), pick(r[other]!))] : [])));
}
const ratio = (a: number, b: number) => a / b;

/** A row about the proxy itself: the direct path's number (the backend's) is kept in the JSON only. */
function noDirect(r: Row): Row {
  delete r.values.direct;
  r.vsDirect = undefined;
  return r;
}
const diff = (a: number, b: number) => a - b;

function row<M>(
  key: string,
  label: string,
  rounds: Round<M>[],
  pick: (m: M) => number,
  fmt: (x: number) => string,
  vs: "ratio" | "diff",
): Row {
  const numbers = perPath(rounds, pick);
  const values: Row["values"] = {};
  for (const p of PATHS) if (numbers[p] !== undefined) values[p] = fmt(numbers[p]!);
  const cmp = vs === "ratio" ? ratio : diff;
  const show = vs === "ratio" ? times : plusMs;
  const n = paired(rounds, "nginx", pick, cmp);
  const d = paired(rounds, "direct", pick, cmp);
  const f = paired(rounds, "nginx", pick, cmp, "floor");
  const shown = (x: number) => (Number.isNaN(x) ? undefined : show(x));
  return { key, label, values, numbers, vsNginx: shown(n), vsDirect: shown(d), floorVsNginx: shown(f) };
}

/** Builds the summary rows, each target judged. */
export function summarize(r: BenchResults): Row[] {
  const rows: Row[] = [];
  for (const [conns, rounds] of Object.entries(r.json)) {
    const t = row(`json${conns}.rps`, `JSON POST, ${conns} conns: requests/s`, rounds, (m) => m.rps, rps, "ratio");
    const q = paired(rounds, "nginx", (m) => m.rps, ratio);
    t.target = "≥ 0.60× nginx";
    t.pass = Number.isNaN(q) ? null : q >= 0.6;
    rows.push(t);
    rows.push(noDirect(row(`json${conns}.cpu`, `JSON POST, ${conns} conns: proxy CPU per request`, rounds, (m) => m.cpuUsPerReq, us, "ratio")));
    rows.push(row(`json${conns}.p50`, `JSON POST, ${conns} conns: p50`, rounds, (m) => m.p50Ms, ms, "diff"));
    const p99 = row(`json${conns}.p99`, `JSON POST, ${conns} conns: p99`, rounds, (m) => m.p99Ms, ms, "diff");
    const over = paired(rounds, "nginx", (m) => m.p99Ms, diff);
    p99.target = "≤ nginx + 1 ms";
    p99.pass = Number.isNaN(over) ? null : over <= 1;
    rows.push(p99);
  }
  if (r.sse) {
    const { rounds, streams, events } = r.sse;
    const name = `SSE ${streams}×${events} events`;
    rows.push(row("sse.p50", `${name}: delay p50`, rounds, (m) => m.delayP50, ms, "diff"));
    const p99 = row("sse.p99", `${name}: delay p99`, rounds, (m) => m.delayP99, ms, "diff");
    const added = paired(rounds, "direct", (m) => m.delayP99, diff);
    p99.target = "added (vs direct) < 1 ms";
    p99.pass = Number.isNaN(added) ? null : added < 1;
    rows.push(p99);
    rows.push(row("sse.max", `${name}: delay max`, rounds, (m) => m.delayMax, ms, "diff"));
    rows.push(noDirect(row("sse.cpu", `${name}: proxy CPU per 1000 events`, rounds, (m) => m.cpuMsPer1kEvents, ms, "ratio")));
    rows.push(row("sse.total", `${name}: total time`, rounds, (m) => m.totalMs, ms, "ratio"));
    const integrity = row("sse.batched", `${name}: batched / out of order / lost`, rounds, (m) => m.batched, String, "diff");
    for (const p of PATHS) {
      const all = rounds.flatMap((x) => (x[p] ? [x[p]!] : []));
      if (!all.length) continue;
      const sum = (f: (m: SseMetrics) => number) => all.reduce((a, m) => a + f(m), 0);
      integrity.values[p] = `${sum((m) => m.batched)} / ${sum((m) => m.outOfOrder)} / ${sum((m) => m.expected - m.received)}`;
      integrity.numbers[p] = sum((m) => m.batched);
    }
    integrity.vsNginx = integrity.vsDirect = integrity.floorVsNginx = undefined;
    integrity.target = "none batched (≤ direct), in order";
    const mine = rounds.flatMap((x) => (x.memproxy ? [x.memproxy] : []));
    const direct = rounds.flatMap((x) => (x.direct ? [x.direct] : []));
    integrity.pass = mine.length
      ? mine.every((m) => m.outOfOrder === 0 && m.received === m.expected) &&
        mine.reduce((a, m) => a + m.batched, 0) <= direct.reduce((a, m) => a + m.batched, 0)
      : null;
    rows.push(integrity);
  }
  if (r.upload) {
    rows.push(row("upload.ms", `${(r.upload.bytes / 2 ** 20).toFixed(0)} MB request body: time`, r.upload.rounds, (m) => m.ms, ms, "ratio"));
  }
  const mem = r.memory;
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
    return { key: `memory.${key}`, label, values, numbers, vsNginx: Number.isNaN(n) ? undefined : times(n) };
  };
  if (mem.memproxy) {
    rows.push(memRow("idleMb", "Memory (RSS): idle"));
    rows.push(memRow("peakMb", "Memory (RSS): peak under load"));
    const after = memRow("afterMb", `Memory (RSS): after the load (settled ${(mem.memproxy.settleMs / 1000).toFixed(0)} s)`);
    after.target = "< 80 MB and ≤ 1.5× idle";
    after.pass = mem.memproxy.afterMb < 80 && mem.memproxy.afterMb <= 1.5 * mem.memproxy.idleMb;
    rows.push(after);
  }
  if (r.startup) {
    rows.push({
      key: "startup.ms",
      label: `Start-up to first proxied answer (median of ${r.startup.runsMs.length})`,
      values: { memproxy: ms(r.startup.medianMs) },
      numbers: { memproxy: r.startup.medianMs },
      target: "< 50 ms",
      pass: r.startup.medianMs < 50,
    });
  }
  return rows;
}

const verdict = (p: boolean | null | undefined) => (p === true ? "PASS" : p === false ? "FAIL" : p === null ? "n/a" : "");

/** The summary as a Markdown table (it reads well in a terminal too). */
export function table(rows: Row[]): string {
  const head = ["measurement", "direct", "nginx", "bun floor", "memproxy", "memproxy vs nginx", "memproxy vs direct", "floor vs nginx", "target", ""];
  const lines = rows.map((x) => [
    x.label,
    x.values.direct ?? "",
    x.values.nginx ?? "",
    x.values.floor ?? "",
    x.values.memproxy ?? "",
    x.vsNginx ?? "",
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

/** Two saved runs side by side: memproxy's (and nginx's) numbers per row, with the change. */
export function compare(a: BenchResults, b: BenchResults): string {
  const keys = [...new Set([...a.rows.map((r) => r.key), ...b.rows.map((r) => r.key)])];
  const lines = keys.map((key) => {
    const ra = a.rows.find((r) => r.key === key);
    const rb = b.rows.find((r) => r.key === key);
    const ma = ra?.numbers.memproxy;
    const mb2 = rb?.numbers.memproxy;
    const change = ma !== undefined && mb2 !== undefined && ma !== 0 ? `${(((mb2 - ma) / Math.abs(ma)) * 100).toFixed(1)}%` : "";
    return [
      (ra ?? rb)!.label,
      ra?.values.memproxy ?? "",
      rb?.values.memproxy ?? "",
      change,
      ra?.values.nginx ?? "",
      rb?.values.nginx ?? "",
    ];
  });
  return markdown(["measurement", `memproxy (${a.started})`, `memproxy (${b.started})`, "change", "nginx (first)", "nginx (second)"], lines);
}
