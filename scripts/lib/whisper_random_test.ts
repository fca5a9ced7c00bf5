import assert from "node:assert/strict";
import { join } from "node:path";
import { WhisperTokenizer } from "../../server/stt/tokenizer.ts";
import { makeWhisperRandom, type RandomWhisperOptions } from "./whisper_random.ts";

const OPTIONS: RandomWhisperOptions = {
  dims: {
    width: 16,
    heads: 2,
    encoderLayers: 1,
    decoderLayers: 1,
    ffnWidth: 32,
    vocab: 256 + 4 + 20,
    mels: 80,
    audioPositions: 1500,
    textPositions: 16,
  },
  languages: 2,
  timestamps: 10,
  seed: 7,
  suppressTokens: [],
  beginSuppressTokens: [],
  label: "whisper_random_test model",
};

Deno.test("makeWhisperRandom: token ids 0-255 are GPT-2's single bytes, readable by the tokenizer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila-random-" });
  try {
    await makeWhisperRandom(join(dir, "m"), OPTIONS);
    const tokenizer = await WhisperTokenizer.load(join(dir, "m"));
    // Every byte value round-trips: "é" is the two bytes C3 A9, "\n" is byte 10.
    const ids = Array.from(new TextEncoder().encode("é\n what"));
    assert.equal(tokenizer.decode(ids), "é\n what");
    assert.equal(tokenizer.special.endOfText, 260);
    assert.equal(tokenizer.multilingual, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("makeWhisperRandom refuses a vocabulary without room for the 256 byte tokens", async () => {
  await assert.rejects(
    makeWhisperRandom("unused", { ...OPTIONS, dims: { ...OPTIONS.dims, vocab: 200 } }),
    /vocab 200 leaves -?\d+ text tokens, expected at least the 256 bytes/,
  );
});
