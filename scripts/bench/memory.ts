// Resident memory over time for the benchmark: a sampler of one process's RSS from /proc, and the
// key points of the curve it draws around a load (pure, checked by test/scripts/bench.test.ts).
import { memoryOf } from "./procs.ts";

/** One sample: ms since the sampler started, RSS in MB. */
export interface RssSample {
  t: number;
  mb: number;
}

/** Samples a process's VmRSS every `everyMs` until stopped; `mark()` notes times on the same clock. */
export class RssSampler {
  readonly samples: RssSample[] = [];
  private readonly t0 = performance.now();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly pid: number,
    everyMs = 100,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  /** Takes one sample now (a gone process gives none); returns its MB. */
  sample(): number {
    const kb = memoryOf(this.pid)?.rssKb;
    if (kb === undefined || Number.isNaN(kb)) return NaN;
    const s = { t: this.now(), mb: kb / 1024 };
    this.samples.push(s);
    return s.mb;
  }

  /** ms since the sampler started. */
  now(): number {
    return performance.now() - this.t0;
  }

  /** The largest sample between two times (ms on this sampler's clock). */
  peakBetween(from: number, to: number): number {
    return Math.max(...this.samples.filter((s) => s.t >= from && s.t <= to).map((s) => s.mb));
  }

  stop(): RssSample[] {
    clearInterval(this.timer);
    this.sample();
    return this.samples;
  }
}

/** Waits until `read()` (MB) moves by at most `withinMb` over `steady` samples `everyMs` apart, or `maxMs` passed; returns the last value. */
export async function steadyRss(read: () => number, opts: { everyMs?: number; steady?: number; withinMb?: number; maxMs?: number } = {}): Promise<number> {
  const { everyMs = 250, steady = 4, withinMb = 0.5, maxMs = 5_000 } = opts;
  const t0 = performance.now();
  const recent: number[] = [];
  for (;;) {
    recent.push(read());
    if (recent.length > steady) recent.shift();
    if ((recent.length === steady && Math.max(...recent) - Math.min(...recent) <= withinMb) || performance.now() - t0 >= maxMs) return recent.at(-1)!;
    await Bun.sleep(everyMs);
  }
}

/** The RSS curve of a load, in a few numbers (MB; times in ms after the load ended). */
export interface RssCurve {
  idleMb: number;
  peakMb: number;
  /** When the peak was seen, ms after the load started. */
  peakAtMs: number;
  /** RSS when the load ended. */
  endMb: number;
  /** RSS this long after the load ended (the sample nearest each mark at or after it). */
  after: Record<string, number>;
  /** The bound the curve must come back under: `factor` × idle. */
  boundMb: number;
  /** How long after the load's end RSS went under the bound and stayed there to the last sample; undefined when it did not. */
  backUnderMs?: number;
  /** The samples (ms after the load started, MB), thinned to at most one per 250 ms. */
  curve: [number, number][];
}

/**
 * The key points of `samples` around a load that ran from `loadStart` to `loadEnd` (ms, the
 * samples' clock), against the process's idle RSS.
 */
export function rssCurve(samples: readonly RssSample[], idleMb: number, loadStart: number, loadEnd: number, factor = 1.5, marksMs = [1_000, 5_000, 10_000, 20_000, 30_000]): RssCurve {
  const during = samples.filter((s) => s.t >= loadStart);
  let peak = { t: loadStart, mb: idleMb };
  for (const s of during) if (s.mb > peak.mb) peak = s;
  const atOrAfter = (t: number) => during.find((s) => s.t >= t);
  const endMb = (atOrAfter(loadEnd) ?? during.at(-1))?.mb ?? NaN;
  const after: Record<string, number> = {};
  const last = during.at(-1)?.t ?? loadEnd;
  for (const m of marksMs) {
    const s = atOrAfter(loadEnd + m);
    if (s && s.t <= last) after[`${m / 1000}s`] = s.mb;
  }
  const bound = factor * idleMb;
  // From the end backwards: the last sample over the bound; the curve stays under after it.
  const tail = during.filter((s) => s.t >= loadEnd);
  let backUnderMs: number | undefined;
  const lastOver = tail.findLastIndex((s) => s.mb >= bound);
  if (lastOver < tail.length - 1) backUnderMs = Math.max(0, tail[lastOver + 1]!.t - loadEnd);
  const curve: [number, number][] = [];
  for (const s of during) {
    if (!curve.length || s.t - loadStart - curve.at(-1)![0] >= 250) curve.push([Math.round(s.t - loadStart), Math.round(s.mb * 10) / 10]);
  }
  return { idleMb, peakMb: peak.mb, peakAtMs: peak.t - loadStart, endMb, after, boundMb: bound, backUnderMs, curve };
}
