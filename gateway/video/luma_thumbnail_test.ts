import assert from "node:assert/strict";
import { downscaleLuma, type Plane, thumbnailSize } from "./luma_thumbnail.ts";

/** A `width`×`height` plane with `pad` bytes after each row, pixel value f(x, y). */
function plane(width: number, height: number, pad: number, f: (x: number, y: number) => number) {
  const stride = width + pad;
  const data = new Uint8Array(stride * height).fill(255); // padding must never be read
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * stride + x] = f(x, y);
  return { data, width, height, stride } satisfies Plane;
}

Deno.test("thumbnailSize keeps the aspect ratio at 160 wide", () => {
  assert.deepEqual(thumbnailSize(640, 480), { width: 160, height: 120 });
  assert.deepEqual(thumbnailSize(1280, 720), { width: 160, height: 90 });
  assert.deepEqual(thumbnailSize(100, 50), { width: 100, height: 50 });
});

Deno.test("each thumbnail pixel is the mean of its source block; row padding is ignored", () => {
  // 8×4 → 2×1: left block values 0..15 region, right block constant 200.
  const source = plane(8, 4, 3, (x, y) => (x < 4 ? x + 4 * y : 200));
  const out = downscaleLuma(source, new Uint8Array(2), { width: 2, height: 1 });
  // Left mean: mean of x + 4y for x, y in 0..3 = 1.5 + 6 = 7.5 → 8.
  assert.deepEqual([...out], [8, 200]);
});

Deno.test("non-integer factors cover every source pixel once; rowStep samples rows", () => {
  const source = plane(10, 6, 0, (_x, y) => y * 10);
  const all = downscaleLuma(source, new Uint8Array(8), { width: 4, height: 2 });
  assert.deepEqual([...all], [10, 10, 10, 10, 40, 40, 40, 40]); // rows 0..2 mean 10, 3..5 mean 40
  const stepped = downscaleLuma(source, new Uint8Array(8), { width: 4, height: 2, rowStep: 2 });
  assert.deepEqual([...stepped], [10, 10, 10, 10, 40, 40, 40, 40]); // rows 0, 2 → 10; 3, 5 → 40
  const odd = plane(10, 6, 0, (x) => x * 10); // columns 0-2, 3-4, 5-7, 8-9
  assert.deepEqual([...downscaleLuma(odd, new Uint8Array(4), { width: 4, height: 1 })], [
    10,
    35,
    60,
    85,
  ]);
});

Deno.test("downscaleLuma refuses upscaling and a short buffer", () => {
  const source = plane(4, 4, 0, () => 1);
  assert.throws(() => downscaleLuma(source, new Uint8Array(64), { width: 8, height: 8 }), /8x8/);
  assert.throws(() => downscaleLuma(source, new Uint8Array(1), { width: 2, height: 2 }), /needs 4/);
});
