import assert from "node:assert/strict";
import { ClockStatsSum } from "./clock_stats_sum.ts";

Deno.test("clock stats sum: repeated reports of a source count once, sources add up", () => {
  const sum = new ClockStatsSum();
  // A worker reporting twice in one metrics period (its timer and the gateway's drift apart).
  sum.report("w0", { ticks: 100, lateTicks: 2, stalls: 0, maxLateMs: 25 });
  sum.report("w0", { ticks: 150, lateTicks: 3, stalls: 1, maxLateMs: 5 });
  sum.report("w1", { ticks: 40, lateTicks: 0, stalls: 0, maxLateMs: 3 });
  assert.deepEqual(sum.take(), { ticks: 190, lateTicks: 3, stalls: 1, maxLateMs: 25 });
  // A period with no report: the counters stay (cumulative), the worst lateness is new.
  assert.deepEqual(sum.take(), { ticks: 190, lateTicks: 3, stalls: 1, maxLateMs: 0 });
  sum.report("w1", { ticks: 90, lateTicks: 1, stalls: 0, maxLateMs: 30 });
  assert.deepEqual(sum.take(), { ticks: 240, lateTicks: 4, stalls: 1, maxLateMs: 30 });
});
