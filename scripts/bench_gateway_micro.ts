/**
 * The gateway benchmark's in-process timings: Opus encode/decode per frame and Silero VAD per
 * window, on the gateway's own codec and VAD modules (what `deno task bench:gateway` reports as
 * `micro`). Imports gateway modules on purpose: it measures them.
 */
import { OPUS_FRAME_SAMPLES, OpusDecoder, OpusEncoder } from "../shared/media/opus_codec.ts";
import { SILERO_CONTEXT, SILERO_WINDOW, SileroSession } from "../gateway/mod.ts";
import { percentile, round } from "./bench_stats.ts";
import { sileroModelPath } from "./lib/mod.ts";

/** Opus encode, decode and concealment time per 20 ms frame of `speech48k`, in ms. */
export function opusTimings(speech16k: Float32Array, speech48k: Float32Array) {
  const encoder = new OpusEncoder();
  const decoder = new OpusDecoder();
  const frames = Math.floor(speech48k.length / OPUS_FRAME_SAMPLES);
  const packets: Uint8Array[] = [];
  const rounds = 5;
  for (let i = 0; i < frames; i++) {
    decoder.decode(
      encoder.encode(speech48k.subarray(i * OPUS_FRAME_SAMPLES, (i + 1) * OPUS_FRAME_SAMPLES)),
    );
  } // warm-up: the WASM tiers up on first use
  let t = performance.now();
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < frames; i++) {
      const p = encoder.encode(
        speech48k.subarray(i * OPUS_FRAME_SAMPLES, (i + 1) * OPUS_FRAME_SAMPLES),
      );
      if (r === 0) packets.push(p);
    }
  }
  const encodeMs = (performance.now() - t) / (rounds * frames);
  t = performance.now();
  for (let r = 0; r < rounds; r++) for (const p of packets) decoder.decode(p);
  const decodeMs = (performance.now() - t) / (rounds * packets.length);
  t = performance.now();
  for (let r = 0; r < rounds * 10; r++) decoder.conceal();
  const concealMs = (performance.now() - t) / (rounds * 10);
  encoder.close();
  decoder.close();
  return { speech16k: speech16k.length, encodeMs, decodeMs, concealMs };
}

/** Silero VAD time per window over `speech16k` (p50, p99, mean ms); null without the model. */
export async function sileroTimings(speech16k: Float32Array) {
  const path = sileroModelPath();
  if (!path) return null;
  const session = await SileroSession.load(path);
  const state = new Float32Array(256);
  const input = new Float32Array(SILERO_CONTEXT + SILERO_WINDOW);
  const times: number[] = [];
  for (let round = 0; round < 5; round++) {
    for (let at = 0; at + SILERO_WINDOW <= speech16k.length; at += SILERO_WINDOW) {
      input.copyWithin(0, SILERO_WINDOW, SILERO_WINDOW + SILERO_CONTEXT);
      input.set(speech16k.subarray(at, at + SILERO_WINDOW), SILERO_CONTEXT);
      const t = performance.now();
      await session.run(input.slice(), state);
      times.push(performance.now() - t);
    }
  }
  await session.close();
  return {
    windows: times.length,
    p50_ms: round(percentile(times, 50), 3),
    p99_ms: round(percentile(times, 99), 3),
    mean_ms: round(times.reduce((a, b) => a + b, 0) / times.length, 3),
  };
}
