import assert from "node:assert/strict";
import { RTCPeerConnection } from "werift";
import { OPUS_FRAME_SAMPLES, OpusDecoder, OpusEncoder } from "./opus_codec.ts";
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
