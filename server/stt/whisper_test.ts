import assert from "node:assert/strict";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import {
  DECODER_FILE,
  ENCODER_FILE,
  loadWhisper,
  rmsDbfs,
  WhisperModelError,
  whisperModelPresent,
} from "./whisper.ts";
import {
  ensureWhisperFixture,
  FIXTURE_TRANSCRIPT,
  makeWhisperFixture,
} from "../../scripts/lib/whisper_fixture.ts";
import { makeWhisperRandom } from "../../scripts/lib/whisper_random.ts";
import type { ExportVariant } from "../../scripts/lib/whisper_graphs.ts";
import { resample } from "../../shared/audio.ts";
import { speak } from "../../tests/helpers/speech.ts";
import { LogMelSpectrogram, SAMPLE_RATE } from "./log_mel.ts";
import { WhisperTokenizer } from "./tokenizer.ts";

const MODELS_DIR = new URL("../../models", import.meta.url).pathname;
const fixture = await ensureWhisperFixture(MODELS_DIR);
const speech = await spokenWhatTimeIsIt();

/**
 * "What time is it?" spoken by espeak-ng and resampled to 16 kHz; a voiced, syllable-rate
 * modulated tone when espeak-ng is not installed (any audible input suits the fixture).
 */
async function spokenWhatTimeIsIt(): Promise<Float32Array> {
  try {
    const wav = await speak("What time is it?");
    return resample(wav.samples, wav.rate, SAMPLE_RATE);
  } catch {
    // Not installed: fall through to the synthetic stand-in.
  }
  const out = new Float32Array(SAMPLE_RATE);
  for (let i = 0; i < out.length; i++) {
    const t = i / SAMPLE_RATE;
    out[i] = 0.3 * Math.sin(2 * Math.PI * 4 * t) ** 2 * Math.sin(2 * Math.PI * 140 * t);
  }
  return out;
}

Deno.test("the test audio is audible speech-like input, not silence", () => {
  assert.ok(speech.length > 8_000, `only ${speech.length} samples`);
  assert.ok(rmsDbfs(speech) > -40, `level ${rmsDbfs(speech)} dBFS`);
});

Deno.test("fixture: speech decodes to its known sequence through front end, encoder and decoder", async () => {
  const stt = await loadWhisper(fixture);
  const { text, timings } = await stt.transcribe(speech);
  // The fixture's favourite token at each step is one Whisper must refuse (<|endoftext|> and
  // "Ġ" before the first token, a timestamp, a suppress_tokens entry); the intended one is
  // second. Its position comes from the decoder cache's content, so a dropped or mixed-up cache
  // gives different text.
  assert.equal(text, FIXTURE_TRANSCRIPT.trim());
  assert.equal(timings.tokens, 5); // " what" " time" " is" " it" <|endoftext|>
  assert.ok(timings.frontend_ms > 0 && timings.encoder_ms > 0 && timings.decoder_ms > 0);
});

Deno.test("fixture: the decoder really reads the cache (fed without it, it restarts at position 0)", async () => {
  const decoder = await ort.InferenceSession.create(join(fixture, DECODER_FILE));
  const config = JSON.parse(await Deno.readTextFile(join(fixture, "config.json")));
  const headDim = config.d_model / config.decoder_attention_heads;
  const added = JSON.parse(await Deno.readTextFile(join(fixture, "added_tokens.json")));
  const empty = new ort.Tensor("float32", new Float32Array(0), [
    1,
    config.decoder_attention_heads,
    0,
    headDim,
  ]);
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor("int64", BigInt64Array.of(BigInt(added["<|notimestamps|>"])), [1, 1]),
    encoder_hidden_states: new ort.Tensor(
      "float32",
      new Float32Array(1500 * config.d_model).fill(1),
      [
        1,
        1500,
        config.d_model,
      ],
    ),
    use_cache_branch: new ort.Tensor("bool", Uint8Array.of(0), [1]),
  };
  for (let l = 0; l < config.decoder_layers; l++) {
    for (const kind of ["decoder.key", "decoder.value", "encoder.key", "encoder.value"]) {
      feeds[`past_key_values.${l}.${kind}`] = empty;
    }
  }
  const { logits } = await decoder.run(feeds);
  const row = Array.from(logits.data as Float32Array);
  // Position 0's favourite is <|en|>, not the " what" that follows <|notimestamps|> at position 3.
  assert.equal(row.indexOf(Math.max(...row)), added["<|en|>"]);
});

Deno.test("fixture: silence is empty without running the model (energy gate)", async () => {
  const stt = await loadWhisper(fixture);
  const { text, timings } = await stt.transcribe(new Float32Array(48_000));
  assert.equal(text, "");
  assert.equal(timings.encoder_ms, 0);
  assert.equal(timings.tokens, 0);
});

Deno.test("fixture: silence past a disabled gate is empty by Whisper's no-speech rule", async () => {
  const stt = await loadWhisper(fixture, { silenceGateDbfs: -Infinity });
  const { text, timings } = await stt.transcribe(new Float32Array(48_000));
  assert.equal(text, "");
  assert.ok(timings.encoder_ms > 0, "the encoder ran");
  // P(<|nospeech|>) ≈ 1 and the decoded junk has an average log-probability ≈ −2.4 < −1.
  assert.equal(timings.tokens, 2);
  // Either half of the rule alone keeps the junk.
  for (const rule of [{ noSpeechThreshold: 1 }, { logprobThreshold: -3 }]) {
    const lenient = await loadWhisper(fixture, { silenceGateDbfs: -Infinity, ...rule });
    assert.notEqual((await lenient.transcribe(new Float32Array(48_000))).text, "");
  }
});

Deno.test("fixture: maxTokens stops decoding", async () => {
  const stt = await loadWhisper(fixture, { maxTokens: 2 });
  const { text, timings } = await stt.transcribe(speech);
  assert.equal(text, "what time");
  assert.equal(timings.tokens, 2);
});

Deno.test("fixture: concurrent calls are serialized and each gets its own transcript", async () => {
  const stt = await loadWhisper(fixture);
  const results = await Promise.all([
    stt.transcribe(speech),
    stt.transcribe(new Float32Array(16_000)),
    stt.transcribe(speech),
  ]);
  assert.deepEqual(results.map((r) => r.text), ["what time is it", "", "what time is it"]);
});

Deno.test("abort: an aborted signal rejects with its reason and the next call still works", async (t) => {
  const stt = await loadWhisper(fixture);
  await t.step("already aborted", async () => {
    await assert.rejects(
      stt.transcribe(speech, { signal: AbortSignal.abort() }),
      (error: Error) => error.name === "AbortError",
    );
  });
  await t.step("aborted while running", async () => {
    const controller = new AbortController();
    const running = stt.transcribe(speech, { signal: controller.signal });
    controller.abort(new Error("turn cancelled"));
    await assert.rejects(running, /turn cancelled/);
  });
  await t.step("aborted between tokens", async () => {
    const controller = new AbortController();
    const signal = controller.signal;
    // The transcriber checks the signal at the start, before the encoder, before the first
    // decoder run and then after every generated token; abort at the second token boundary.
    let checks = 0;
    const check = signal.throwIfAborted.bind(signal);
    signal.throwIfAborted = () => {
      if (++checks === 5) controller.abort();
      check();
    };
    await assert.rejects(
      stt.transcribe(speech, { signal }),
      (error: Error) => error.name === "AbortError",
    );
    assert.equal(checks, 5);
  });
  assert.equal((await stt.transcribe(speech)).text, "what time is it");
});

Deno.test("loadWhisper names the missing file; whisperModelPresent says whether all are there", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await whisperModelPresent(dir), false);
    await assert.rejects(
      loadWhisper(dir),
      (error: Error) =>
        error instanceof WhisperModelError &&
        error.message.includes(ENCODER_FILE) &&
        error.message.includes(DECODER_FILE) &&
        error.message.includes("tokenizer.json or vocab.json"),
    );
    assert.equal(await whisperModelPresent(fixture), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadWhisper refuses a graph without the export's input names, listing them", async () => {
  await assert.rejects(
    loadWhisper(fixture, { decoderFile: ENCODER_FILE }),
    /lacks input input_ids, encoder_hidden_states, past_key_values\.0\.decoder\.key/,
  );
});

Deno.test('fixture: encoderFrames "fit" loads the fixed-axis export, slices its positions and decodes the same', async () => {
  const stt = await loadWhisper(fixture, { encoderFrames: "fit" });
  assert.equal((await stt.transcribe(speech)).text, "what time is it");
  assert.equal((await stt.transcribe(new Float32Array(48_000))).text, "");
  await assert.rejects(
    loadWhisper(fixture, { encoderFrames: 301 }),
    /encoderFrames is 301, expected "fit" or an even integer from 2 to 3000/,
  );
});

Deno.test("a decoder with a cache_position input (optimum 1.22–1.23) is fed its token positions", async () => {
  // This fixture variant reads each token's position only from cache_position: missing, it
  // cannot run; fed wrong positions, it decodes other text.
  const dir = await Deno.makeTempDir({ prefix: "naila-cache-position-" });
  try {
    await makeWhisperFixture(dir, { cachePosition: true });
    const decoder = await ort.InferenceSession.create(join(dir, DECODER_FILE));
    assert.ok(decoder.inputNames.includes("cache_position"));
    const stt = await loadWhisper(dir);
    const { text, timings } = await stt.transcribe(speech);
    assert.equal(text, FIXTURE_TRANSCRIPT.trim());
    assert.equal(timings.tokens, 5);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rmsDbfs: full-scale square wave is 0 dBFS, half amplitude −6 dBFS, zeros −∞", () => {
  assert.equal(rmsDbfs(Float32Array.of(1, -1, 1, -1)), 0);
  assert.ok(Math.abs(rmsDbfs(Float32Array.of(0.5, -0.5)) + 6.0206) < 1e-3);
  assert.equal(rmsDbfs(new Float32Array(10)), -Infinity);
});

/** Text tokens of the toy real-architecture model: 256 bytes and 16 filler words. */
const TOY_TEXT_TOKENS = 256 + 16;
/** Control and 2 language tokens, 10 timestamps. */
const TOY_SPECIALS = 10 + 10;

/** Whisper's real graph at toy size with seeded random weights (the same seed, the same weights). */
function makeToyWhisper(dir: string, variant?: ExportVariant): Promise<void> {
  return makeWhisperRandom(dir, {
    dims: {
      width: 64,
      heads: 4,
      encoderLayers: 2,
      decoderLayers: 2,
      ffnWidth: 128,
      vocab: TOY_TEXT_TOKENS + TOY_SPECIALS,
      mels: 80,
      audioPositions: 1500,
      textPositions: 32,
    },
    languages: 2,
    timestamps: 10,
    seed: 42,
    suppressTokens: [],
    beginSuppressTokens: [],
    label: "toy real-architecture test model",
    variant,
  });
}

Deno.test("export variants of the same real-architecture weights decode the same tokens", async () => {
  // Free encoder axes (old exports) and a decoder that reads its text positions from
  // cache_position (optimum 1.22–1.23) must give the current layout's result: wrong positions
  // would change the positional embeddings and so the tokens.
  const dir = await Deno.makeTempDir({ prefix: "naila-variants-" });
  try {
    const variants: Record<string, ExportVariant> = {
      current: {},
      dynamic: { encoderAxes: "dynamic" },
      cachePosition: { cachePosition: true },
    };
    const texts: Record<string, string> = {};
    for (const [name, variant] of Object.entries(variants)) {
      await makeToyWhisper(join(dir, name), variant);
      const stt = await loadWhisper(join(dir, name), { maxTokens: 12 });
      const { text, timings } = await stt.transcribe(speech);
      assert.equal(timings.tokens, 12);
      texts[name] = text;
    }
    assert.ok(texts.current.length > 0);
    assert.deepEqual(texts, {
      current: texts.current,
      dynamic: texts.current,
      cachePosition: texts.current,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a real-architecture model decodes the same tokens with the cache as by recomputing everything", async () => {
  // Whisper's attention/MLP/layer-norm graph at toy size with random weights: greedy decoding
  // through loadWhisper (key/value cache, cached cross-attention) must match decoding that feeds
  // the whole sequence every step with an empty cache.
  const dir = await Deno.makeTempDir();
  try {
    const textTokens = TOY_TEXT_TOKENS;
    await makeToyWhisper(dir);
    const maxTokens = 12;
    const stt = await loadWhisper(dir, { maxTokens });
    const cached = await stt.transcribe(speech);
    assert.equal(cached.timings.tokens, maxTokens);
    // The same fixed-axis export with real attention layers also loads with a fitted window.
    const fitted = await loadWhisper(dir, { maxTokens, encoderFrames: "fit" });
    assert.equal((await fitted.transcribe(speech)).timings.tokens, maxTokens);

    const encoder = await ort.InferenceSession.create(join(dir, ENCODER_FILE));
    const decoder = await ort.InferenceSession.create(join(dir, DECODER_FILE));
    const features = new LogMelSpectrogram().compute(speech);
    const { last_hidden_state } = await encoder.run({
      input_features: new ort.Tensor("float32", features, [1, 80, 3000]),
    });
    const empty = new ort.Tensor("float32", new Float32Array(0), [1, 4, 0, 16]);
    const added = JSON.parse(await Deno.readTextFile(join(dir, "added_tokens.json")));
    const sequence = [added["<|startoftranscript|>"], added["<|notimestamps|>"]];
    for (let step = 0; step < maxTokens; step++) {
      const feeds: Record<string, ort.Tensor> = {
        input_ids: new ort.Tensor("int64", BigInt64Array.from(sequence, BigInt), [
          1,
          sequence.length,
        ]),
        encoder_hidden_states: last_hidden_state,
        use_cache_branch: new ort.Tensor("bool", Uint8Array.of(0), [1]),
      };
      for (let l = 0; l < 2; l++) {
        for (const kind of ["decoder.key", "decoder.value", "encoder.key", "encoder.value"]) {
          feeds[`past_key_values.${l}.${kind}`] = empty;
        }
      }
      const { logits } = await decoder.run(feeds, ["logits"]);
      const last = (logits.data as Float32Array).subarray(
        (sequence.length - 1) * logits.dims[2],
        sequence.length * logits.dims[2],
      );
      // Only text tokens are allowed (every special but <|endoftext|>, which never wins here).
      const text = Array.from(last.subarray(0, textTokens));
      sequence.push(text.indexOf(Math.max(...text)));
    }
    const recomputed = (await WhisperTokenizer.load(dir)).decode(sequence.slice(2)).trim();
    assert.equal(cached.text, recomputed);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fixture: a model without a batch axis transcribes a batch one by one", async () => {
  // The fixture's decoder reads its position from the whole cache: batch 1 only.
  const stt = await loadWhisper(fixture);
  const short = speech.slice(0, 12_000);
  const results = await stt.transcribeBatch!([speech, new Float32Array(16_000), short]);
  assert.deepEqual(results.map((r) => r.text), ["what time is it", "", "what time is it"]);
  assert.deepEqual(results.map((r) => r.timings.batch), [undefined, undefined, undefined]);
  assert.deepEqual(results.map((r) => r.timings.tokens), [5, 0, 5]);
});

const TINY_RANDOM = `${MODELS_DIR}/whisper-tiny-random`;
const hasTinyRandom = (() => {
  try {
    return Deno.statSync(`${TINY_RANDOM}/onnx/decoder_model_merged.onnx`).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name:
    "whisper-tiny-random: batched decoding gives exactly the tokens of one-at-a-time decoding, row by row",
  ignore: !hasTinyRandom,
  fn: async () => {
    // Random weights: different inputs decode to different token sequences of different
    // lengths, so rows that were mixed up or stopped together would show.
    const stt = await loadWhisper(TINY_RANDOM, { encoderFrames: "fit", maxTokens: 6 });
    // Same length, so the same "fit" window alone and in the batch; plus a silent one.
    const inputs = [
      speech,
      speech.slice().reverse(),
      new Float32Array(speech.length),
      speech.map((x, i) => x * Math.sin(i / 50)),
    ];
    const alone = [];
    for (const input of inputs) alone.push(await stt.transcribe(input.slice()));
    const batched = await stt.transcribeBatch!(inputs.map((x) => x.slice()));
    assert.deepEqual(batched.map((r) => r.text), alone.map((r) => r.text));
    assert.deepEqual(batched.map((r) => r.timings.tokens), alone.map((r) => r.timings.tokens));
    assert.deepEqual(batched.map((r) => r.timings.batch), [4, 4, 4, 4]);
    assert.equal(batched[2].text, "", "silence stays empty in a batch");
    // The encoder in pieces of one window each: the decoder's joined batch decodes the same.
    const pieces = await loadWhisper(TINY_RANDOM, {
      encoderFrames: "fit",
      maxTokens: 6,
      maxEncoderBatchFrames: 1,
    });
    const pieced = await pieces.transcribeBatch!(inputs.map((x) => x.slice()));
    assert.deepEqual(pieced.map((r) => r.text), alone.map((r) => r.text));
    await pieces.close?.();
    assert.ok(new Set(alone.map((r) => r.text)).size > 1, "the inputs decode differently");
    await stt.close?.();
  },
});
