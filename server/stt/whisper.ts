/**
 * Whisper speech-to-text on onnxruntime-node, for the Hugging Face / optimum export layout that
 * onnx-community/whisper-* and Xenova/whisper-* publish:
 *
 * ```
 * modelDir/config.json, generation_config.json, tokenizer.json | vocab.json + added_tokens.json
 * modelDir/onnx/encoder_model.onnx          input_features [1, 80, 3000] → last_hidden_state
 * modelDir/onnx/decoder_model_merged.onnx   input_ids, encoder_hidden_states,
 *     past_key_values.{i}.{decoder,encoder}.{key,value}, use_cache_branch
 *     [, cache_position (optimum 1.22–1.23 exports)]
 *     → logits, present.{i}.{decoder,encoder}.{key,value}
 * ```
 *
 * One utterance: energy gate → log-mel front end → encoder → greedy decoding with the key/value
 * cache (English, transcribe, no timestamps, Whisper's suppressed tokens, a token limit), with
 * an empty transcript when the audio is silent or the model's no-speech probability is high.
 *
 * @example
 * ```ts
 * const stt = await loadWhisper("models/whisper-tiny.en");
 * const { text, timings } = await stt.transcribe(samples16k);
 * ```
 */

import * as ort from "onnxruntime-node";
import { rms } from "../../shared/audio.ts";
import { LogMelSpectrogram } from "./log_mel.ts";
import { fitWindowFrames } from "./encoder_session.ts";
import { argmaxAllowed, logSoftmaxAllowed, softmaxAt } from "./logits.ts";
import { WhisperModelError } from "./model_error.ts";
import { CACHE_POSITION } from "./whisper_files.ts";
import {
  openWhisperSessions,
  type SessionOptions,
  type WhisperSessions,
} from "./whisper_sessions.ts";
import type { SpeechToText, Transcript } from "./types.ts";

export { WhisperModelError };
export { DECODER_FILE, ENCODER_FILE, whisperModelPresent } from "./whisper_files.ts";
export { DEFAULT_THREADS } from "./whisper_sessions.ts";

/**
 * Tokens generated at most per utterance: ≈ 30 s of fast speech (Whisper's own limit is 224);
 * it also bounds a repetition loop on noise to well under a second of decoding.
 */
export const DEFAULT_MAX_TOKENS = 128;
/**
 * OpenAI Whisper's `no_speech_threshold`: above it (and with a low average log-probability, see
 * {@linkcode DEFAULT_LOGPROB_THRESHOLD}) the window is treated as silence.
 */
export const DEFAULT_NO_SPEECH_THRESHOLD = 0.6;
/**
 * OpenAI Whisper's `logprob_threshold`: text decoded with an average token log-probability
 * above it is kept even when the no-speech probability is high.
 */
export const DEFAULT_LOGPROB_THRESHOLD = -1;
/**
 * RMS level below which the model is not run at all: speech at a microphone is ≈ −35 to −20
 * dBFS RMS, room noise of a quiet home ≈ −70 to −60; a muted or digitally silent input is −∞.
 */
export const DEFAULT_SILENCE_GATE_DBFS = -60;
/** The warm-up pretends a 1 s utterance: the smallest "fit" window, any other window as is. */
const WARM_UP_SAMPLES = 16_000;
/**
 * Most encoder frames in one encoder run of a batch: measured on whisper-tiny's shape on 2 cores
 * (scripts/lib/stt_batching.ts), 4 full 30 s windows at once ran 1.3× faster than one by one but
 * 8 ran slower (their attention matrices, ≈ 54 MB per window and layer, no longer fit the
 * caches), while 8 fitted 3 s windows ran ≈ 3× faster. The decoder always takes the whole batch.
 */
export const MAX_ENCODER_BATCH_FRAMES = 12_000;
/** Two tokens run both branches of the merged decoder (without and with the cache). */
const WARM_UP_TOKENS = 2;

/**
 * Options of {@linkcode loadWhisper}; the encoder window, threads and file names are
 * whisper_sessions.ts's {@linkcode SessionOptions}.
 */
export interface WhisperOptions extends SessionOptions {
  /** Tokens generated at most per utterance (default {@linkcode DEFAULT_MAX_TOKENS}). */
  maxTokens?: number;
  /**
   * Empty transcript when P(<|nospeech|>) at the first position exceeds this (default 0.6) and
   * the decoded tokens' average log-probability is below `logprobThreshold` (default −1):
   * openai/whisper's rule.
   */
  noSpeechThreshold?: number;
  logprobThreshold?: number;
  /** Empty transcript without running the model when the RMS level is below this (dBFS). */
  silenceGateDbfs?: number;
  /** Most encoder frames per encoder run of a batch (default {@linkcode MAX_ENCODER_BATCH_FRAMES}). */
  maxEncoderBatchFrames?: number;
  /**
   * Run the model once on silence while loading (default true), so the first utterance does not
   * pay for onnxruntime's first-run allocations (measured here on whisper-tiny-sized weights:
   * first run 284 ms instead of 252 ms; warm-up adds ~160 ms to loading).
   */
  warmUp?: boolean;
}

/**
 * Loads a Whisper model directory (Hugging Face layout with an `onnx/` folder) and returns a
 * {@linkcode SpeechToText}. Throws a {@linkcode WhisperModelError} naming the missing file when
 * the directory is incomplete.
 *
 * One call transcribes one window: audio beyond 30 s is ignored (utterances are shorter), calls
 * run one at a time, and `timings.tokens` counts the decoder's outputs including the closing
 * <|endoftext|> (so decoder_ms / tokens is the time per decoder step).
 */
export async function loadWhisper(
  modelDir: string,
  options: WhisperOptions = {},
): Promise<SpeechToText> {
  const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new WhisperModelError(`maxTokens is ${maxTokens}, expected a positive integer`);
  }
  const sessions = await openWhisperSessions(modelDir, options);
  const transcriber = new WhisperTranscriber({
    ...sessions,
    maxTokens,
    noSpeechThreshold: options.noSpeechThreshold ?? DEFAULT_NO_SPEECH_THRESHOLD,
    logprobThreshold: options.logprobThreshold ?? DEFAULT_LOGPROB_THRESHOLD,
    silenceGateDbfs: options.silenceGateDbfs ?? DEFAULT_SILENCE_GATE_DBFS,
    maxEncoderBatchFrames: options.maxEncoderBatchFrames ?? MAX_ENCODER_BATCH_FRAMES,
  });
  if (options.warmUp ?? true) await transcriber.warmUp();
  return transcriber;
}

interface TranscriberParts extends WhisperSessions {
  maxTokens: number;
  noSpeechThreshold: number;
  logprobThreshold: number;
  silenceGateDbfs: number;
  maxEncoderBatchFrames: number;
}

class WhisperTranscriber implements SpeechToText {
  readonly #parts: TranscriberParts;
  readonly #frontEnd: LogMelSpectrogram;
  /** Ids never generated: suppress_tokens and every special token except <|endoftext|>. */
  #suppressed: Uint8Array = new Uint8Array(0);
  /** Ids not generated first: the above plus begin_suppress_tokens. */
  #beginSuppressed: Uint8Array = new Uint8Array(0);
  /** Whether the graphs have a real batch axis; probed on the first batch of two or more. */
  #batchable: boolean | undefined;
  /** Calls run one at a time: they share the front end's buffers and the sessions. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(parts: TranscriberParts) {
    this.#parts = parts;
    this.#frontEnd = new LogMelSpectrogram({
      nMels: parts.config.mels,
      frames: parts.config.windowFrames,
    });
  }

  transcribe(
    samples16k: Float32Array,
    options: { signal?: AbortSignal } = {},
  ): Promise<Transcript> {
    return this.transcribeBatch([samples16k], options).then((all) => all[0]);
  }

  /**
   * Several utterances in one run (issue 14): one encoder run on [n, mels, frames] (each padded
   * to the longest one's window) and greedy decoding on [n, 1] steps, each utterance stopping at
   * its own <|endoftext|>. Each transcript equals what {@link transcribe} gives for it alone in
   * the same window; its timings are the batch's, with `batch` = n. A model whose graphs have no
   * real batch axis (checked once, on the first batch) transcribes them one after another.
   */
  transcribeBatch(
    samples: Float32Array[],
    options: { signal?: AbortSignal } = {},
  ): Promise<Transcript[]> {
    const run = this.#queue.then(async () => {
      if (samples.length > 1 && (this.#batchable ??= await this.#probeBatch())) {
        return this.#transcribe(samples, options.signal);
      }
      const out: Transcript[] = [];
      for (const one of samples) out.push(...await this.#transcribe([one], options.signal));
      return out;
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Whether encoder and decoder answer a batch of two with two rows (a real batch axis). */
  async #probeBatch(): Promise<boolean> {
    const { encoder, decoder, config, names, tokenizer } = this.#parts;
    try {
      const frames = this.#windowFrames(WARM_UP_SAMPLES);
      const features = new Float32Array(2 * config.mels * frames);
      const encoded = await encoder.run({
        input_features: new ort.Tensor("float32", features, [2, config.mels, frames]),
      });
      const empty = new ort.Tensor("float32", new Float32Array(0), [
        2,
        config.heads,
        0,
        config.headDim,
      ]);
      const prompt = tokenizer.transcribePrompt();
      const feeds: Record<string, ort.Tensor> = {
        encoder_hidden_states: encoded.last_hidden_state,
        input_ids: int64Tensor(2, prompt),
        use_cache_branch: new ort.Tensor("bool", Uint8Array.of(0), [1]),
      };
      for (const name of [...names.pastDecoder, ...names.pastEncoder]) feeds[name] = empty;
      if (this.#parts.cachePositionRank > 0) {
        const rank2 = this.#parts.cachePositionRank === 2;
        feeds[CACHE_POSITION] = new ort.Tensor(
          "int64",
          BigInt64Array.from(
            { length: (rank2 ? 2 : 1) * prompt.length },
            (_, i) => BigInt(i % prompt.length),
          ),
          rank2 ? [2, prompt.length] : [prompt.length],
        );
      }
      const { logits } = await decoder.run(feeds, ["logits"]);
      return encoded.last_hidden_state.dims[0] === 2 && logits.dims[0] === 2;
    } catch {
      return false;
    }
  }

  /**
   * One encoder run on a silent window and two decoder steps (uncached and cached branch), so
   * onnxruntime allocates its buffers before the first real utterance.
   */
  async warmUp(): Promise<void> {
    const { encoder, config } = this.#parts;
    const silence = new Float32Array(0);
    const frames = this.#windowFrames(WARM_UP_SAMPLES);
    const features = this.#frontEnd.compute(silence, frames);
    const encoded = await encoder.run({
      input_features: new ort.Tensor("float32", features, [1, config.mels, frames]),
    });
    const timings = { frontend_ms: 0, encoder_ms: 0, decoder_ms: 0, tokens: 0 };
    await this.#decode(encoded.last_hidden_state, undefined, [timings], WARM_UP_TOKENS);
  }

  async #transcribe(all: Float32Array[], signal?: AbortSignal): Promise<Transcript[]> {
    signal?.throwIfAborted();
    const { config, tokenizer } = this.#parts;
    const timings = all.map(() => ({ frontend_ms: 0, encoder_ms: 0, decoder_ms: 0, tokens: 0 }));
    const texts = all.map(() => "");
    const started = performance.now();
    // Silent inputs are answered without the model; the rest share one window size.
    const heard = all.flatMap((samples, i) =>
      rmsDbfs(samples) < this.#parts.silenceGateDbfs ? [] : [i]
    );
    const done = (): Transcript[] =>
      timings.map((t, i) => ({
        text: texts[i],
        timings: all.length > 1 ? { ...t, batch: all.length } : t,
      }));
    if (heard.length === 0) {
      for (const t of timings) t.frontend_ms = performance.now() - started;
      return done();
    }
    const frames = Math.max(...heard.map((i) => this.#windowFrames(all[i].length)));
    const size = config.mels * frames;
    const features = new Float32Array(heard.length * size);
    // The front end reuses its buffer: each utterance's features are copied out at once.
    heard.forEach((i, row) => features.set(this.#frontEnd.compute(all[i], frames), row * size));
    const frontendMs = performance.now() - started;

    signal?.throwIfAborted();
    const encoderStarted = performance.now();
    const hidden = await this.#encode(features, heard.length, frames);
    const encoderMs = performance.now() - encoderStarted;
    const mine = heard.map((i) => timings[i]);
    const decoderStarted = performance.now();
    try {
      const ids = await this.#decode(
        hidden,
        signal,
        mine,
        this.#parts.maxTokens,
      );
      heard.forEach((i, row) => texts[i] = tokenizer.decode(ids[row]).trim());
      return done();
    } finally {
      const decoderMs = performance.now() - decoderStarted;
      for (const t of timings) {
        Object.assign(t, { frontend_ms: frontendMs, encoder_ms: encoderMs, decoder_ms: decoderMs });
      }
    }
  }

  /**
   * The encoder on `rows` feature windows, run in pieces of at most
   * `maxEncoderBatchFrames` frames (at least one window), their outputs joined into one
   * [rows, positions, width] tensor for the decoder (whose batching always pays).
   */
  async #encode(features: Float32Array, rows: number, frames: number): Promise<ort.Tensor> {
    const { encoder, config } = this.#parts;
    const size = config.mels * frames;
    const step = Math.max(1, Math.floor(this.#parts.maxEncoderBatchFrames / frames));
    const parts: ort.Tensor[] = [];
    for (let at = 0; at < rows; at += step) {
      const n = Math.min(step, rows - at);
      const input = features.subarray(at * size, (at + n) * size);
      const out = await encoder.run({
        input_features: new ort.Tensor("float32", input, [n, config.mels, frames]),
      });
      parts.push(out.last_hidden_state);
    }
    if (parts.length === 1) return parts[0];
    const [, positions, width] = parts[0].dims;
    const joined = new Float32Array(rows * positions * width);
    let offset = 0;
    for (const part of parts) {
      joined.set(part.data as Float32Array, offset);
      offset += part.data.length;
    }
    return new ort.Tensor("float32", joined, [rows, positions, width]);
  }

  /**
   * Greedy decoding with the key/value cache for a batch (the rows of `hidden`); returns each
   * row's text token ids and counts its tokens in its `timings`.
   */
  async #decode(
    hidden: ort.Tensor,
    signal: AbortSignal | undefined,
    timings: Transcript["timings"][],
    maxTokens: number,
  ): Promise<number[][]> {
    const { decoder, names, tokenizer, config } = this.#parts;
    const batch = hidden.dims[0];
    const emptyCache = new ort.Tensor("float32", new Float32Array(0), [
      batch,
      config.heads,
      0,
      config.headDim,
    ]);
    const feeds: Record<string, ort.Tensor> = { encoder_hidden_states: hidden };
    for (const name of [...names.pastDecoder, ...names.pastEncoder]) feeds[name] = emptyCache;
    const prompt = tokenizer.transcribePrompt();
    feeds.input_ids = int64Tensor(batch, prompt);
    feeds.use_cache_branch = new ort.Tensor("bool", Uint8Array.of(0), [1]);
    const positionRank = this.#parts.cachePositionRank;
    /** Tokens in the decoder's self-attention cache (= the next input's first position). */
    let cached = 0;
    const feedPositions = (length: number) => {
      if (positionRank === 0) return;
      const rows = positionRank === 2 ? batch : 1;
      const positions = BigInt64Array.from(
        { length: rows * length },
        (_, i) => BigInt(cached + (i % length)),
      );
      feeds[CACHE_POSITION] = new ort.Tensor(
        "int64",
        positions,
        positionRank === 2 ? [batch, length] : [length],
      );
    };
    feedPositions(prompt.length);

    signal?.throwIfAborted();
    let outputs = await decoder.run(feeds, [
      "logits",
      ...names.presentDecoder,
      ...names.presentEncoder,
    ]);
    cached += prompt.length;
    const vocab = outputs.logits.dims[2];
    this.#ensureMasks(vocab);
    let logits = outputs.logits.data as Float32Array;
    const at = (row: number, position: number, length: number) =>
      logits.subarray((row * length + position) * vocab, (row * length + position + 1) * vocab);
    const noSpeech = tokenizer.special.noSpeech;
    const endOfText = tokenizer.special.endOfText;
    // No-speech probability at the <|startoftranscript|> position, as openai/whisper computes it.
    // Only when it is high do the tokens' log-probabilities matter (and get computed).
    const maybeSilent = timings.map((_, row) =>
      noSpeech !== undefined &&
      softmaxAt(at(row, 0, prompt.length), noSpeech) > this.#parts.noSpeechThreshold
    );
    const sumLogprob = timings.map(() => 0);
    // The cross-attention keys/values are computed once; later steps read them from the cache
    // (the merged export returns empty present.*.encoder.* on cached steps).
    for (let i = 0; i < names.pastEncoder.length; i++) {
      feeds[names.pastEncoder[i]] = outputs[names.presentEncoder[i]];
    }
    feeds.use_cache_branch = new ort.Tensor("bool", Uint8Array.of(1), [1]);
    let rows = timings.map((_, row) => at(row, prompt.length - 1, prompt.length));
    const generated: number[][] = timings.map(() => []);
    const finished = timings.map(() => false);
    const fetches = ["logits", ...names.presentDecoder];
    while (true) {
      const next = timings.map((t, row) => {
        if (finished[row]) return endOfText;
        const masked = generated[row].length === 0 ? this.#beginSuppressed : this.#suppressed;
        const token = argmaxAllowed(rows[row], masked);
        if (maybeSilent[row]) sumLogprob[row] += logSoftmaxAllowed(rows[row], token, masked);
        t.tokens++;
        if (token === endOfText) finished[row] = true;
        else generated[row].push(token);
        if (generated[row].length >= maxTokens) finished[row] = true;
        return token;
      });
      if (finished.every(Boolean)) break;
      signal?.throwIfAborted();
      for (let i = 0; i < names.pastDecoder.length; i++) {
        feeds[names.pastDecoder[i]] = outputs[names.presentDecoder[i]];
      }
      // A finished row keeps being fed <|endoftext|>; its output is ignored.
      feeds.input_ids = new ort.Tensor("int64", BigInt64Array.from(next, BigInt), [batch, 1]);
      feedPositions(1);
      outputs = await decoder.run(feeds, fetches);
      cached += 1;
      logits = outputs.logits.data as Float32Array;
      rows = timings.map((_, row) => at(row, 0, 1));
    }
    // openai/whisper: skip when no-speech is likely and the text is not confidently decoded
    // (avg over the text tokens and <|endoftext|>).
    return generated.map((ids, row) =>
      maybeSilent[row] && sumLogprob[row] / (ids.length + 1) < this.#parts.logprobThreshold
        ? []
        : ids
    );
  }

  #windowFrames(samples: number): number {
    const { encoderFrames, config } = this.#parts;
    if (encoderFrames !== "fit") return encoderFrames;
    return fitWindowFrames(samples, config.windowFrames);
  }

  #ensureMasks(vocab: number): void {
    if (this.#suppressed.length === vocab) return;
    const { tokenizer } = this.#parts;
    const suppressed = new Uint8Array(vocab);
    for (let id = 0; id < vocab; id++) {
      if (
        id >= tokenizer.vocabSize || (tokenizer.isSpecial(id) && id !== tokenizer.special.endOfText)
      ) {
        suppressed[id] = 1;
      }
    }
    for (const id of tokenizer.suppressTokens) if (id < vocab) suppressed[id] = 1;
    const beginSuppressed = suppressed.slice();
    for (const id of tokenizer.beginSuppressTokens) if (id < vocab) beginSuppressed[id] = 1;
    this.#suppressed = suppressed;
    this.#beginSuppressed = beginSuppressed;
  }
}

/** `ids` repeated for each of `batch` rows: [batch, ids.length]. */
function int64Tensor(batch: number, ids: number[]): ort.Tensor {
  const data = BigInt64Array.from(
    { length: batch * ids.length },
    (_, i) => BigInt(ids[i % ids.length]),
  );
  return new ort.Tensor("int64", data, [batch, ids.length]);
}

/** Root-mean-square level in dB relative to full scale (−Infinity for digital silence). */
export function rmsDbfs(samples: Float32Array): number {
  return 20 * Math.log10(rms(samples));
}
