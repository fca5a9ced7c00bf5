import assert from "node:assert/strict";
import { FrameFiller } from "./frame_filler.ts";

Deno.test("FrameFiller cuts pieces of any size into whole frames and keeps the rest", () => {
  const frames: number[][] = [];
  const filler = new FrameFiller(new Float32Array(3), (frame) => frames.push([...frame]));
  filler.push(new Float32Array([1, 2]));
  assert.deepEqual(frames, []);
  filler.push(new Float32Array([3, 4, 5, 6, 7, 8, 9]));
  assert.deepEqual(frames, [[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
  filler.push(new Float32Array([10]));
  assert.equal(filler.fill, 1);
  assert.deepEqual([...filler.take()], [10]);
  assert.equal(filler.fill, 0);
  filler.push(new Float32Array([11, 12]));
  filler.reset();
  filler.push(new Float32Array([13, 14, 15]));
  assert.deepEqual(frames.at(-1), [13, 14, 15], "reset dropped the partial frame");
});
