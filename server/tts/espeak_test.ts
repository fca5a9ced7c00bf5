import assert from "node:assert/strict";
import { pcmToFloat32, rms } from "../../shared/audio.ts";
import { EspeakTts } from "./espeak.ts";
import { TtsError } from "./types.ts";

/** Share of 20 ms blocks above a speech level: speech has pauses, silence has none above it. */
function voicedShare(samples: Float32Array, rate: number): number {
  const block = rate / 50;
  let voiced = 0, blocks = 0;
  for (let at = 0; at + block <= samples.length; at += block, blocks++) {
    if (rms(samples.subarray(at, at + block)) > 0.02) voiced++;
  }
  return voiced / blocks;
}

Deno.test("EspeakTts speaks a sentence as non-silent audio of plausible duration", async () => {
  const tts = new EspeakTts();
  const text = "It is five past three in the afternoon.";
  const speech = await tts.synthesize(text, { rate: 16000 });
  assert.equal(speech.rate, 16000);
  const samples = pcmToFloat32(speech.pcm);
  const seconds = samples.length / 16000;
  // 8 words at ~165 words per minute ≈ 2.9 s; allow for espeak's pauses and trailing silence.
  assert.ok(seconds > 1.5 && seconds < 5, `duration ${seconds} s`);
  const share = voicedShare(samples, 16000);
  assert.ok(share > 0.4, `voiced share ${share}`);
});

Deno.test("EspeakTts resamples to the rate asked for", async () => {
  const tts = new EspeakTts();
  const [at16, at48] = await Promise.all([
    tts.synthesize("Hello.", { rate: 16000 }),
    tts.synthesize("Hello.", { rate: 48000 }),
  ]);
  const ratio = at48.pcm.length / at16.pcm.length;
  assert.ok(Math.abs(ratio - 3) < 0.01, `48k/16k length ratio ${ratio}`);
});

Deno.test("EspeakTts reads text from stdin, so a leading dash is spoken, not parsed", async () => {
  const speech = await new EspeakTts().synthesize("-v xx hello", { rate: 16000 });
  assert.ok(speech.pcm.length > 16000, `only ${speech.pcm.length} bytes`);
});

Deno.test("EspeakTts with a prespawned process speaks the same and closes cleanly", async () => {
  const cold = await new EspeakTts().synthesize("Hello there.", { rate: 16000 });
  const tts = new EspeakTts({ prespawn: true });
  try {
    for (let i = 0; i < 3; i++) {
      const warm = await tts.synthesize("Hello there.", { rate: 16000 });
      assert.deepEqual(warm.pcm, cold.pcm);
    }
  } finally {
    await tts.close();
  }
});

Deno.test("EspeakTts names the engine when the executable is missing", async () => {
  const tts = new EspeakTts({ command: "/nonexistent/espeak-ng" });
  await assert.rejects(tts.synthesize("hi", { rate: 16000 }), (error: TtsError) => {
    assert.ok(error instanceof TtsError);
    assert.match(error.message, /^espeak-ng:en-us: cannot start/);
    return true;
  });
});

Deno.test("EspeakTts stops when the turn is cancelled", async () => {
  const controller = new AbortController();
  controller.abort(new Error("cancelled"));
  await assert.rejects(
    new EspeakTts().synthesize("a long sentence", { rate: 16000, signal: controller.signal }),
  );
});
