import assert from "node:assert/strict";
import { copyI420, VpxDecodeError, VpxDecoder, vpxVersion } from "./vpx_decoder.ts";
import { decodeWithFfmpeg, encodeVp8, ivfFrames } from "./testing.ts";

const testsrc = (size: string) => ["-f", "lavfi", "-i", `testsrc=size=${size}:rate=5`];

function decodeError(decoder: VpxDecoder, frame: Uint8Array): VpxDecodeError {
  try {
    decoder.decode(frame);
  } catch (error) {
    if (error instanceof VpxDecodeError) return error;
    throw error;
  }
  throw new Error("decode did not throw");
}

Deno.test("libvpx is the one Debian 12 ships", () => {
  assert.match(vpxVersion(), /^v1\.\d+\.\d+/);
});

Deno.test("decoded I420 equals FFmpeg's own VP8 decoder byte for byte", async () => {
  const ivf = await encodeVp8({ inputs: testsrc("640x480"), frames: 4 });
  const reference = await decodeWithFfmpeg(ivf);
  const decoder = new VpxDecoder();
  try {
    const frameBytes = 640 * 480 * 3 / 2;
    ivfFrames(ivf).forEach((vp8, i) => {
      const frame = decoder.decode(vp8)!;
      assert.deepEqual([frame.width, frame.height, frame.u.width, frame.u.height], [
        640,
        480,
        320,
        240,
      ]);
      const expected = reference.subarray(i * frameBytes, (i + 1) * frameBytes);
      assert.ok(copyI420(frame).every((b, j) => b === expected[j]), `frame ${i} differs`);
    });
  } finally {
    decoder.close();
  }
});

Deno.test("a keyframe of another size mid-stream switches the decoded size", async () => {
  const big = ivfFrames(await encodeVp8({ inputs: testsrc("640x480"), frames: 2 }));
  const small = ivfFrames(await encodeVp8({ inputs: testsrc("320x240"), frames: 2 }));
  const decoder = new VpxDecoder();
  try {
    const sizes = [...big, ...small, ...big].map((vp8) => {
      const frame = decoder.decode(vp8)!;
      return `${frame.width}x${frame.height}`;
    });
    assert.deepEqual(sizes, ["640x480", "640x480", "320x240", "320x240", "640x480", "640x480"]);
  } finally {
    decoder.close();
  }
});

Deno.test("a stream over the resolution cap is refused with a clear message until one fits", async () => {
  const huge = ivfFrames(await encodeVp8({ inputs: testsrc("1280x720"), frames: 2 }));
  const fits = ivfFrames(await encodeVp8({ inputs: testsrc("640x480"), frames: 1 }));
  const decoder = new VpxDecoder({ maxWidth: 960, maxHeight: 540 });
  try {
    const refused = decodeError(decoder, huge[0]);
    assert.equal(refused.code, "too_large");
    assert.match(refused.message, /VP8 keyframe is 1280x720, over the 960x540 cap/);
    assert.equal(decodeError(decoder, huge[1]).code, "too_large");
    assert.equal(decoder.decode(fits[0])!.width, 640);
  } finally {
    decoder.close();
  }
});

Deno.test("corrupt data, a missing keyframe and a closed decoder are errors, not crashes", async () => {
  const frames = ivfFrames(await encodeVp8({ inputs: testsrc("640x480"), frames: 3 }));
  const decoder = new VpxDecoder();
  try {
    assert.equal(decodeError(decoder, frames[1]).code, "no_keyframe");
    const truncated = decodeError(decoder, frames[0].subarray(0, frames[0].length >> 1));
    assert.equal(truncated.code, "corrupt");
    assert.match(truncated.message, /libvpx could not decode: Corrupt frame/);
    assert.equal(decoder.decode(frames[0])!.width, 640);
    const garbled = frames[1].slice();
    for (let i = 3; i < garbled.length; i++) garbled[i] ^= 0x5a;
    assert.equal(decodeError(decoder, garbled).code, "corrupt");
    // The next inter frame references what failed: refused until a keyframe.
    const after = decodeError(decoder, frames[2]);
    assert.equal(after.code, "no_keyframe");
    assert.match(after.message, /without a decodable keyframe \(libvpx could not decode/);
    assert.equal(decodeError(decoder, new Uint8Array(2)).code, "corrupt");
    assert.equal(decoder.decode(frames[0])!.height, 480);
  } finally {
    decoder.close();
  }
  assert.equal(decodeError(decoder, frames[0]).code, "closed");
  decoder.close(); // idempotent
});
