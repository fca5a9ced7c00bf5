import assert from "node:assert/strict";
import { argmaxAllowed, logSoftmaxAllowed, softmaxAt } from "./logits.ts";

const ROW = Float32Array.of(1, 5, 3, 2);

Deno.test("argmaxAllowed: the largest logit whose token is not suppressed", () => {
  assert.equal(argmaxAllowed(ROW, Uint8Array.of(0, 0, 0, 0)), 1);
  assert.equal(argmaxAllowed(ROW, Uint8Array.of(0, 1, 0, 0)), 2);
  assert.equal(argmaxAllowed(ROW, Uint8Array.of(1, 1, 1, 0)), 3);
  assert.equal(argmaxAllowed(ROW, Uint8Array.of(1, 1, 1, 1)), -1);
});

Deno.test("softmaxAt: one probability of the whole row, stable for large logits", () => {
  const expected = Math.exp(5) / (Math.exp(1) + Math.exp(5) + Math.exp(3) + Math.exp(2));
  assert.ok(Math.abs(softmaxAt(ROW, 1) - expected) < 1e-12);
  assert.equal(softmaxAt(Float32Array.of(1000, 1000), 0), 0.5);
});

Deno.test("logSoftmaxAllowed: the log-probability among the tokens not suppressed", () => {
  const masked = Uint8Array.of(0, 1, 0, 0); // token 1 suppressed
  const expected = Math.log(Math.exp(3) / (Math.exp(1) + Math.exp(3) + Math.exp(2)));
  assert.ok(Math.abs(logSoftmaxAllowed(ROW, 2, masked) - expected) < 1e-12);
});
