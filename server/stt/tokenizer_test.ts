import assert from "node:assert/strict";
import { join } from "node:path";
import { byteLevelToken, TokenizerFileError, WhisperTokenizer } from "./tokenizer.ts";

/** A byte-level vocabulary: the 256 single bytes, a few merged words, then Whisper's specials. */
function files(options: { multilingual: boolean }) {
  const vocab: Record<string, number> = {};
  let next = 0;
  // The ASCII bytes, then the two bytes of "é" (whose GPT-2 characters are Ã and ©).
  for (let byte = 0; byte < 128; byte++) vocab[byteLevelToken(String.fromCharCode(byte))] = next++;
  vocab["Ã"] = next++; // byte 0xC3
  vocab["©"] = next++; // byte 0xA9: "Ã©" is é (C3 A9)
  for (const word of [" what", " time", " is", " it", " café"]) {
    vocab[byteLevelToken(word)] = next++;
  }
  const specials = ["<|endoftext|>", "<|startoftranscript|>"];
  if (options.multilingual) specials.push("<|en|>", "<|de|>");
  specials.push(
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nospeech|>",
    "<|notimestamps|>",
    "<|0.00|>",
  );
  const addedTokens: Record<string, number> = {};
  for (const special of specials) addedTokens[special] = next++;
  return { vocab, addedTokens };
}

Deno.test("byteLevelToken maps a space to Ġ and UTF-8 bytes to GPT-2's printable characters", () => {
  assert.equal(byteLevelToken(" what"), "Ġwhat");
  assert.equal(byteLevelToken("é"), "Ã©");
  assert.equal(byteLevelToken("\n"), "Ċ");
});

Deno.test("decode joins byte-level tokens into UTF-8 text and skips special tokens", () => {
  const { vocab, addedTokens } = files({ multilingual: true });
  const tokenizer = new WhisperTokenizer({ vocab, addedTokens });
  const ids = [
    addedTokens["<|startoftranscript|>"],
    vocab["Ġwhat"],
    vocab["Ġtime"],
    vocab["Ġis"],
    vocab["Ġit"],
    vocab["?"],
    addedTokens["<|endoftext|>"],
  ];
  assert.equal(tokenizer.decode(ids), " what time is it?");
});

Deno.test("decode assembles a character split across two byte tokens", () => {
  const { vocab, addedTokens } = files({ multilingual: true });
  const tokenizer = new WhisperTokenizer({ vocab, addedTokens });
  assert.equal(
    tokenizer.decode([vocab["Ġ"], vocab["c"], vocab["a"], vocab["f"], vocab["Ã"], vocab["©"]]),
    " café",
  );
  assert.equal(tokenizer.decode([vocab[byteLevelToken(" café")]]), " café");
  // Half a character decodes to the replacement character instead of throwing.
  assert.equal(tokenizer.decode([vocab["Ã"]]), "\uFFFD");
});

Deno.test("decode rejects an id outside the vocabulary, naming it", () => {
  const { vocab, addedTokens } = files({ multilingual: true });
  const tokenizer = new WhisperTokenizer({ vocab, addedTokens });
  assert.throws(() => tokenizer.decode([99999]), /token id 99999 is not in the vocabulary/);
});

Deno.test("special tokens are found by name; every id from <|endoftext|> up is special", () => {
  const { vocab, addedTokens } = files({ multilingual: true });
  const tokenizer = new WhisperTokenizer({ vocab, addedTokens });
  assert.equal(tokenizer.special.endOfText, addedTokens["<|endoftext|>"]);
  assert.equal(tokenizer.special.noSpeech, addedTokens["<|nospeech|>"]);
  assert.equal(tokenizer.special.noTimestamps, addedTokens["<|notimestamps|>"]);
  assert.ok(tokenizer.isSpecial(addedTokens["<|0.00|>"]));
  assert.ok(!tokenizer.isSpecial(vocab["Ġwhat"]));
});

Deno.test("the older <|nocaptions|> name is accepted as the no-speech token", () => {
  const { vocab, addedTokens } = files({ multilingual: true });
  addedTokens["<|nocaptions|>"] = addedTokens["<|nospeech|>"];
  delete addedTokens["<|nospeech|>"];
  assert.equal(
    new WhisperTokenizer({ vocab, addedTokens }).special.noSpeech,
    addedTokens["<|nocaptions|>"],
  );
});

Deno.test("a missing required special token is a TokenizerFileError naming it", () => {
  const { vocab, addedTokens } = files({ multilingual: true });
  delete addedTokens["<|notimestamps|>"];
  assert.throws(
    () => new WhisperTokenizer({ vocab, addedTokens }),
    /<\|notimestamps\|> is missing/,
  );
});

Deno.test("transcribePrompt: SOT en transcribe notimestamps for multilingual, SOT notimestamps for .en", () => {
  const multi = files({ multilingual: true });
  const tokenizer = new WhisperTokenizer({
    ...multi,
    generationConfig: { is_multilingual: true },
  });
  const a = multi.addedTokens;
  assert.deepEqual(tokenizer.transcribePrompt(), [
    a["<|startoftranscript|>"],
    a["<|en|>"],
    a["<|transcribe|>"],
    a["<|notimestamps|>"],
  ]);
  const english = files({ multilingual: false });
  const englishOnly = new WhisperTokenizer({
    ...english,
    generationConfig: { is_multilingual: false },
  });
  assert.deepEqual(englishOnly.transcribePrompt(), [
    english.addedTokens["<|startoftranscript|>"],
    english.addedTokens["<|notimestamps|>"],
  ]);
});

Deno.test("suppress lists come from generation_config.json and are validated", () => {
  const { vocab, addedTokens } = files({ multilingual: true });
  const tokenizer = new WhisperTokenizer({
    vocab,
    addedTokens,
    generationConfig: { suppress_tokens: [1, 2, 3, 10 ** 6], begin_suppress_tokens: [32, 5] },
  });
  assert.deepEqual(tokenizer.suppressTokens, [1, 2, 3]);
  assert.deepEqual(tokenizer.beginSuppressTokens, [32, 5]);
  assert.throws(
    () =>
      new WhisperTokenizer({
        vocab,
        addedTokens,
        generationConfig: { suppress_tokens: ["x"] as unknown as number[] },
      }),
    /suppress_tokens is \["x"\], expected a list of token ids/,
  );
});

Deno.test("load reads tokenizer.json, or vocab.json + added_tokens.json, and generation_config", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const { vocab, addedTokens } = files({ multilingual: true });
    const config = { suppress_tokens: [5], begin_suppress_tokens: [32], is_multilingual: true };
    await Deno.writeTextFile(join(dir, "generation_config.json"), JSON.stringify(config));
    await t.step("tokenizer.json", async () => {
      await Deno.writeTextFile(
        join(dir, "tokenizer.json"),
        JSON.stringify({
          model: { type: "BPE", vocab, merges: [] },
          added_tokens: Object.entries(addedTokens).map(([content, id]) => ({
            id,
            content,
            special: true,
          })),
        }),
      );
      const tokenizer = await WhisperTokenizer.load(dir);
      assert.equal(tokenizer.decode([vocab["Ġwhat"]]), " what");
      assert.deepEqual(tokenizer.suppressTokens, [5]);
      assert.equal(tokenizer.transcribePrompt().length, 4);
      await Deno.remove(join(dir, "tokenizer.json"));
    });
    await t.step("vocab.json + added_tokens.json", async () => {
      await Deno.writeTextFile(join(dir, "vocab.json"), JSON.stringify(vocab));
      await Deno.writeTextFile(join(dir, "added_tokens.json"), JSON.stringify(addedTokens));
      const tokenizer = await WhisperTokenizer.load(dir);
      assert.equal(tokenizer.decode([vocab["Ġtime"], addedTokens["<|endoftext|>"]]), " time");
      assert.deepEqual(tokenizer.beginSuppressTokens, [32]);
      await Deno.remove(join(dir, "vocab.json"));
    });
    await t.step("neither: an error naming both files", async () => {
      await assert.rejects(
        WhisperTokenizer.load(dir),
        (error: Error) =>
          error instanceof TokenizerFileError &&
          /neither tokenizer.json nor vocab.json/.test(error.message),
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("load without generation_config.json takes the suppress lists from config.json", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { vocab, addedTokens } = files({ multilingual: false });
    await Deno.writeTextFile(join(dir, "vocab.json"), JSON.stringify(vocab));
    await Deno.writeTextFile(join(dir, "added_tokens.json"), JSON.stringify(addedTokens));
    // config.json as older exports wrote it: model sizes and the generation settings together.
    await Deno.writeTextFile(
      join(dir, "config.json"),
      JSON.stringify({ d_model: 8, suppress_tokens: [1, 2, 10 ** 6], begin_suppress_tokens: [32] }),
    );
    const tokenizer = await WhisperTokenizer.load(dir);
    assert.deepEqual(tokenizer.suppressTokens, [1, 2]);
    assert.deepEqual(tokenizer.beginSuppressTokens, [32]);

    // generation_config.json wins when present, even with other lists.
    await Deno.writeTextFile(
      join(dir, "generation_config.json"),
      JSON.stringify({ suppress_tokens: [7], begin_suppress_tokens: [] }),
    );
    const preferred = await WhisperTokenizer.load(dir);
    assert.deepEqual(preferred.suppressTokens, [7]);
    assert.deepEqual(preferred.beginSuppressTokens, []);

    // A malformed list names the file it came from.
    await Deno.remove(join(dir, "generation_config.json"));
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify({ suppress_tokens: "all" }));
    await assert.rejects(
      WhisperTokenizer.load(dir),
      /config\.json suppress_tokens is "all", expected a list of token ids/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
