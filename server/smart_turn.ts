/**
 * Optional audio end-of-turn model: Pipecat's Smart Turn v3 (pipecat-ai/smart-turn, BSD-2) as
 * ONNX, loaded from models/ when present. It is not shipped and cannot be downloaded here;
 * `loadSmartTurn` returns undefined when the file is absent and `end_of_turn.ts` then decides
 * from the transcript alone.
 *
 * The model's contract, as its reference `inference.py` (v3.0-v3.2) feeds it:
 * - the last 8 s of the turn at 16 kHz, zero-padded at the *start* when shorter;
 * - `WhisperFeatureExtractor(chunk_length=8)` with `do_normalize=True`: the waveform is scaled
 *   to zero mean and unit variance (Hugging Face `zero_mean_unit_var_norm`, ε 1e-7), then
 *   Whisper's 80-band log-mel over 800 frames (hop 160): `server/stt/log_mel.ts` computes
 *   exactly this with `frames: 800`;
 * - input `input_features` float32 [1, 80, 800]; output [1, 1], already a sigmoid probability
 *   that the turn is complete (> 0.5 = complete).
 *
 * Exports that embed the front end in the graph (e.g. soniqo's "audio-in" export: input float32
 * [1, 128000] raw 16 kHz samples) are accepted too: a 2-D input gets the padded waveform as is.
 * An output outside [0, 1] is taken as a logit and passed through a sigmoid.
 *
 * @example
 * ```ts
 * const model = await loadSmartTurn(DEFAULT_SMART_TURN_PATH); // undefined if absent
 * const p = await model?.completeProbability(samples16k);
 * ```
 */
import * as ort from "onnxruntime-node";
import { LogMelSpectrogram, N_MELS } from "./stt/log_mel.ts";
import type { TurnModel } from "./end_of_turn.ts";

/** Where `deno task models` would put the model (the v3 CPU export renamed). */
export const DEFAULT_SMART_TURN_PATH = new URL("../models/smart_turn_v3.onnx", import.meta.url)
  .pathname;
/** Smart Turn v3 looks at the last 8 s of the turn (inference.py `n_seconds=8`). */
export const WINDOW_SECONDS = 8;
/** ...at 16 kHz. */
export const SMART_TURN_RATE = 16_000;
/** 8 s × 16 kHz. */
export const WINDOW_SAMPLES = WINDOW_SECONDS * SMART_TURN_RATE;
/** 8 s at Whisper's 10 ms hop: 800 log-mel frames. */
export const WINDOW_FRAMES = 800;
/** Hugging Face's `zero_mean_unit_var_norm` adds 1e-7 to the variance. */
const NORM_EPSILON = 1e-7;

/** The model file exists but is not a Smart-Turn-shaped model; names the path and why. */
export class SmartTurnModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SmartTurnModelError";
  }
}

/** Smart Turn v3 on onnxruntime; see the module doc. */
export class SmartTurn implements TurnModel {
  readonly name = "smart_turn";
  #session: ort.InferenceSession;
  #inputName: string;
  #rawAudio: boolean;
  #frontEnd = new LogMelSpectrogram({ frames: WINDOW_FRAMES });
  #window = new Float32Array(WINDOW_SAMPLES);
  /** Inferences run and their total time, ms (for the benchmark). */
  runs = 0;
  totalMs = 0;

  private constructor(session: ort.InferenceSession, inputName: string, rawAudio: boolean) {
    this.#session = session;
    this.#inputName = inputName;
    this.#rawAudio = rawAudio;
  }

  /**
   * Opens `path`. Throws {@link SmartTurnModelError} when the model has no float input shaped
   * [1, 80, 800] (`input_features`) or [1, 128000] (raw audio).
   */
  static async open(path: string): Promise<SmartTurn> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(path, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        executionMode: "sequential",
        graphOptimizationLevel: "all",
      });
    } catch (error) {
      throw new SmartTurnModelError(`${path}: not a loadable ONNX model (${error})`);
    }
    const inputName = session.inputNames[0];
    const raw = await SmartTurn.#probe(session, inputName);
    if (raw === undefined) {
      await session.release();
      throw new SmartTurnModelError(
        `${path}: input ${JSON.stringify(session.inputNames)} takes neither float32 ` +
          `[1, ${N_MELS}, ${WINDOW_FRAMES}] (Smart Turn v3 input_features) nor [1, ${WINDOW_SAMPLES}] (raw audio)`,
      );
    }
    return new SmartTurn(session, inputName, raw);
  }

  /** Which input layout the session accepts: false = log-mel, true = raw, undefined = neither. */
  static async #probe(session: ort.InferenceSession, name: string): Promise<boolean | undefined> {
    const tries: [boolean, number[]][] = [[false, [1, N_MELS, WINDOW_FRAMES]], [true, [
      1,
      WINDOW_SAMPLES,
    ]]];
    for (const [raw, dims] of tries) {
      const size = dims.reduce((a, b) => a * b, 1);
      try {
        await session.run({ [name]: new ort.Tensor("float32", new Float32Array(size), dims) });
        return raw;
      } catch {
        // Not this layout.
      }
    }
    return undefined;
  }

  /** P(turn complete) for the turn's audio (16 kHz floats, any length; the last 8 s count). */
  async completeProbability(samples16k: Float32Array): Promise<number> {
    const started = performance.now();
    const window = this.#window;
    const used = Math.min(samples16k.length, WINDOW_SAMPLES);
    window.fill(0, 0, WINDOW_SAMPLES - used);
    window.set(samples16k.subarray(samples16k.length - used), WINDOW_SAMPLES - used);
    let mean = 0;
    for (let i = 0; i < window.length; i++) mean += window[i];
    mean /= window.length;
    let variance = 0;
    for (let i = 0; i < window.length; i++) variance += (window[i] - mean) ** 2;
    variance /= window.length;
    const scale = 1 / Math.sqrt(variance + NORM_EPSILON);
    for (let i = 0; i < window.length; i++) window[i] = (window[i] - mean) * scale;
    const input = this.#rawAudio
      ? new ort.Tensor("float32", window.slice(), [1, WINDOW_SAMPLES])
      : new ort.Tensor("float32", this.#frontEnd.compute(window).slice(), [
        1,
        N_MELS,
        WINDOW_FRAMES,
      ]);
    const result = await this.#session.run({ [this.#inputName]: input });
    const value = Number((result[this.#session.outputNames[0]].data as Float32Array)[0]);
    this.runs++;
    this.totalMs += performance.now() - started;
    return value >= 0 && value <= 1 ? value : 1 / (1 + Math.exp(-value));
  }

  async close(): Promise<void> {
    await this.#session.release();
  }
}

/**
 * Opens the model at `path` if the file exists; undefined when it does not (the text rule then
 * decides alone). Throws {@link SmartTurnModelError} for a file that is there but unusable.
 */
export async function loadSmartTurn(
  path: string = DEFAULT_SMART_TURN_PATH,
): Promise<SmartTurn | undefined> {
  try {
    await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  return await SmartTurn.open(path);
}
