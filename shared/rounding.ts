/**
 * How measured numbers are reported (metrics, latencies, stages): to a tenth, enough for a
 * millisecond timing or a CPU percentage, without float noise like 12.300000000000001.
 *
 * @example
 * ```ts
 * roundTenth(12.345); // 12.3
 * ```
 */

/** Tenths in one unit. */
const TENTHS = 10;

/** `value` rounded to one decimal (ms, percent, ...). */
export function roundTenth(value: number): number {
  return Math.round(value * TENTHS) / TENTHS;
}
