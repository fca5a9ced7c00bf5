import assert from "node:assert/strict";
import { concatChunks } from "./concat.ts";

Deno.test("concatChunks joins samples or bytes in order into one array", () => {
  const samples = concatChunks([new Float32Array([1, 2]), new Float32Array(0), Float32Array.of(3)]);
  assert.ok(samples instanceof Float32Array);
  assert.deepEqual([...samples], [1, 2, 3]);
  const bytes = concatChunks([Uint8Array.of(4), Uint8Array.of(5, 6)]);
  assert.ok(bytes instanceof Uint8Array);
  assert.deepEqual([...bytes], [4, 5, 6]);
  assert.equal(concatChunks([] as Float32Array[]).length, 0);
});
