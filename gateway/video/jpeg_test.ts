import assert from "node:assert/strict";
import sharp from "sharp";
import { encodeJpeg, warmJpegEncoder } from "./jpeg.ts";

Deno.test("a packed I420 frame becomes a JPEG of its size and colours", async () => {
  const width = 64, height = 48;
  const i420 = new Uint8Array(width * height * 1.5);
  // Left half white (Y 235), right half black (Y 16); neutral chroma (128).
  for (let row = 0; row < height; row++) {
    for (let x = 0; x < width; x++) i420[row * width + x] = x < width / 2 ? 235 : 16;
  }
  i420.fill(128, width * height);
  const jpeg = await encodeJpeg({ width, height, i420 });
  assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8]);
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width, width);
  assert.equal(info.height, height);
  const at = (x: number, y: number) => data[(y * width + x) * info.channels];
  assert.ok(at(5, 24) > 240, `left is white (${at(5, 24)})`);
  assert.ok(at(58, 24) < 15, `right is black (${at(58, 24)})`);
});

Deno.test("a frame shorter than its size is refused", async () => {
  await assert.rejects(
    () => encodeJpeg({ width: 64, height: 48, i420: new Uint8Array(100) }),
    RangeError,
  );
});

Deno.test("warming the encoder loads sharp and encodes once", async () => {
  await warmJpegEncoder();
  // Warm: a real frame encodes as before.
  const jpeg = await encodeJpeg({ width: 16, height: 16, i420: new Uint8Array(16 * 16 * 1.5) });
  assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8]);
});
