import assert from "node:assert/strict";
import { cacheNames, missingFiles, readConfig, whisperModelPresent } from "./whisper_files.ts";
import { WhisperModelError } from "./model_error.ts";

Deno.test("cacheNames lists past and present keys and values per layer", () => {
  const names = cacheNames(2);
  assert.deepEqual(names.pastDecoder, [
    "past_key_values.0.decoder.key",
    "past_key_values.0.decoder.value",
    "past_key_values.1.decoder.key",
    "past_key_values.1.decoder.value",
  ]);
  assert.equal(names.presentEncoder[3], "present.1.encoder.value");
});

Deno.test("missingFiles names every absent file; readConfig names a bad field", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila_whisper_files_" });
  try {
    assert.deepEqual(await missingFiles(dir, {}), [
      "onnx/encoder_model.onnx",
      "onnx/decoder_model_merged.onnx",
      "config.json",
      "tokenizer.json or vocab.json",
    ]);
    assert.equal(await whisperModelPresent(dir), false);
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ d_model: 0 }));
    await assert.rejects(readConfig(dir), (e: Error) => {
      assert.ok(e instanceof WhisperModelError);
      assert.match(e.message, /d_model is 0, expected a positive integer/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
