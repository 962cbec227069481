/** Nearest-rank percentile of a sample (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
}

export function summarize(values: readonly number[]): Summary {
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  return { n: values.length, p50: percentile(values, 50), p99: percentile(values, 99), mean };
}

/**
 * What B adds to A, from samples taken in alternation: the percentiles of the paired
 * differences, and the difference of the percentiles (less sensitive to a lone outlier pair).
 */
export interface Added {
  pairedP50: number;
  pairedP99: number;
  p50: number;
  p99: number;
  baseline: Summary;
  measured: Summary;
}

export function added(baseline: readonly number[], measured: readonly number[]): Added {
  const n = Math.min(baseline.length, measured.length);
  const diffs = Array.from({ length: n }, (_, i) => measured[i]! - baseline[i]!);
  const a = summarize(baseline);
  const b = summarize(measured);
  return { pairedP50: percentile(diffs, 50), pairedP99: percentile(diffs, 99), p50: b.p50 - a.p50, p99: b.p99 - a.p99, baseline: a, measured: b };
}

export const ms = (value: number, digits = 2) => (Number.isFinite(value) ? `${value.toFixed(digits)} ms` : "n/a");

export function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
