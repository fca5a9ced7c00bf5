import assert from "node:assert/strict";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { FIT_MARGIN_FRAMES, fitWindowFrames, openEncoder } from "./encoder_session.ts";
import { WhisperModelError } from "./model_error.ts";
import { ENCODER_FILE } from "./whisper.ts";
import { ensureWhisperFixture } from "../../scripts/lib/whisper_fixture.ts";

const MODELS_DIR = new URL("../../models", import.meta.url).pathname;
const fixture = await ensureWhisperFixture(MODELS_DIR);
/** The fixture's sizes (config.json): 3000-frame window, 80 bands, d_model 8. */
const FIXTURE_DIMS = { windowFrames: 3000, mels: 80, width: 8 };

Deno.test("fitWindowFrames: the utterance in whole seconds plus a 128-position margin, at most 30 s", () => {
  // 128 encoder positions = 256 frames (the encoder halves the frame rate).
  assert.equal(FIT_MARGIN_FRAMES, 256);
  assert.equal(fitWindowFrames(16_000, 3000), 100 + 256);
  assert.equal(fitWindowFrames(16_001, 3000), 200 + 256);
  assert.equal(fitWindowFrames(3 * 16_000, 3000), 300 + 256);
  assert.equal(fitWindowFrames(29 * 16_000, 3000), 3000);
  for (const samples of [1, 8_000, 40_000, 160_000]) {
    const frames = fitWindowFrames(samples, 3000);
    assert.equal(frames % 2, 0, "even: the encoder's stride-2 convolution halves it");
    assert.ok(
      (frames - samples / 160) / 2 >= 128,
      `${samples} samples: margin below 128 positions`,
    );
  }
});

Deno.test("openEncoder: a fixed-axis export opens for a fitted window and refuses an odd one", async () => {
  const path = join(fixture, ENCODER_FILE);
  const fitted = await openEncoder(path, "fit", FIXTURE_DIMS, {});
  const frames = fitWindowFrames(16_000, 3000);
  const { last_hidden_state } = await fitted.run({
    input_features: new ort.Tensor("float32", new Float32Array(80 * frames), [1, 80, frames]),
  });
  assert.deepEqual(last_hidden_state.dims, [1, frames / 2, 8]);
  await fitted.release();
  await assert.rejects(
    openEncoder(path, 301, FIXTURE_DIMS, {}),
    (error: Error) =>
      error instanceof WhisperModelError &&
      /encoderFrames is 301, expected "fit" or an even integer from 2 to 3000/.test(error.message),
  );
});
