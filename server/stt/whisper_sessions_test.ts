import assert from "node:assert/strict";
import { ensureWhisperFixture, makeWhisperFixture } from "../../scripts/lib/whisper_fixture.ts";
import { WhisperModelError } from "./model_error.ts";
import { ENCODER_FILE } from "./whisper_files.ts";
import { openWhisperSessions } from "./whisper_sessions.ts";

const MODELS_DIR = new URL("../../models", import.meta.url).pathname;
const fixture = await ensureWhisperFixture(MODELS_DIR);

Deno.test("openWhisperSessions: the fixture's sessions, sizes, cache names and window", async () => {
  const sessions = await openWhisperSessions(fixture, { encoderFrames: "fit" });
  try {
    assert.deepEqual(sessions.encoder.inputNames, ["input_features"]);
    assert.ok(sessions.decoder.outputNames.includes("logits"));
    assert.equal(sessions.names.pastDecoder.length, 2 * sessions.config.layers);
    assert.equal(sessions.config.headDim * sessions.config.heads, sessions.config.width);
    assert.equal(sessions.cachePositionRank, 0);
    assert.equal(sessions.encoderFrames, "fit");
    assert.ok(sessions.tokenizer.vocabSize > 0);
  } finally {
    await sessions.encoder.release();
    await sessions.decoder.release();
  }
});

Deno.test("openWhisperSessions: a decoder with cache_position is found out", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila_whisper_sessions_" });
  try {
    await makeWhisperFixture(dir, { cachePosition: true });
    const sessions = await openWhisperSessions(dir);
    assert.equal(sessions.cachePositionRank, 1);
    assert.equal(sessions.encoderFrames, sessions.config.windowFrames);
    await sessions.encoder.release();
    await sessions.decoder.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openWhisperSessions: missing files and wrong graphs fail with a WhisperModelError naming them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila_whisper_sessions_" });
  try {
    await assert.rejects(openWhisperSessions(dir), (error: Error) => {
      assert.ok(error instanceof WhisperModelError);
      assert.match(error.message, /incomplete: missing onnx\/encoder_model\.onnx, .*config\.json/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await assert.rejects(
    openWhisperSessions(fixture, { decoderFile: ENCODER_FILE }),
    (error: Error) =>
      error instanceof WhisperModelError && /lacks input input_ids/.test(error.message),
  );
});
