import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { RtpHeader, RtpPacket } from "werift";
import { rtpVideoPacket, vp8Codec } from "./webrtc_video.ts";

Deno.test("the offered codec is VP8 at 90 kHz with NACK, PLI and REMB feedback", () => {
  const codec = vp8Codec();
  assert.equal(codec.mimeType, "video/VP8");
  assert.equal(codec.clockRate, 90_000);
  const feedback = codec.rtcpFeedback.map((f) =>
    `${f.type}${f.parameter ? ` ${f.parameter}` : ""}`
  );
  assert.ok(feedback.includes("nack pli"), feedback.join(", "));
  assert.ok(feedback.includes("nack"), feedback.join(", "));
});

Deno.test("a werift RTP packet maps to the depacketizer's fields without copying", () => {
  const payload = Buffer.from([0x90, 0x80, 0x12, 0x9d]);
  const rtp = new RtpPacket(
    new RtpHeader({
      sequenceNumber: 65535,
      timestamp: 4_000_000_000,
      marker: true,
      payloadType: 96,
    }),
    payload,
  );
  const packet = rtpVideoPacket(rtp);
  assert.deepEqual(
    [packet.sequenceNumber, packet.timestamp, packet.marker],
    [65535, 4_000_000_000, true],
  );
  assert.equal(packet.payload, payload);
});
