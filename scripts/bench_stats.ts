/** Order statistics for the benchmark scripts (nearest-rank percentiles, as in most reports). */

/** The `p`-th percentile (0..100) by nearest rank; NaN for no values. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)];
}

/** The median (50th percentile by nearest rank). */
export function median(values: number[]): number {
  return percentile(values, 50);
}

/** Rounds to `digits` decimals for readable reports. */
export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
