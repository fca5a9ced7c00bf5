import assert from "node:assert/strict";
import { RTCPeerConnection } from "werift";
import { rms } from "../audio.ts";
import { OPUS_FRAME_SAMPLES, OpusCodecError, OpusDecoder, OpusEncoder } from "./opus_codec.ts";
import { NO_STUN_SERVER, OpusRtpSender, OpusRtpWriter, peerConfig } from "./webrtc.ts";

Deno.test("with host addresses, ICE gathers on exactly those (never the LAN address)", async () => {
  const pc = new RTCPeerConnection(peerConfig({ iceServers: [], hostAddresses: ["127.0.0.1"] }));
  const candidates: string[] = [];
  pc.onIceCandidate.subscribe((c) => c && candidates.push(c.candidate));
  pc.addTransceiver("audio", { direction: "sendrecv" });
  const started = performance.now();
  await pc.setLocalDescription(await pc.createOffer());
  const gatherMs = performance.now() - started;
  const sdp = pc.localDescription!.sdp;
  await pc.close();
  assert.ok(candidates.length > 0);
  for (const c of candidates) assert.match(c, / 127\.0\.0\.1 \d+ typ host/, c);
  assert.match(sdp, /a=rtpmap:111 opus\/48000\/2/);
  assert.match(sdp, /a=sendrecv/);
  assert.ok(gatherMs < 2000, `gathering took ${gatherMs.toFixed(0)} ms (no public STUN wait)`);
});

Deno.test("the RTP writer numbers packets, steps 960 per frame and marks talkspurts", () => {
  let now = 0;
  const writer = new OpusRtpWriter({ now: () => now });
  const a = writer.packet(new Uint8Array([1]), true);
  now += 20;
  const b = writer.packet(new Uint8Array([2]), false);
  now += 1000; // a silent second: nothing was sent
  const c = writer.packet(new Uint8Array([3]), true);
  assert.equal(a.header.marker, true);
  assert.equal(b.header.marker, false);
  assert.equal(c.header.marker, true);
  assert.equal((b.header.sequenceNumber - a.header.sequenceNumber + 65536) % 65536, 1);
  assert.equal((c.header.sequenceNumber - b.header.sequenceNumber + 65536) % 65536, 1);
  assert.equal((b.header.timestamp - a.header.timestamp + 2 ** 32) % 2 ** 32, OPUS_FRAME_SAMPLES);
  assert.equal(
    (c.header.timestamp - b.header.timestamp + 2 ** 32) % 2 ** 32,
    48000,
    "the gap is in the timestamps",
  );
  assert.deepEqual([...c.payload], [3]);
});

Deno.test("the RTP sender encodes frames and sends them, and encoded packets, as one stream", () => {
  const packets: { sequence: number; marker: boolean; payload: Uint8Array }[] = [];
  const sender = new OpusRtpSender((p) =>
    packets.push({ sequence: p.header.sequenceNumber, marker: p.header.marker, payload: p.payload })
  );
  const tone = new Float32Array(OPUS_FRAME_SAMPLES).map((_, i) => 0.3 * Math.sin(i / 5));
  const encoder = new OpusEncoder();
  const ready = encoder.encode(tone);
  encoder.close();
  sender.sendFrame(tone, true);
  sender.sendFrame(tone, false);
  sender.sendPayload(ready, false);
  sender.close();
  assert.deepEqual(packets.map((p) => p.marker), [true, false, false]);
  assert.deepEqual(
    packets.map((p) => (p.sequence - packets[0].sequence + 0x10000) % 0x10000),
    [0, 1, 2],
  );
  assert.deepEqual([...packets[2].payload], [...ready], "an encoded packet goes as it is");
  const decoder = new OpusDecoder();
  const decoded = decoder.decode(packets[1].payload);
  assert.equal(decoded.length, OPUS_FRAME_SAMPLES, "a real Opus frame");
  decoder.close();
});

Deno.test("the RTP sender takes 20 ms frames at any Opus rate as one 48 kHz stream", () => {
  const packets: Uint8Array[] = [];
  const timestamps: number[] = [];
  const sender = new OpusRtpSender((p) => {
    packets.push(p.payload);
    timestamps.push(p.header.timestamp);
  });
  const tone = (rate: number) =>
    new Float32Array((rate * 20) / 1000).map((_, i) =>
      0.3 * Math.sin((2 * Math.PI * 300 * i) / rate)
    );
  for (let i = 0; i < 5; i++) sender.sendFrame(tone(24000), i === 0);
  for (let i = 0; i < 5; i++) sender.sendFrame(tone(16000), false);
  assert.throws(
    () => sender.sendFrame(new Float32Array(441), false),
    (e: unknown) => e instanceof OpusCodecError && e.value === 441 && /441 samples/.test(e.message),
  );
  sender.close();
  assert.throws(() => sender.sendFrame(tone(48000), false), /closed/);
  const steps = timestamps.slice(1).map((t, i) => (t - timestamps[i] + 2 ** 32) % 2 ** 32);
  assert.deepEqual(steps, Array(9).fill(OPUS_FRAME_SAMPLES), "the RTP clock stays 48 kHz");
  const decoder = new OpusDecoder();
  const decoded = packets.map((p) => decoder.decode(p).slice());
  decoder.close();
  assert.ok(decoded.every((frame) => frame.length === OPUS_FRAME_SAMPLES));
  assert.ok(rms(decoded[4]) > 0.1 && rms(decoded[9]) > 0.1, "both rates carry the tone");
});

Deno.test("without a configured STUN server, werift's public default is replaced by loopback", () => {
  assert.deepEqual(peerConfig({ iceServers: [], hostAddresses: [] }).iceServers, [
    { urls: NO_STUN_SERVER },
  ]);
  assert.match(NO_STUN_SERVER, /^stun:127\./);
  const own = [{ urls: ["stun:192.168.1.1:3478"] }];
  assert.deepEqual(peerConfig({ iceServers: own, hostAddresses: [] }).iceServers, own);
  const turnOnly = [{ urls: "turn:192.168.1.1", username: "u", credential: "p" }];
  assert.deepEqual(peerConfig({ iceServers: turnOnly, hostAddresses: [] }).iceServers, [
    ...turnOnly,
    { urls: NO_STUN_SERVER },
  ]);
});
