import assert from "node:assert/strict";
import { iou, nonMaxSuppression } from "./nms.ts";

Deno.test("iou: identical boxes 1, disjoint 0, half-overlapping 1/3", () => {
  assert.equal(iou([0, 0, 10, 10], [0, 0, 10, 10]), 1);
  assert.equal(iou([0, 0, 10, 10], [20, 20, 5, 5]), 0);
  assert.ok(Math.abs(iou([0, 0, 10, 10], [5, 0, 10, 10]) - 50 / 150) < 1e-12);
  assert.equal(iou([0, 0, 0, 0], [0, 0, 0, 0]), 0);
});

Deno.test("nonMaxSuppression: drops the weaker of two overlapping boxes of one class only", () => {
  const kept = nonMaxSuppression([
    { classIndex: 0, score: 0.6, box: [1, 1, 10, 10] },
    { classIndex: 0, score: 0.9, box: [0, 0, 10, 10] },
    { classIndex: 16, score: 0.5, box: [0, 0, 10, 10] }, // another class at the same place stays
    { classIndex: 0, score: 0.4, box: [50, 50, 10, 10] }, // a second person elsewhere stays
  ]);
  assert.deepEqual(kept.map((d) => [d.classIndex, d.score]), [[0, 0.9], [16, 0.5], [0, 0.4]]);
});
