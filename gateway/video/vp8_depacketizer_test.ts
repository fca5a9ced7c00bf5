import assert from "node:assert/strict";
import { type KeyframeReason, Vp8Depacketizer, type Vp8Frame } from "./vp8_depacketizer.ts";
import { Vp8Packetizer } from "../../shared/video/vp8_packetizer.ts";
import type { RtpVideoPacket } from "../../shared/video/vp8_payload.ts";
import { encodeVp8, ivfFrames } from "./testing.ts";

/** 90 kHz ticks between frames at 5 fps. */
const TICKS_PER_FRAME = 18_000;

/** A real 640×480 VP8 stream: frame 0 a keyframe, then inter frames, keyframe again at 5. */
const FRAMES = ivfFrames(
  await encodeVp8({
    inputs: ["-f", "lavfi", "-i", "testsrc=size=640x480:rate=5"],
    frames: 8,
    keyframeInterval: 5,
  }),
);

function packetize(frames: Uint8Array[], maxPayloadBytes = 1200): RtpVideoPacket[][] {
  const packetizer = new Vp8Packetizer({ maxPayloadBytes, initialSequence: 65530 });
  return frames.map((frame, i) => packetizer.packetize(frame, i * TICKS_PER_FRAME));
}

function depacketize(
  packets: RtpVideoPacket[],
  options: { maxFrameBytes?: number } = {},
): { frames: Vp8Frame[]; reasons: KeyframeReason[]; depacketizer: Vp8Depacketizer } {
  const frames: Vp8Frame[] = [];
  const reasons: KeyframeReason[] = [];
  const depacketizer = new Vp8Depacketizer({
    onFrame: (frame) => frames.push(frame),
    onKeyframeNeeded: (reason) => reasons.push(reason),
    ...options,
  });
  for (const packet of packets) depacketizer.push(packet);
  return { frames, reasons, depacketizer };
}

Deno.test("in-order packets give back every frame byte for byte, with keyframe sizes", () => {
  const { frames, reasons, depacketizer } = depacketize(packetize(FRAMES).flat());
  assert.equal(frames.length, FRAMES.length);
  frames.forEach((frame, i) => assert.deepEqual(frame.data, FRAMES[i], `frame ${i}`));
  assert.deepEqual(frames.map((f) => f.keyframe), FRAMES.map((_, i) => i % 5 === 0));
  assert.deepEqual([frames[0].width, frames[0].height], [640, 480]);
  assert.deepEqual(frames.map((f) => f.timestamp), FRAMES.map((_, i) => i * TICKS_PER_FRAME));
  assert.deepEqual(reasons, []);
  assert.equal(depacketizer.awaitingKeyframe, false);
});

Deno.test("packets reordered within the window still give byte-identical frames", () => {
  const packets = packetize(FRAMES, 300).flat();
  // Swap neighbours (after the first packet, which sets where the stream starts) and move one
  // packet 5 places later.
  for (let i = 2; i + 1 < packets.length; i += 7) {
    [packets[i], packets[i + 1]] = [packets[i + 1], packets[i]];
  }
  packets.splice(12, 0, packets.splice(7, 1)[0]);
  const duplicate = packets[3];
  packets.splice(20, 0, duplicate);
  const { frames, reasons } = depacketize(packets);
  assert.equal(frames.length, FRAMES.length);
  frames.forEach((frame, i) => assert.deepEqual(frame.data, FRAMES[i], `frame ${i}`));
  assert.deepEqual(reasons, []);
});

Deno.test("a lost packet drops its frame and every frame until the next keyframe", () => {
  const perFrame = packetize(FRAMES, 300); // several packets per frame
  const lostFrame = 2;
  perFrame[lostFrame].splice(0, 1); // its first packet (sequence gap)
  const { frames, reasons, depacketizer } = depacketize(perFrame.flat());
  // Frames 0, 1 decode; 2 is lost; 3 and 4 reference it and are dropped; 5.. after the keyframe.
  assert.deepEqual(frames.map((f) => f.timestamp / TICKS_PER_FRAME), [0, 1, 5, 6, 7]);
  assert.equal(reasons[0], "loss");
  assert.ok(reasons.slice(1).every((r) => r === "no_keyframe"), `${reasons}`);
  assert.equal(depacketizer.stats.lostPackets, 1);
  assert.equal(depacketizer.stats.droppedFrames, 3); // the cut-off 2, then 3 and 4
});

Deno.test("a lost last packet (marker) drops the frame too", () => {
  const perFrame = packetize(FRAMES);
  perFrame[1].pop();
  const { frames, reasons } = depacketize(perFrame.flat());
  assert.deepEqual(frames.map((f) => f.timestamp / TICKS_PER_FRAME), [0, 5, 6, 7]);
  assert.equal(reasons[0], "loss");
});

Deno.test("a stream joined mid-frame or without a keyframe yields nothing until a keyframe", () => {
  const packets = packetize(FRAMES).flat();
  const startOfFrame1 = packetize(FRAMES.slice(0, 1)).flat().length;
  const { frames, reasons } = depacketize(packets.slice(startOfFrame1 + 1));
  assert.deepEqual(frames.map((f) => f.timestamp / TICKS_PER_FRAME), [5, 6, 7]);
  assert.ok(reasons.length > 0 && reasons.every((r) => r === "no_keyframe"));
});

Deno.test("a frame over maxFrameBytes is dropped with a clear reason, memory stays bounded", () => {
  const { frames, reasons, depacketizer } = depacketize(packetize(FRAMES).flat(), {
    maxFrameBytes: FRAMES[0].length - 1,
  });
  assert.equal(frames[0].timestamp, 5 * TICKS_PER_FRAME); // the first keyframe was too large
  assert.equal(reasons[0], "too_large");
  assert.equal(depacketizer.stats.oversizeFrames >= 1, true);
});

Deno.test("a malformed descriptor drops its frame; the next keyframe recovers", () => {
  const perFrame = packetize(FRAMES);
  perFrame[1][0] = { ...perFrame[1][0], payload: new Uint8Array([0x90, 0x80]) };
  const details: string[] = [];
  const frames: Vp8Frame[] = [];
  const depacketizer = new Vp8Depacketizer({
    onFrame: (f) => frames.push(f),
    onKeyframeNeeded: (reason, detail) => details.push(`${reason}: ${detail}`),
  });
  for (const packet of perFrame.flat()) depacketizer.push(packet);
  assert.deepEqual(frames.map((f) => f.timestamp / TICKS_PER_FRAME), [0, 5, 6, 7]);
  assert.match(details[0], /^malformed: RTP packet \d+: VP8 payload descriptor cut off/);
  assert.equal(depacketizer.stats.malformedPackets, 1);
});

Deno.test("a sender that omits the marker bit still delivers contiguous frames", () => {
  const packets = packetize(FRAMES).flat().map((p) => ({ ...p, marker: false }));
  const { frames } = depacketize(packets);
  // Each frame completes when the next one starts; the last has no successor yet.
  assert.equal(frames.length, FRAMES.length - 1);
  frames.forEach((frame, i) => assert.deepEqual(frame.data, FRAMES[i]));
});
