/**
 * The playback-clock counters of several clocks (each session worker's, and the main thread's)
 * as one clock's, for `naila/gateway/metrics` (docs/scaling.md "Every core of the gateway").
 *
 * A `FrameClock`'s `takeStats()` is cumulative (ticks, late ticks and stalls since the clock
 * was made) except the worst lateness, which is since the previous call. So each source's latest
 * report replaces its previous one, and the sum is of the latest reports; adding every report up
 * instead would count the same ticks again with every message.
 *
 * @example
 * ```ts
 * const sum = new ClockStatsSum();
 * sum.report(worker, statsFromWorker); // whenever the worker sends them
 * const playback = sum.take(); // once per metrics message
 * ```
 */
import type { ClockStats } from "../shared/media/frame_clock.ts";

/** See the module doc. */
export class ClockStatsSum {
  #latest = new Map<unknown, ClockStats>();
  #maxLateMs = 0;

  /** Records `source`'s cumulative counters (one `FrameClock.takeStats()` of its clock). */
  report(source: unknown, stats: ClockStats): void {
    this.#latest.set(source, { ...stats });
    this.#maxLateMs = Math.max(this.#maxLateMs, stats.maxLateMs);
  }

  /**
   * Ticks, late ticks and stalls summed over every source's latest report (cumulative, like one
   * clock's); the worst lateness (ms) of any report since the previous call.
   */
  take(): ClockStats {
    const sum: ClockStats = { ticks: 0, lateTicks: 0, stalls: 0, maxLateMs: this.#maxLateMs };
    for (const stats of this.#latest.values()) {
      sum.ticks += stats.ticks;
      sum.lateTicks += stats.lateTicks;
      sum.stalls += stats.stalls;
    }
    this.#maxLateMs = 0;
    return sum;
  }
}
