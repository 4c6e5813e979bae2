/** Pure summary statistics for the benchmark (no I/O). */

export interface Summary {
  n: number;
  min: number;
  median: number;
  max: number;
}

function sorted(values: readonly number[]): number[] {
  for (const v of values) if (!Number.isFinite(v)) throw new RangeError(`not a finite number: ${v}`);
  return [...values].sort((a, b) => a - b);
}

/**
 * The p-th percentile (0..100) with linear interpolation between closest ranks
 * (the "R-7" / numpy default definition). Empty input → NaN.
 */
export function percentile(values: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const s = sorted(values);
  if (s.length === 0) return Number.NaN;
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo]! + (s[hi]! - s[lo]!) * (rank - lo);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export function summarize(values: readonly number[]): Summary {
  const s = sorted(values);
  if (s.length === 0) return { n: 0, min: Number.NaN, median: Number.NaN, max: Number.NaN };
  return { n: s.length, min: s[0]!, median: percentile(s, 50), max: s[s.length - 1]! };
}

/** a / b of two summaries, median over median (NaN when b is 0 or missing). */
export function ratio(a: Summary | undefined, b: Summary | undefined): number {
  if (!a || !b || !b.median) return Number.NaN;
  return a.median / b.median;
}

/** Rate in units per second. */
export function perSecond(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : Number.NaN;
}
