import assert from "node:assert/strict";
import type { RtpPacket } from "werift";
import { OPUS_FRAME_SAMPLES, OPUS_RATE, OpusDecoder } from "../shared/media/opus_codec.ts";
import { rms } from "../shared/audio.ts";
import { Microphone, type MicrophoneOptions } from "./microphone.ts";

/** A 440 Hz tone of `frames` 20 ms frames at 48 kHz, amplitude 0.5. */
function tone(frames: number): Float32Array {
  return new Float32Array(frames * OPUS_FRAME_SAMPLES).map((_, i) =>
    0.5 * Math.sin((2 * Math.PI * 440 * i) / OPUS_RATE)
  );
}

/** Runs `test` with a microphone sending into `packets`; stops and closes it after. */
async function withMic(
  options: Omit<MicrophoneOptions, "send">,
  test: (mic: Microphone, packets: RtpPacket[]) => Promise<void>,
): Promise<void> {
  const packets: RtpPacket[] = [];
  const mic = new Microphone({ ...options, send: (packet) => packets.push(packet) });
  try {
    await test(mic, packets);
  } finally {
    mic.stop();
    mic.close();
  }
}

/** RTP sequence numbers one after another (mod 2^16): nothing lost, nothing reordered. */
function assertConsecutive(packets: RtpPacket[]): void {
  for (let i = 1; i < packets.length; i++) {
    const [before, after] = [packets[i - 1], packets[i]].map((p) => p.header.sequenceNumber);
    assert.equal(after, (before + 1) & 0xffff);
  }
}

Deno.test("speak sends one Opus packet per 20 ms frame, marker on the first, and decodes back to the speech", async () => {
  await withMic({ idle: "none" }, async (mic, packets) => {
    mic.start();
    const spoken = await mic.speak(tone(5), OPUS_RATE);
    assert.equal(spoken.frames, 5);
    assert.equal(packets.length, 5);
    assert.equal(mic.packetsSent, 5);
    assert.deepEqual(packets.map((p) => p.header.marker), [true, false, false, false, false]);
    assertConsecutive(packets);
    assert.ok(spoken.lastPacketAt >= spoken.firstPacketAt);
    const decoder = new OpusDecoder();
    const levels = packets.map((p) => rms(decoder.decode(p.payload)));
    decoder.close();
    assert.ok(levels[4] > 0.2, `the tone comes back (rms ${levels[4]})`);
  });
});

Deno.test("before start nothing is sent; speech waits for the transceiver", async () => {
  await withMic({ idle: "none" }, async (mic, packets) => {
    const spoken = mic.speak(tone(2), OPUS_RATE);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(packets.length, 0);
    mic.start();
    assert.equal((await spoken).frames, 2);
    assert.equal(packets.length, 2);
  });
});

Deno.test("loss 1 drops every packet and counts it", async () => {
  await withMic({ idle: "none", loss: 1 }, async (mic, packets) => {
    mic.start();
    await mic.speak(tone(3), OPUS_RATE);
    assert.equal(packets.length, 0);
    assert.equal(mic.packetsSent, 0);
    assert.equal(mic.packetsDropped, 3);
  });
});

Deno.test("holdPackets delivers the held packets at once, in order, none lost", async () => {
  await withMic({ idle: "none" }, async (mic, packets) => {
    mic.start();
    const held = mic.holdPackets(1000);
    const spoken = await mic.speak(tone(4), OPUS_RATE);
    assert.equal(spoken.frames, 4);
    assert.equal(packets.length, 0, "all four frames fall in the stall");
    await held;
    assert.equal(packets.length, 4);
    assertConsecutive(packets);
  });
});

Deno.test("stop resolves queued speech with the frames sent so far", async () => {
  const mic = new Microphone({ idle: "none", send: () => {} });
  const spoken = mic.speak(tone(50), OPUS_RATE);
  mic.stop();
  mic.close();
  assert.equal((await spoken).frames, 0);
});
