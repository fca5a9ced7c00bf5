import assert from "node:assert/strict";
import { UtteranceBuffer } from "./utterance_buffer.ts";
import { MAX_UTTERANCE_MS } from "./utterance_segmenter.ts";

Deno.test("UtteranceBuffer grows as audio comes, keeps it in order, and stops at 30 s", () => {
  const rate = 8000;
  const buffer = new UtteranceBuffer(rate);
  assert.equal(buffer.view().length, 0);
  buffer.append(new Uint8Array([1, 2]));
  buffer.append(new Uint8Array(rate * 2 * 3).fill(7)); // 3 s: past the first second's room
  assert.equal(buffer.length, 2 + rate * 6);
  assert.deepEqual([...buffer.view().subarray(0, 3)], [1, 2, 7]);
  buffer.append(new Uint8Array(rate * 2 * 40)); // 40 s more
  assert.equal(buffer.length, (MAX_UTTERANCE_MS / 1000) * rate * 2, "cut at the limit");
  const view = buffer.view();
  buffer.clear();
  assert.equal(buffer.length, 0);
  assert.equal(view[0], 1, "a view taken before clear() stays valid");
});
