import assert from "node:assert/strict";
import { median, percentile, round } from "./bench_stats.ts";

Deno.test("percentile uses the nearest rank", () => {
  const values = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
  assert.equal(percentile(values, 50), 5);
  assert.equal(percentile(values, 95), 10);
  assert.equal(percentile(values, 0), 1);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.equal(round(1.23456, 2), 1.23);
});
