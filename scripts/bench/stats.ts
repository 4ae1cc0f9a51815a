// Small statistics for the benchmark: percentiles of samples and medians across rounds.

/**
 * The p-th percentile of `sorted` (ascending), nearest-rank method: the smallest value such that
 * at least p% of the samples are at or below it. The same definition wrk uses for its histogram.
 * @param sorted samples in ascending order (not modified).
 * @param p percentile from 0 to 100.
 * @returns the value, or NaN for no samples.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (p <= 0) return sorted[0]!;
  const rank = Math.ceil((p / 100) * n);
  return sorted[Math.min(n, rank) - 1]!;
}

/** Sorts numeric samples ascending into a new typed array (numbers, not strings, are compared). */
export function sortedSamples(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/**
 * The median of a few round results (mean of the two middle ones for an even count); NaN values,
 * from a round that could not measure, are left out.
 */
export function median(values: readonly number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}
