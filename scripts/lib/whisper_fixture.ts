/**
 * The Whisper test fixture: a tiny model with exactly the input/output names, ranks and dtypes
 * of the onnx-community/whisper-* export (encoder_model.onnx + decoder_model_merged.onnx with its
 * `use_cache_branch` If), whose weights are constructed so that greedy decoding of any
 * non-silent audio yields " what time is it" <|endoftext|>, while silence gets a high
 * <|nospeech|> probability and low-confidence junk (Whisper's no-speech rule then empties it).
 * The next token depends on the position the decoder reads from the key/value cache's content
 * (or, in the `cachePosition` variant, from its `cache_position` input), so the tests prove the
 * cache and positions are carried correctly. Test use only.
 *
 * @example
 * ```ts
 * const dir = await ensureWhisperFixture("models"); // models/whisper-fixture
 * ```
 */

import { byteLevelToken } from "../../server/stt/tokenizer.ts";
import { GraphBuilder, INT64, prng, uniform } from "./onnx_graph.ts";
import {
  crossKeyValues,
  decoderSignature,
  encoderSignature,
  type ExportVariant,
  textPositionsOf,
} from "./whisper_graphs.ts";
import {
  ensureModelDir,
  type Vocabulary,
  whisperConfig,
  writeModelDir,
} from "./whisper_model_dir.ts";

/** Directory name of the fixture under the models directory. */
export const FIXTURE_DIR = "whisper-fixture";

/** What the fixture decodes any non-silent audio to. */
export const FIXTURE_TRANSCRIPT = " what time is it";

/** The fixture's sizes: Whisper-shaped ranks, toy widths. */
const FIXTURE_DIMS = { width: 8, heads: 2, decoderLayers: 2 };
/** Encoder positions of a 30 s window (3000 frames / 2), as in every Whisper. */
const FIXTURE_AUDIO_POSITIONS = 1500;
/** Rows of the fixture's position → logits table (its decoder has no other notion of time). */
const FIXTURE_POSITIONS = 64;
/**
 * Frame loudness (mean normalized log-mel over the bands) below which the fixture calls the
 * audio silent. Digital silence is −1.5 everywhere; any audible signal's loudest frame is above
 * −1, because the features are normalized to their own maximum.
 */
const FIXTURE_SILENCE_LOUDNESS = -1;
/** Gain from quietness (0 for audible input, 0.5 for digital silence) to the silence logits. */
const FIXTURE_NO_SPEECH_GAIN = 40;

/** The fixture's vocabulary: ASCII bytes, four words, then the multilingual special layout. */
function fixtureVocabulary(): Vocabulary {
  const vocab: Record<string, number> = {};
  let next = 0;
  for (let byte = 0; byte < 128; byte++) vocab[byteLevelToken(String.fromCharCode(byte))] = next++;
  for (const word of [" what", " time", " is", " it"]) vocab[byteLevelToken(word)] = next++;
  const added: Record<string, number> = {};
  for (
    const name of [
      "<|endoftext|>",
      "<|startoftranscript|>",
      "<|en|>",
      "<|de|>",
      "<|translate|>",
      "<|transcribe|>",
      "<|startoflm|>",
      "<|startofprev|>",
      "<|nospeech|>",
      "<|notimestamps|>",
      "<|0.00|>",
      "<|0.02|>",
    ]
  ) {
    added[name] = next++;
  }
  return { vocab, added };
}

/**
 * The fixture encoder: mean-pools pairs of frames (the stride-2 convolution's job), projects the
 * 80 bands to 8 channels (channel 0 = the frame's mean level) and adds 1500 positional
 * embeddings, so like the standard export it only accepts 3000-frame inputs.
 */
function fixtureEncoder(random: () => number, variant: ExportVariant) {
  const g = new GraphBuilder("");
  const width = FIXTURE_DIMS.width;
  const pairs = g.op("Reshape", ["input_features", g.ints("pairs", [0, 80, -1, 2])]);
  const pooled = g.op("Transpose", [g.op("ReduceMean", [pairs], { axes: [3], keepdims: 0 })], {
    perm: [0, 2, 1],
  });
  const projection = uniform(random, 80 * width, 0.01);
  for (let m = 0; m < 80; m++) projection[m * width] = 1 / 80;
  const positions = uniform(random, FIXTURE_AUDIO_POSITIONS * width, 0.1);
  for (let t = 0; t < FIXTURE_AUDIO_POSITIONS; t++) positions[t * width] = 0;
  g.op(
    "Add",
    [
      g.op("MatMul", [pooled, g.weight("proj", [80, width], projection)]),
      g.weight("embed_positions.weight", [FIXTURE_AUDIO_POSITIONS, width], positions),
    ],
    {},
    "last_hidden_state",
  );
  const { inputs, outputs } = encoderSignature(
    { mels: 80, audioPositions: FIXTURE_AUDIO_POSITIONS, width },
    variant,
  );
  return g.graph("whisper_fixture_encoder", inputs, outputs);
}

/**
 * The fixture decoder. Its logits are a table indexed by absolute position plus a no-speech term:
 *
 * - position = number of tokens already in the cache, read from the *content* of the last layer's
 *   past decoder values (every token writes 1 into head 0, channel 0 there and 0 into that
 *   channel of every other cache tensor), plus the index within `input_ids`. A client that drops,
 *   swaps or mixes up cache tensors gets the wrong positions and the wrong text;
 * - the <|nospeech|> logit rises as the loudest frame (read from layer 0's cross-attention keys,
 *   which come from the cache after the first step) falls below the silence level.
 */
function fixtureDecoder(random: () => number, vocabulary: Vocabulary, variant: ExportVariant) {
  const g = new GraphBuilder("");
  const { width, heads, decoderLayers } = FIXTURE_DIMS;
  const headDim = width / heads;
  const vocabSize = Object.keys(vocabulary.vocab).length + Object.keys(vocabulary.added).length;
  const id = (token: string) => vocabulary.added[token] ?? vocabulary.vocab[byteLevelToken(token)];

  for (let l = 0; l < decoderLayers; l++) {
    for (const kind of ["key", "value"]) {
      const table = uniform(random, vocabSize * width, 0.5);
      const counter = l === decoderLayers - 1 && kind === "value" ? 1 : 0;
      for (let t = 0; t < vocabSize; t++) table[t * width] = counter;
      const fresh = g.splitHeads(
        g.op("Gather", [
          g.weight(`layers.${l}.${kind}_table`, [vocabSize, width], table),
          "input_ids",
        ], { axis: 0 }),
        heads,
        headDim,
      );
      g.op(
        "Concat",
        [`past_key_values.${l}.decoder.${kind}`, fresh],
        { axis: 2 },
        `present.${l}.decoder.${kind}`,
      );
    }
  }
  const cross = crossKeyValues(g, decoderLayers, (branch, l) => {
    const keyProjection = uniform(random, width * width, 0.3);
    if (l === 0) {
      keyProjection.fill(0);
      for (let c = 0; c < width; c++) keyProjection[c * width + c] = 1;
    }
    const key = branch.splitHeads(
      branch.op("MatMul", [
        "encoder_hidden_states",
        g.weight(`layers.${l}.cross_k`, [width, width], keyProjection),
      ]),
      heads,
      headDim,
    );
    const value = branch.splitHeads(
      branch.op("MatMul", [
        "encoder_hidden_states",
        g.weight(`layers.${l}.cross_v`, [width, width], uniform(random, width * width, 0.3)),
      ]),
      heads,
      headDim,
    );
    return { key, value };
  });

  const headZeroChannelZero = (x: string) =>
    g.op("Slice", [x, g.ints("start", [0, 0]), g.ints("end", [1, 1]), g.ints("axes", [1, 3])]);
  let positions: string;
  if (variant.cachePosition) {
    positions = textPositionsOf(g, variant);
  } else {
    const cached = g.op("ReduceSum", [
      headZeroChannelZero(`past_key_values.${decoderLayers - 1}.decoder.value`),
    ], { keepdims: 0 });
    const past = g.op("Cast", [cached], { to: INT64 });
    const length = g.element(g.op("Shape", ["input_ids"]), 1);
    positions = g.op("Range", [past, g.op("Add", [past, length]), g.ints("one", [1], [])]);
  }

  const table = new Float32Array(FIXTURE_POSITIONS * vocabSize);
  const set = (
    position: number,
    token: string,
    logit: number,
  ) => (table[position * vocabSize + id(token)] = logit);
  // Logits at position p choose the token at p + 1. Positions 0-3 hold the prompt
  // <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|>.
  set(0, "<|en|>", 5);
  set(1, "<|transcribe|>", 5);
  set(2, "<|notimestamps|>", 5);
  // Each text position's favourite is a token the decoder must refuse, the intended one second:
  set(3, "<|endoftext|>", 10); // begin_suppress_tokens
  set(3, " ", 9); // begin_suppress_tokens (Whisper's 220 "Ġ")
  set(3, " what", 8);
  set(4, "<|0.00|>", 10); // timestamps are never generated without timestamps
  set(4, " time", 8);
  set(5, "#", 10); // suppress_tokens
  set(5, " is", 8);
  set(6, " it", 8);
  for (let p = 7; p < FIXTURE_POSITIONS; p++) set(p, "<|endoftext|>", 8);
  const steer = g.op("Gather", [
    g.weight("position_logits", [FIXTURE_POSITIONS, vocabSize], table),
    positions,
  ], { axis: 0 });

  const loudest = g.op("ReduceMax", [headZeroChannelZero(cross[0].key)], { keepdims: 0 });
  // 0 for audible input, 0.5 for digital silence.
  const quietness = g.op("Relu", [
    g.op("Sub", [g.scalar("silence", FIXTURE_SILENCE_LOUDNESS), loudest]),
  ]);
  // What silence does to the logits: <|nospeech|> dominates the first position, and the text
  // positions become a low-confidence tie among all byte tokens that <|endoftext|> soon ends,
  // like a real model's junk on silence (so the avg-logprob half of the no-speech rule applies).
  const silenceDirection = new Float32Array(vocabSize);
  for (let byte = 0; byte < 128; byte++) silenceDirection[byte] = FIXTURE_NO_SPEECH_GAIN;
  silenceDirection[id("<|nospeech|>")] = 3 * FIXTURE_NO_SPEECH_GAIN;
  silenceDirection[id("<|endoftext|>")] = 2 * FIXTURE_NO_SPEECH_GAIN;
  const noSpeech = g.op("Mul", [
    quietness,
    g.weight("silence_direction", [vocabSize], silenceDirection),
  ]);
  // Keep the cross-attention values in the graph (a real decoder reads them too).
  const valueCheck = g.op("Mul", [
    g.op("ReduceSum", [cross[1].value], { keepdims: 0 }),
    g.scalar("zero", 0),
  ]);
  const logits2d = g.op("Add", [g.op("Add", [steer, noSpeech]), valueCheck]);
  g.op("Unsqueeze", [logits2d, g.ints("axes", [0])], {}, "logits");
  const { inputs, outputs } = decoderSignature({ ...FIXTURE_DIMS, vocab: vocabSize }, variant);
  return { graph: g.graph("whisper_fixture_decoder_merged", inputs, outputs), vocabSize };
}

/**
 * Writes the fixture model into `dir` (a few hundred kB, milliseconds). `variant` picks the
 * export layout it imitates (default: current optimum's, with a fixed 3000-frame encoder input).
 */
export async function makeWhisperFixture(dir: string, variant: ExportVariant = {}): Promise<void> {
  const random = prng(0xf1c5_7013);
  const vocabulary = fixtureVocabulary();
  const decoder = fixtureDecoder(random, vocabulary, variant);
  const encoder = fixtureEncoder(random, variant);
  const id = (name: string) => vocabulary.added[name];
  await writeModelDir(dir, {
    encoder,
    decoder: decoder.graph,
    config: whisperConfig({
      width: FIXTURE_DIMS.width,
      heads: FIXTURE_DIMS.heads,
      encoderLayers: 0,
      decoderLayers: FIXTURE_DIMS.decoderLayers,
      ffnWidth: 0,
      vocab: decoder.vocabSize,
      mels: 80,
      audioPositions: FIXTURE_AUDIO_POSITIONS,
      textPositions: FIXTURE_POSITIONS,
    }),
    vocabulary,
    generationConfig: {
      decoder_start_token_id: id("<|startoftranscript|>"),
      eos_token_id: id("<|endoftext|>"),
      is_multilingual: true,
      lang_to_id: { "<|en|>": id("<|en|>"), "<|de|>": id("<|de|>") },
      max_length: FIXTURE_POSITIONS,
      no_timestamps_token_id: id("<|notimestamps|>"),
      begin_suppress_tokens: [vocabulary.vocab[byteLevelToken(" ")], id("<|endoftext|>")],
      suppress_tokens: [vocabulary.vocab[byteLevelToken("#")], id("<|translate|>")],
    },
    label: FIXTURE_LABEL,
  });
}

/**
 * Generates `modelsDir/whisper-fixture/` unless this generator version already did; returns its
 * path. Safe to call from concurrent test processes.
 */
export function ensureWhisperFixture(modelsDir: string): Promise<string> {
  return ensureModelDir(modelsDir, FIXTURE_DIR, (dir) => makeWhisperFixture(dir));
}

const FIXTURE_LABEL =
  "Whisper-shaped TEST FIXTURE generated by scripts/make_whisper_models.ts: decodes any audible " +
  `input to "${FIXTURE_TRANSCRIPT.trim()}" and silence to nothing. Not a speech recognizer.`;
