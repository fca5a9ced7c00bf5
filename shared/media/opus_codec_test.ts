import assert from "node:assert/strict";
import { correlation } from "../audio.ts";
import { speak } from "../../tests/helpers/speech.ts";
import { resample, rms } from "../audio.ts";
import {
  MAX_PACKET_BYTES,
  OPUS_FRAME_SAMPLES,
  OpusCodecError,
  OpusDecoder,
  OpusEncoder,
  opusVersion,
} from "./opus_codec.ts";

/** libopus delays its output a few ms (look-ahead); search this far for the alignment. */
const MAX_DELAY = 960;

function bestCorrelation(input: Float32Array, output: Float32Array): number {
  let best = -1;
  for (let lag = 0; lag < MAX_DELAY; lag++) {
    const n = output.length - lag;
    best = Math.max(best, correlation(input.subarray(0, n), output.subarray(lag)));
  }
  return best;
}

async function speech48k(): Promise<Float32Array> {
  const { samples, rate } = await speak("Opus keeps speech clear at thirty two kilobits.");
  return resample(samples, rate, 48000);
}

Deno.test("encode then decode keeps speech (correlation > 0.9 after the codec delay)", async () => {
  const input = await speech48k();
  const encoder = new OpusEncoder();
  const decoder = new OpusDecoder();
  const frames = Math.floor(input.length / OPUS_FRAME_SAMPLES);
  const output = new Float32Array(frames * OPUS_FRAME_SAMPLES);
  let bytes = 0;
  for (let i = 0; i < frames; i++) {
    const packet = encoder.encode(
      input.subarray(i * OPUS_FRAME_SAMPLES, (i + 1) * OPUS_FRAME_SAMPLES),
    );
    bytes += packet.length;
    output.set(decoder.decode(packet), i * OPUS_FRAME_SAMPLES);
  }
  const c = bestCorrelation(input, output);
  assert.ok(c > 0.9, `correlation ${c}`);
  const kbps = (bytes * 8) / (frames * 0.02) / 1000;
  assert.ok(kbps > 20 && kbps < 40, `${kbps.toFixed(1)} kbps, about 32 expected`);
  encoder.close();
  decoder.close();
});

Deno.test("many devices' codecs at once each keep their own audio", () => {
  // 150 pairs: more than the 96 codecs per WASM heap of the opusscript build this replaced.
  const pairs = 150;
  const codecs = Array.from({ length: pairs }, () => ({
    encoder: new OpusEncoder(),
    decoder: new OpusDecoder(),
  }));
  const frames = 12;
  // Every pair gets its own tone, interleaved frame by frame, so state mixed up between codecs
  // (or a buffer written over another's) would show in the correlation.
  const tone = (pair: number) =>
    new Float32Array(frames * OPUS_FRAME_SAMPLES).map((_, i) =>
      0.3 * Math.sin((2 * Math.PI * (200 + 10 * pair) * i) / 48000)
    );
  const inputs = codecs.map((_, pair) => tone(pair));
  const outputs = codecs.map(() => new Float32Array(frames * OPUS_FRAME_SAMPLES));
  try {
    for (let f = 0; f < frames; f++) {
      codecs.forEach(({ encoder, decoder }, pair) => {
        const at = f * OPUS_FRAME_SAMPLES;
        const packet = encoder.encode(inputs[pair].subarray(at, at + OPUS_FRAME_SAMPLES));
        outputs[pair].set(decoder.decode(packet), at);
      });
    }
    const weak = outputs
      .map((output, pair) => ({ pair, c: bestCorrelation(inputs[pair], output) }))
      .filter(({ c }) => !(c > 0.9));
    assert.deepEqual(weak, [], `pairs whose tone did not survive, of ${pairs}`);
    assert.equal(codecs.at(-1)!.decoder.conceal().length, OPUS_FRAME_SAMPLES);
  } finally {
    for (const { encoder, decoder } of codecs) {
      encoder.close();
      decoder.close();
    }
  }
});

Deno.test("a packet longer than Opus allows is refused naming its length", () => {
  const decoder = new OpusDecoder();
  assert.throws(
    () => decoder.decode(new Uint8Array(MAX_PACKET_BYTES + 1)),
    (e: unknown) =>
      e instanceof OpusCodecError && e.field === "packet" && e.value === MAX_PACKET_BYTES + 1,
  );
  decoder.close();
});

Deno.test("a lost packet is concealed with one 20 ms frame", () => {
  const encoder = new OpusEncoder();
  const decoder = new OpusDecoder();
  const frame = new Float32Array(OPUS_FRAME_SAMPLES).map((_, i) => 0.3 * Math.sin(i / 10));
  decoder.decode(encoder.encode(frame));
  const concealed = decoder.conceal();
  assert.equal(concealed.length, OPUS_FRAME_SAMPLES);
  assert.equal(
    decoder.decode(new Uint8Array(0)).length,
    OPUS_FRAME_SAMPLES,
    "empty payload = loss",
  );
  assert.equal(
    decoder.decode(encoder.encode(frame)).length,
    OPUS_FRAME_SAMPLES,
    "decoding resumes",
  );
  encoder.close();
  decoder.close();
});

Deno.test("consecutive lost frames are concealed from the speech before them, fading out", async () => {
  const input = await speech48k();
  const encoder = new OpusEncoder();
  const decoder = new OpusDecoder();
  const frame = (i: number) => input.subarray(i * OPUS_FRAME_SAMPLES, (i + 1) * OPUS_FRAME_SAMPLES);
  // Find a loud stretch so the concealment has voice to continue.
  let start = 0;
  while (rms(frame(start + 20)) < 0.05) start++;
  for (let i = start; i < start + 20; i++) decoder.decode(encoder.encode(frame(i)));
  const lost = Array.from({ length: 25 }, () => rms(decoder.conceal()));
  const tail = lost.slice(-5).reduce((sum, v) => sum + v, 0) / 5;
  assert.ok(lost[0] > 0.01, `the first concealed frame continues the voice (rms ${lost[0]})`);
  assert.ok(tail < lost[0] / 2, `concealment fades: rms ${lost.map((v) => v.toFixed(3))}`);
  assert.equal(decoder.decode(encoder.encode(frame(start + 30))).length, OPUS_FRAME_SAMPLES);
  encoder.close();
  decoder.close();
});

Deno.test("a decoder at 16 kHz returns 20 ms frames of 320 samples that keep the speech", async () => {
  const input = await speech48k();
  const encoder = new OpusEncoder();
  const decoder = new OpusDecoder({ rate: 16000 });
  const frames = Math.floor(input.length / OPUS_FRAME_SAMPLES);
  const output = new Float32Array(frames * 320);
  for (let i = 0; i < frames; i++) {
    const samples = decoder.decode(
      encoder.encode(input.subarray(i * OPUS_FRAME_SAMPLES, (i + 1) * OPUS_FRAME_SAMPLES)),
    );
    assert.equal(samples.length, 320);
    output.set(samples, i * 320);
  }
  assert.equal(decoder.conceal().length, 320);
  const c = bestCorrelation(resample(input, 48000, 16000), output);
  assert.ok(c > 0.9, `correlation ${c}`);
  encoder.close();
  decoder.close();
});

Deno.test("an encoder at 24 kHz takes 480-sample frames", () => {
  const encoder = new OpusEncoder({ rate: 24000 });
  const decoder = new OpusDecoder();
  assert.equal(encoder.frameSamples, 480);
  const tone = new Float32Array(480).map((_, i) => 0.3 * Math.sin((2 * Math.PI * 300 * i) / 24000));
  assert.equal(decoder.decode(encoder.encode(tone)).length, OPUS_FRAME_SAMPLES);
  encoder.close();
  decoder.close();
});

Deno.test("a rate libopus does not take is refused naming it", () => {
  assert.throws(
    () => new OpusDecoder({ rate: 44100 as 48000 }),
    (e: unknown) => e instanceof OpusCodecError && e.field === "rate" && /44100 Hz/.test(e.message),
  );
});

Deno.test("a closed codec refuses work with an error instead of touching freed memory", () => {
  const encoder = new OpusEncoder();
  const decoder = new OpusDecoder();
  const packet = encoder.encode(new Float32Array(OPUS_FRAME_SAMPLES));
  encoder.close();
  decoder.close();
  decoder.close(); // twice is harmless
  assert.throws(() => encoder.encode(new Float32Array(OPUS_FRAME_SAMPLES)), /encoder is closed/);
  assert.throws(() => decoder.decode(packet), /decoder is closed/);
  assert.throws(() => decoder.conceal(), /decoder is closed/);
});

Deno.test("the system libopus is loaded", () => {
  assert.match(opusVersion(), /^libopus \d+\.\d+/);
});

Deno.test("a frame of the wrong size is refused naming its length", () => {
  const encoder = new OpusEncoder();
  assert.throws(
    () => encoder.encode(new Float32Array(100)),
    (e: unknown) =>
      e instanceof OpusCodecError && e.field === "frame" && e.value === 100 &&
      /100 samples, expected 960 /.test(e.message),
  );
  encoder.close();
});

Deno.test("garbage payloads never crash the decoder", () => {
  const decoder = new OpusDecoder();
  for (let n = 1; n < 200; n += 7) {
    const garbage = crypto.getRandomValues(new Uint8Array(n));
    try {
      const out = decoder.decode(garbage);
      assert.ok(out.length <= 5760);
    } catch (error) {
      assert.ok(error instanceof OpusCodecError);
    }
  }
  decoder.close();
});
