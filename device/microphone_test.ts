import assert from "node:assert/strict";
import type { RtpPacket } from "werift";
import { OPUS_FRAME_SAMPLES, OPUS_RATE, OpusDecoder } from "../shared/media/opus_codec.ts";
import { rms } from "../shared/audio.ts";
import { Microphone } from "./microphone.ts";

/** A 440 Hz tone of `frames` 20 ms frames at 48 kHz, amplitude 0.5. */
function tone(frames: number): Float32Array {
  return new Float32Array(frames * OPUS_FRAME_SAMPLES).map((_, i) =>
    0.5 * Math.sin((2 * Math.PI * 440 * i) / OPUS_RATE)
  );
}

Deno.test("speak sends one Opus packet per 20 ms frame, marker on the first, and decodes back to the speech", async () => {
  const packets: RtpPacket[] = [];
  const mic = new Microphone({ idle: "none", send: (packet) => packets.push(packet) });
  try {
    mic.start();
    const spoken = await mic.speak(tone(5), OPUS_RATE);
    assert.equal(spoken.frames, 5);
    assert.equal(packets.length, 5);
    assert.equal(mic.packetsSent, 5);
    assert.deepEqual(packets.map((p) => p.header.marker), [true, false, false, false, false]);
    const sequences = packets.map((p) => p.header.sequenceNumber);
    for (let i = 1; i < sequences.length; i++) {
      assert.equal(sequences[i], (sequences[i - 1] + 1) & 0xffff);
    }
    assert.ok(spoken.lastPacketAt >= spoken.firstPacketAt);
    const decoder = new OpusDecoder();
    const levels = packets.map((p) => rms(decoder.decode(p.payload)));
    decoder.close();
    assert.ok(levels[4] > 0.2, `the tone comes back (rms ${levels[4]})`);
  } finally {
    mic.stop();
    mic.close();
  }
});

Deno.test("before start nothing is sent; speech waits for the transceiver", async () => {
  const packets: RtpPacket[] = [];
  const mic = new Microphone({ idle: "none", send: (packet) => packets.push(packet) });
  try {
    const spoken = mic.speak(tone(2), OPUS_RATE);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(packets.length, 0);
    mic.start();
    assert.equal((await spoken).frames, 2);
    assert.equal(packets.length, 2);
  } finally {
    mic.stop();
    mic.close();
  }
});

Deno.test("loss 1 drops every packet and counts it", async () => {
  const packets: RtpPacket[] = [];
  const mic = new Microphone({ idle: "none", loss: 1, send: (packet) => packets.push(packet) });
  try {
    mic.start();
    await mic.speak(tone(3), OPUS_RATE);
    assert.equal(packets.length, 0);
    assert.equal(mic.packetsSent, 0);
    assert.equal(mic.packetsDropped, 3);
  } finally {
    mic.stop();
    mic.close();
  }
});

Deno.test("holdPackets delivers the held packets at once, in order, none lost", async () => {
  const packets: RtpPacket[] = [];
  const mic = new Microphone({ idle: "none", send: (packet) => packets.push(packet) });
  try {
    mic.start();
    const held = mic.holdPackets(1000);
    const spoken = await mic.speak(tone(4), OPUS_RATE);
    assert.equal(spoken.frames, 4);
    assert.equal(packets.length, 0, "all four frames fall in the stall");
    await held;
    assert.equal(packets.length, 4);
    const sequences = packets.map((p) => p.header.sequenceNumber);
    for (let i = 1; i < sequences.length; i++) {
      assert.equal(sequences[i], (sequences[i - 1] + 1) & 0xffff);
    }
  } finally {
    mic.stop();
    mic.close();
  }
});

Deno.test("stop resolves queued speech with the frames sent so far", async () => {
  const mic = new Microphone({ idle: "none", send: () => {} });
  const spoken = mic.speak(tone(50), OPUS_RATE);
  mic.stop();
  mic.close();
  assert.equal((await spoken).frames, 0);
});
