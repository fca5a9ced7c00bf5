import assert from "node:assert/strict";
import { join } from "node:path";
import { loadWhisperWorker } from "./worker_client.ts";
import { WhisperModelError } from "./model_error.ts";
import { ensureWhisperFixture, FIXTURE_TRANSCRIPT } from "../../scripts/lib/whisper_fixture.ts";
import { ensureWhisperTinyRandom } from "../../scripts/lib/whisper_random.ts";
import { SAMPLE_RATE } from "./log_mel.ts";

const MODELS_DIR = new URL("../../models", import.meta.url).pathname;
const fixture = await ensureWhisperFixture(MODELS_DIR);

/**
 * A voiced, syllable-rate modulated tone: audible input, which the fixture hears as its
 * transcript and which keeps the random tiny model's encoder busy for a realistic run.
 */
function voicedTone(seconds: number): Float32Array {
  const out = new Float32Array(seconds * SAMPLE_RATE);
  for (let i = 0; i < out.length; i++) {
    const t = i / SAMPLE_RATE;
    out[i] = 0.3 * Math.sin(2 * Math.PI * 4 * t) ** 2 * Math.sin(2 * Math.PI * 140 * t);
  }
  return out;
}

Deno.test("worker: the fixture transcribes as in-process, and the samples' buffer moves to the worker", async () => {
  const stt = await loadWhisperWorker(fixture);
  try {
    const samples = voicedTone(1);
    const { text, timings } = await stt.transcribe(samples);
    assert.equal(text, FIXTURE_TRANSCRIPT.trim());
    assert.equal(timings.tokens, 5); // " what" " time" " is" " it" <|endoftext|>
    assert.ok(timings.encoder_ms > 0 && timings.decoder_ms > 0);
    assert.equal(samples.length, 0, "transferred, not copied");
    // A view into a larger buffer is copied: the caller's buffer stays usable.
    const whole = voicedTone(2);
    const { text: again } = await stt.transcribe(whole.subarray(0, SAMPLE_RATE));
    assert.equal(again, FIXTURE_TRANSCRIPT.trim());
    assert.equal(whole.length, 2 * SAMPLE_RATE);
  } finally {
    await stt.close();
  }
});

Deno.test("worker: an abort rejects with the signal's reason, and the next transcription still runs", async () => {
  const stt = await loadWhisperWorker(fixture);
  try {
    const already = AbortSignal.abort();
    await assert.rejects(stt.transcribe(voicedTone(1), { signal: already }), {
      name: "AbortError",
    });
    const controller = new AbortController();
    const running = stt.transcribe(voicedTone(1), { signal: controller.signal });
    controller.abort();
    await assert.rejects(running, { name: "AbortError" });
    assert.equal((await stt.transcribe(voicedTone(1))).text, FIXTURE_TRANSCRIPT.trim());
  } finally {
    await stt.close();
  }
});

Deno.test("worker: a missing model directory rejects with loadWhisper's error naming the files", async () => {
  const missing = join(await Deno.makeTempDir(), "no-model");
  try {
    await assert.rejects(loadWhisperWorker(missing), (error) => {
      assert.ok(error instanceof WhisperModelError);
      assert.match(
        error.message,
        /missing onnx\/encoder_model\.onnx, onnx\/decoder_model_merged\.onnx, config\.json, tokenizer\.json or vocab\.json/,
      );
      return true;
    });
  } finally {
    await Deno.remove(join(missing, ".."), { recursive: true });
  }
});

Deno.test("worker: after close, transcribe rejects", async () => {
  const stt = await loadWhisperWorker(fixture, { warmUp: false });
  await stt.close();
  await assert.rejects(stt.transcribe(voicedTone(1)), /closed/);
});

/**
 * The reason for the worker: onnxruntime's run blocks its thread, so in-process the event loop
 * stalls for at least the whole encoder run (≈ 150 ms for whisper-tiny). The check is relative to
 * the encoder time measured in the same run, so a loaded machine (slower encoder, scheduler gaps)
 * cannot fail it while real blocking still would.
 */
const MIN_ENCODER_MS = 50;
/** Off the thread, the loop may lag by scheduling noise, never by a large part of the encoder run. */
const MAX_GAP_FRACTION = 0.5;

Deno.test("worker: a whisper-tiny-sized transcription leaves this thread's event loop running", async () => {
  const tinyRandom = await ensureWhisperTinyRandom(MODELS_DIR);
  const stt = await loadWhisperWorker(tinyRandom, { maxTokens: 10 });
  let last = performance.now();
  let maxGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 1);
  try {
    // A first run outside the measurement: it competes with the worker's own start-up.
    await stt.transcribe(voicedTone(3));
    last = performance.now();
    maxGap = 0;
    const { timings } = await stt.transcribe(voicedTone(3));
    const gap = Math.max(maxGap, performance.now() - last);
    assert.ok(
      timings.encoder_ms > MIN_ENCODER_MS,
      `encoder ran ${timings.encoder_ms.toFixed(0)} ms: too short to show blocking`,
    );
    assert.ok(
      gap < timings.encoder_ms * MAX_GAP_FRACTION,
      `event loop stalled ${gap.toFixed(0)} ms (encoder ${timings.encoder_ms.toFixed(0)} ms)`,
    );
  } finally {
    clearInterval(timer);
    await stt.close();
  }
});
