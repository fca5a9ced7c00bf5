import assert from "node:assert/strict";
import { IvfError, readIvf, writeIvf } from "./ivf.ts";
import { assertThrowsWith, encodeVp8 } from "./testing.ts";

const TESTSRC = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=5"];

Deno.test("readIvf parses ffmpeg's IVF: header, frame count and timestamps", async () => {
  const ivf = readIvf(await encodeVp8({ inputs: TESTSRC, frames: 6, fps: 5 }));
  assert.deepEqual(ivf.header.fourcc, "VP80");
  assert.deepEqual([ivf.header.width, ivf.header.height], [320, 240]);
  assert.deepEqual(ivf.frames.length, 6);
  assert.deepEqual(ivf.frames.map((f) => f.timestamp), [0, 1, 2, 3, 4, 5]);
  // Frame 0 is a keyframe: its VP8 tag's low bit is 0 and the start code follows.
  assert.deepEqual(ivf.frames[0].data[0] & 1, 0);
  assert.deepEqual([...ivf.frames[0].data.subarray(3, 6)], [0x9d, 0x01, 0x2a]);
});

Deno.test("writeIvf round-trips readIvf byte for byte", async () => {
  const bytes = await encodeVp8({ inputs: TESTSRC, frames: 3 });
  const ivf = readIvf(bytes);
  assert.deepEqual(writeIvf(ivf.header, ivf.frames), bytes);
});

Deno.test("readIvf names what is wrong with a malformed file", async () => {
  const bytes = await encodeVp8({ inputs: TESTSRC, frames: 2 });
  assertThrowsWith(
    () => readIvf(bytes.subarray(0, 10)),
    IvfError,
    "shorter than its 32-byte header",
  );
  const badSignature = bytes.slice();
  badSignature[0] = 0x58;
  assertThrowsWith(() => readIvf(badSignature), IvfError, 'IVF signature is "XKIF"');
  assertThrowsWith(
    () => readIvf(bytes.subarray(0, bytes.length - 1)),
    IvfError,
    "runs past the end",
  );
  assertThrowsWith(
    () => readIvf(bytes.subarray(0, 32 + 5)),
    IvfError,
    "header at offset 32 is cut off",
  );
  const huge = bytes.slice();
  new DataView(huge.buffer).setUint32(32, 0xffffffff, true);
  assertThrowsWith(() => readIvf(huge), IvfError, "size is 4294967295 bytes, at most");
});
