import assert from "node:assert/strict";
import { Vp8Packetizer } from "./vp8_packetizer.ts";
import { parseVp8Descriptor } from "./vp8_payload.ts";
import { encodeVp8, ivfFrames } from "./testing.ts";

Deno.test("packetize splits a real keyframe into equal packets under the payload limit", async () => {
  const [keyframe] = ivfFrames(
    await encodeVp8({ inputs: ["-f", "lavfi", "-i", "testsrc=size=640x480"], frames: 1 }),
  );
  const packetizer = new Vp8Packetizer({ initialSequence: 65534, initialPictureId: 0x7fff });
  const packets = packetizer.packetize(keyframe, 3000);
  assert.ok(packets.length >= 2, `a ${keyframe.length}-byte keyframe fits in one packet`);
  assert.deepEqual(
    packets.map((p) => p.sequenceNumber),
    packets.map((_, i) => (65534 + i) % 65536),
  );
  assert.deepEqual(packets.map((p) => p.marker), packets.map((_, i) => i === packets.length - 1));
  const sizes = packets.map((p) => p.payload.length);
  assert.ok(Math.max(...sizes) <= 1200);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `unequal packets: ${sizes}`);
  const descriptors = packets.map((p) => parseVp8Descriptor(p.payload));
  assert.deepEqual(descriptors.map((d) => d.partitionStart), packets.map((_, i) => i === 0));
  assert.ok(descriptors.every((d) => d.pictureId === 0x7fff && d.partitionIndex === 0));
  // The next frame carries the next picture id, wrapped at 15 bits.
  const next = packetizer.packetize(new Uint8Array([1, 2, 3]), 6000, { nonReference: true });
  const descriptor = parseVp8Descriptor(next[0].payload);
  assert.deepEqual([descriptor.pictureId, descriptor.nonReference], [0, true]);
  assert.deepEqual([next.length, next[0].marker, next[0].timestamp], [1, true, 6000]);
});

Deno.test("packetize refuses an empty frame and a payload limit too small for a descriptor", () => {
  assert.throws(() => new Vp8Packetizer().packetize(new Uint8Array(), 0), /empty VP8 frame/);
  assert.throws(() => new Vp8Packetizer({ maxPayloadBytes: 4 }), /maxPayloadBytes 4/);
});
