/**
 * Voice activity detection per device (spec 5.4), shaped like Pipecat's VAD analyzer: the
 * model-specific part is one method ({@link VoiceModel.confidence}, 0..1 per 20 ms frame at
 * 16 kHz) and an explicit four-state machine ({@link VadStateMachine}: quiet, starting,
 * speaking, stopping) turns confidences into speech segments with its parameters kept apart.
 *
 * Two models:
 * - {@link EnergyModel}: the spec's `mean(|pcm|) > threshold` (int16 units, AUDIO_VAD_THRESHOLD).
 * - {@link SileroModel}: Silero VAD v5 through onnxruntime-node. One ONNX session is shared by
 *   every device ({@link SileroSession}); each device keeps its own recurrent state and the last
 *   64 samples of context, which v5 needs before every 512-sample window (ENVIRONMENT.md).
 *
 * @example
 * ```ts
 * const vad = new VadStateMachine({ threshold: 0.5, startFrames: 5, stopFrames: 15 });
 * const model = new EnergyModel({ threshold: 500 });
 * const state = vad.update(await model.confidence(frame16k)); // "quiet" | "starting" | ...
 * ```
 */
import * as ort from "onnxruntime-node";
import { INT16_SCALE, rms } from "../shared/audio.ts";
import { FrameFiller } from "../shared/media/frame_filler.ts";

/** The VAD runs at 16 kHz: Silero's native rate, and enough for speech energy. */
export const VAD_RATE = 16000;
/** 20 ms at 16 kHz: one Opus frame after resampling. */
export const VAD_FRAME_SAMPLES = 320;
/** Silero v5 at 16 kHz takes exactly 512-sample (32 ms) windows. */
export const SILERO_WINDOW = 512;
/** ...each preceded by the previous window's last 64 samples (without them v5 degrades). */
export const SILERO_CONTEXT = 64;
/** Silero's recurrent state is [2, 1, 128] floats. */
const SILERO_STATE_SIZE = 2 * 1 * 128;
/**
 * Frames quieter than this RMS (about -60 dBFS) cannot be speech: the model is not run on them.
 * This keeps an idle device (a quiet room, or digital silence) almost free (Pipecat's min_volume).
 */
export const SILENCE_RMS_FLOOR = 0.001;

/**
 * Silero's recurrent state keeps the probability up for a window or two after speech stops,
 * which delays every end of utterance by ~60 ms. A frame more than 20 dB below the recent speech
 * peak is therefore unvoiced whatever the model says (Pipecat pairs its model with a volume
 * check the same way); soft consonants inside words are far shorter than the silence window.
 */
export const TAIL_RATIO = 0.1;
/** The speech peak decays by half in ~2.8 s (0.995 per 20 ms frame): it follows the talker. */
const PEAK_DECAY = 0.995;

/** VAD states, Pipecat's four. */
export type VadState = "quiet" | "starting" | "speaking" | "stopping";

/** The model-specific part: how voice-like a 20 ms frame at 16 kHz is, 0..1. */
export interface VoiceModel {
  readonly name: "energy" | "silero";
  /** Confidence for one frame; may be async (ONNX). Frames must be given in order. */
  confidence(frame: Float32Array): number | Promise<number>;
  /** Forgets state between unrelated streams. */
  reset(): void;
  close(): void;
}

/** Spec 5.4 option 1: mean absolute amplitude above a threshold (int16 units). */
export class EnergyModel implements VoiceModel {
  readonly name = "energy";
  readonly threshold: number;

  constructor(options: { threshold: number }) {
    if (!(options.threshold > 0)) {
      throw new RangeError(`energy threshold ${options.threshold} must be > 0 (int16 units)`);
    }
    this.threshold = options.threshold;
  }

  /** 0.5 exactly at the threshold, 1 at twice it, 0 for silence. */
  confidence(frame: Float32Array): number {
    let sum = 0;
    for (let i = 0; i < frame.length; i++) sum += Math.abs(frame[i]);
    const mean = frame.length === 0 ? 0 : (sum / frame.length) * INT16_SCALE;
    return Math.min(1, mean / (2 * this.threshold));
  }

  reset(): void {}
  close(): void {}
}

/** One ONNX session of Silero v5 shared by every device. */
export class SileroSession {
  #session: ort.InferenceSession;
  #sr = new ort.Tensor("int64", BigInt64Array.from([BigInt(VAD_RATE)]), []);
  /** Inferences run (all devices), and their total time, for metrics and the benchmark. */
  runs = 0;
  totalMs = 0;

  private constructor(session: ort.InferenceSession) {
    this.#session = session;
  }

  /** Loads `path` (models/silero_vad_v5.onnx); one intra-op thread: windows are tiny. */
  static async load(path: string): Promise<SileroSession> {
    const session = await ort.InferenceSession.create(path, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
    });
    return new SileroSession(session);
  }

  /** Runs one window (context + 512 samples); updates `state` in place; returns P(speech). */
  async run(input: Float32Array, state: Float32Array): Promise<number> {
    const started = performance.now();
    const result = await this.#session.run({
      input: new ort.Tensor("float32", input, [1, input.length]),
      state: new ort.Tensor("float32", state, [2, 1, 128]),
      sr: this.#sr,
    });
    state.set(result.stateN.data as Float32Array);
    this.runs++;
    this.totalMs += performance.now() - started;
    return (result.output.data as Float32Array)[0];
  }

  async close(): Promise<void> {
    await this.#session.release();
  }
}

/** Silero v5 for one device: its own state, context and window buffer. */
export class SileroModel implements VoiceModel {
  readonly name = "silero";
  #session: SileroSession;
  #state = new Float32Array(SILERO_STATE_SIZE);
  /** [context (64) | window (512)]: the model input, reused for every run. */
  #input = new Float32Array(SILERO_CONTEXT + SILERO_WINDOW);
  /** The window part of {@link #input}, filled frame by frame. */
  #window = new FrameFiller<Float32Array>(
    this.#input.subarray(SILERO_CONTEXT),
    () => this.#windowFull(),
  );
  /** Whether the frame being buffered is near silence (the model is skipped). */
  #quiet = false;
  /** The model runs started for the frame being buffered, chained in order. */
  #pending: Promise<number> | undefined;
  #last = 0;
  #peak = 0;

  constructor(session: SileroSession) {
    this.#session = session;
  }

  /** Buffers the frame; runs the model on every completed 512-sample window. */
  confidence(frame: Float32Array): number | Promise<number> {
    const level = rms(frame);
    const tail = level < this.#peak * TAIL_RATIO;
    this.#quiet = level < SILENCE_RMS_FLOOR;
    this.#pending = undefined;
    this.#window.push(frame);
    const pending = this.#pending as Promise<number> | undefined;
    const result = pending ?? this.#last;
    // Track the talker's level only from frames the model calls speech.
    const track = (p: number) => {
      if (p >= 0.5) this.#peak = Math.max(level, this.#peak);
      this.#peak *= PEAK_DECAY;
      return tail ? 0 : p;
    };
    return typeof result === "number" ? track(result) : result.then(track);
  }

  /** A whole window: the model runs on [context | window] (unless quiet); the context moves on. */
  #windowFull(): void {
    if (this.#quiet) {
      // Digital or near silence: skip the model, keep the context continuous.
      this.#last = 0;
      this.#input.copyWithin(0, SILERO_WINDOW, SILERO_WINDOW + SILERO_CONTEXT);
      return;
    }
    const input = this.#input.slice();
    this.#input.copyWithin(0, SILERO_WINDOW, SILERO_WINDOW + SILERO_CONTEXT);
    const previous = this.#pending;
    this.#pending = (async () => {
      if (previous) await previous;
      this.#last = await this.#session.run(input, this.#state);
      return this.#last;
    })();
  }

  reset(): void {
    this.#peak = 0;
    this.#state.fill(0);
    this.#input.fill(0);
    this.#window.reset();
    this.#last = 0;
  }

  close(): void {}
}

/** Parameters of the state machine (Pipecat's VADParams, in frames). */
export interface VadParams {
  /** Confidence at or above which a frame counts as voiced. */
  threshold: number;
  /** Voiced frames in a row before `starting` becomes `speaking`. */
  startFrames: number;
  /** Unvoiced frames in a row before `stopping` becomes `quiet` (AUDIO_SILENCE_FRAMES). */
  stopFrames: number;
}

/** Quiet → starting → speaking → stopping → quiet, one update per frame. */
export class VadStateMachine {
  params: VadParams;
  #state: VadState = "quiet";
  #count = 0;

  constructor(params: VadParams) {
    for (const key of ["startFrames", "stopFrames"] as const) {
      if (!Number.isInteger(params[key]) || params[key] < 1) {
        throw new RangeError(`${key} ${params[key]} must be an integer >= 1`);
      }
    }
    this.params = { ...params };
  }

  get state(): VadState {
    return this.#state;
  }

  /** Feeds one frame's confidence; returns the new state. */
  update(confidence: number): VadState {
    const voiced = confidence >= this.params.threshold;
    switch (this.#state) {
      case "quiet":
        if (voiced) {
          this.#count = 1;
          this.#state = this.params.startFrames <= 1 ? "speaking" : "starting";
        }
        break;
      case "starting":
        if (!voiced) {
          this.#state = "quiet";
          this.#count = 0;
        } else if (++this.#count >= this.params.startFrames) {
          this.#state = "speaking";
        }
        break;
      case "speaking":
        if (!voiced) {
          this.#count = 1;
          this.#state = this.params.stopFrames <= 1 ? "quiet" : "stopping";
        }
        break;
      case "stopping":
        if (voiced) {
          this.#state = "speaking";
        } else if (++this.#count >= this.params.stopFrames) {
          this.#state = "quiet";
        }
        break;
    }
    return this.#state;
  }

  reset(): void {
    this.#state = "quiet";
    this.#count = 0;
  }
}
