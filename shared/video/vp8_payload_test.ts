import assert from "node:assert/strict";
import {
  parseVp8Descriptor,
  parseVp8FrameHeader,
  Vp8PayloadError,
  writeVp8Descriptor,
} from "./vp8_payload.ts";
import { assertThrowsWith, encodeVp8, ivfFrames } from "./testing.ts";

Deno.test("parseVp8Descriptor reads every RFC 7741 field", () => {
  // X N S PID=0 | I L T K | M + id 0x1234 | TL0PICIDX 7 | TID 2 Y KEYIDX 5 | VP8 byte
  const payload = new Uint8Array([0xb0, 0xf0, 0x92, 0x34, 0x07, 0xa5, 0xaa]);
  assert.deepEqual(parseVp8Descriptor(payload), {
    nonReference: true,
    partitionStart: true,
    partitionIndex: 0,
    pictureId: 0x1234,
    tl0PicIdx: 7,
    temporalLayer: 2,
    layerSync: true,
    keyIndex: 5,
    length: 6,
  });
  // Minimal: one byte, a 7-bit picture id.
  assert.deepEqual(parseVp8Descriptor(new Uint8Array([0x03, 0xaa])).partitionIndex, 3);
  assert.deepEqual(parseVp8Descriptor(new Uint8Array([0x80, 0x80, 0x05, 0xaa])).pictureId, 5);
});

Deno.test("parseVp8Descriptor rejects cut-off descriptors and empty payloads", () => {
  assertThrowsWith(() => parseVp8Descriptor(new Uint8Array()), Vp8PayloadError, "empty");
  assertThrowsWith(
    () => parseVp8Descriptor(new Uint8Array([0x90, 0x80, 0x92])),
    Vp8PayloadError,
    "cut off at its second picture id byte",
  );
  assertThrowsWith(
    () => parseVp8Descriptor(new Uint8Array([0x10])),
    Vp8PayloadError,
    "no VP8 data after it",
  );
});

Deno.test("writeVp8Descriptor writes what parseVp8Descriptor reads", () => {
  const out = new Uint8Array(5);
  const length = writeVp8Descriptor(out, { partitionStart: true, pictureId: 0x7ffe });
  out[length] = 0xaa;
  const parsed = parseVp8Descriptor(out.subarray(0, length + 1));
  assert.deepEqual([parsed.partitionStart, parsed.pictureId, parsed.length], [true, 0x7ffe, 4]);
});

Deno.test("parseVp8FrameHeader reads a real keyframe's size and an inter frame's flag", async () => {
  const frames = ivfFrames(
    await encodeVp8({ inputs: ["-f", "lavfi", "-i", "testsrc=size=352x288"], frames: 2 }),
  );
  const key = parseVp8FrameHeader(frames[0]);
  assert.deepEqual([key.keyframe, key.width, key.height, key.showFrame], [true, 352, 288, true]);
  assert.deepEqual(parseVp8FrameHeader(frames[1]).keyframe, false);
  const badStart = frames[0].slice();
  badStart[3] = 0;
  assertThrowsWith(() => parseVp8FrameHeader(badStart), Vp8PayloadError, "start code is 00 01 2a");
  assertThrowsWith(() => parseVp8FrameHeader(frames[0].subarray(0, 8)), Vp8PayloadError);
  assertThrowsWith(() => parseVp8FrameHeader(new Uint8Array(2)), Vp8PayloadError, "3-byte tag");
});
