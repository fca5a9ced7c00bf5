/**
 * One device's audio in, packet to utterance (spec 5.6 "Receiving Audio", 5.4, 7.3):
 *
 *   RTP payload ─▶ Opus decode (or concealment) ─▶ 20 ms frames at the decode rate
 *     ─▶ (resample to 16 kHz) ─▶ VAD model confidence ─▶ VAD state machine
 *     ─▶ utterance segmenter (frames at the utterance rate, AUDIO_SAMPLE_RATE) ─▶ sink
 *
 * libopus decodes straight to the utterance rate (AUDIO_SAMPLE_RATE, 16 kHz by default: the VAD's
 * and Whisper's rate), so the usual path has no resampler at all; only 24/48 kHz utterances are
 * resampled for the VAD, and 8 kHz ones are decoded at 16 kHz and resampled down (issue 14).
 *
 * Frames are processed strictly in order; when the VAD model is async (Silero) later frames
 * wait in a preallocated ring of {@link QUEUE_FRAMES} slots. Every per-frame buffer is
 * preallocated; resampling uses the shared band-limited {@link Resampler}.
 *
 * The echo guard (gateway/README.md; its modes and thresholds in `echo_guard.ts`) applies while
 * the device is playing a reply: `estimate` (default) feeds every reply frame sent
 * ({@link AudioInput.reference}) and every mic frame to an {@link EchoPath}, and a mic frame
 * that is not clearly above the echo it predicts counts as unvoiced (issue 9, "only the user can
 * barge in"); until the path estimate has converged the `raise` thresholds apply on top. `raise`
 * makes the VAD need more confidence and more frames to call it speech, `half_duplex` ignores
 * the microphone entirely, `off` does nothing (for devices with echo cancellation).
 *
 * @example
 * ```ts
 * const input = new AudioInput({ model, silenceFrames: 15, sampleRate: 16000, ... }, sink);
 * input.push(opusPayload, Date.now()); // or input.push(null, now) for a lost packet
 * ```
 */
import { Resampler } from "../shared/audio.ts";
import { EchoPath } from "./echo_path.ts";
import { ECHO_HANGOVER_MS, type EchoGuard, vadParams } from "./echo_guard.ts";
import { FrameFiller } from "../shared/media/frame_filler.ts";
import { IdleGate } from "./idle_gate.ts";
import {
  OPUS_FRAME_MS,
  OPUS_PCM_RATES,
  OPUS_RATE,
  OpusDecoder,
  type OpusPcmRate,
} from "../shared/media/opus_codec.ts";
import {
  MAX_UTTERANCE_MS,
  PRE_ROLL_MS,
  type SegmenterSink,
  UtteranceSegmenter,
} from "./utterance_segmenter.ts";
import {
  VAD_RATE,
  type VadParams,
  type VadState,
  VadStateMachine,
  type VoiceModel,
} from "./vad.ts";

/**
 * The rate a device's Opus is decoded at for utterances at `sampleRate` Hz: the lowest rate
 * libopus decodes to that is at least both `sampleRate` and the VAD's 16 kHz (8 kHz utterances
 * are decoded at 16 kHz for the VAD; 22.05 kHz ones at 24 kHz).
 */
export function decodeRate(sampleRate: number): OpusPcmRate {
  return OPUS_PCM_RATES.find((rate) => rate >= Math.max(sampleRate, VAD_RATE)) ?? OPUS_RATE;
}

/** Frames that may wait for an async VAD: 32 × 20 ms = 640 ms before input is dropped. */
export const QUEUE_FRAMES = 32;
/** Whether the device is playing a reply (the conversation knows), read once per frame. */
export interface ReplyState {
  readonly replyPlaying: boolean;
}

/** Where the input's utterances go: the segmenter's events, straight to their receiver. */
export type AudioInputSink = SegmenterSink;

/** Options of {@link AudioInput}. */
export interface AudioInputOptions {
  model: VoiceModel;
  /** AUDIO_SILENCE_FRAMES: unvoiced 20 ms frames that end an utterance (spec default 15). */
  silenceFrames: number;
  /** AUDIO_SAMPLE_RATE: the rate utterances are sent to the AI server at. */
  sampleRate: number;
  echoGuard: EchoGuard;
  /** GATEWAY_ECHO_MARGIN_DB for `estimate`: how far above the predicted echo speech must be. */
  echoMarginDb?: number;
  /**
   * The cap of the next utterance in ms, asked at each utterance's start (default
   * {@link MAX_UTTERANCE_MS}): TURN_MAX_MS while the AI server takes long turns.
   */
  maxUtteranceMs?: () => number;
  /** Whether a reply is playing, for the echo guard; none: never. */
  reply?: ReplyState;
  /** Called when a frame fails to process (a bug or a broken model); the stream continues. */
  onError?: (error: unknown) => void;
}

/** Counters for metrics. */
export interface AudioInputStats {
  frames: number;
  concealed: number;
  undecodable: number;
  dropped: number;
  utterances: number;
  /** Frames skipped by the idle gate. */
  gated: number;
  /** Mic frames the echo path called echo (their VAD confidence forced to 0). */
  echo: number;
}

/** See the module doc. */
export class AudioInput {
  readonly stats: AudioInputStats = {
    frames: 0,
    concealed: 0,
    undecodable: 0,
    dropped: 0,
    utterances: 0,
    gated: 0,
    echo: 0,
  };
  #options: AudioInputOptions;
  /** Rate frames are decoded at and processed in, Hz ({@link decodeRate}). */
  readonly rate: OpusPcmRate;
  #frameSamples: number;
  #decoder: OpusDecoder;
  #toVad: Resampler | undefined;
  #toUtterance: Resampler | undefined;
  #vad: VadStateMachine;
  #normal: VadParams;
  #guarded: VadParams;
  #segmenter: UtteranceSegmenter;
  /** Frames awaiting processing (at {@link rate}), and their capture times. */
  #ring: Float32Array;
  #ringAt = new Float64Array(QUEUE_FRAMES);
  /** How many times each slot's frame is processed (a run of silence is one slot). */
  #ringRepeat = new Int32Array(QUEUE_FRAMES);
  #head = 0;
  #count = 0;
  /** Decoded samples not yet a whole 20 ms frame (devices may send 10/40/60 ms packets). */
  #partial: FrameFiller<Float32Array>;
  /** Arrival time of the samples being cut into frames. */
  #partialAt = 0;
  /** Samples at the utterance rate not yet a whole frame. */
  #utterance: FrameFiller<Float32Array>;
  /** VAD state and capture time of the frame being cut into utterance frames. */
  #frameState: VadState = "quiet";
  #frameAt = 0;
  #running = false;
  #playing = false;
  /** True while frames are gated (the resampler and model were reset on entry). */
  #gated = false;
  /** Quiet frames skip the VAD while nobody speaks (idle_gate.ts). */
  #idleGate = new IdleGate();
  /** The device's echo path (`estimate` guard only). */
  #echo: EchoPath | undefined;
  /** When the last reply frame was sent (ms), for {@link ECHO_HANGOVER_MS}. */
  #lastReferenceAt = -Infinity;
  /** Whether the `raise` thresholds are on (while playing, and under `estimate` until converged). */
  #raised = false;
  #zeros: Float32Array;
  #closed = false;

  constructor(options: AudioInputOptions, sink: AudioInputSink) {
    this.#options = options;
    const params = vadParams(options.model.name, options.echoGuard, options.silenceFrames);
    this.#normal = params.normal;
    if (options.echoGuard === "estimate") {
      this.#echo = new EchoPath({ marginDb: options.echoMarginDb });
    }
    this.#guarded = params.guarded;
    this.#vad = new VadStateMachine(this.#normal);
    this.rate = decodeRate(options.sampleRate);
    this.#frameSamples = (this.rate * OPUS_FRAME_MS) / 1000;
    this.#decoder = new OpusDecoder({ rate: this.rate });
    if (this.rate !== VAD_RATE) this.#toVad = new Resampler(this.rate, VAD_RATE);
    if (options.sampleRate !== this.rate) {
      this.#toUtterance = new Resampler(this.rate, options.sampleRate);
    }
    this.#ring = new Float32Array(QUEUE_FRAMES * this.#frameSamples);
    this.#partial = new FrameFiller<Float32Array>(
      new Float32Array(this.#frameSamples),
      (frame) => this.#enqueue(frame, this.#partialAt),
    );
    const frameSamples = (options.sampleRate * OPUS_FRAME_MS) / 1000;
    this.#segmenter = new UtteranceSegmenter({
      frameSamples,
      preRollFrames: PRE_ROLL_MS / OPUS_FRAME_MS,
      maxFrames: () => Math.floor((options.maxUtteranceMs?.() ?? MAX_UTTERANCE_MS) / OPUS_FRAME_MS),
    }, sink);
    this.#utterance = new FrameFiller<Float32Array>(
      new Float32Array(frameSamples),
      (frame) => this.#segment(frame, this.#frameState, this.#frameAt),
    );
    this.#zeros = new Float32Array(frameSamples);
  }

  /** The VAD's current state. */
  get vadState(): VadState {
    return this.#vad.state;
  }

  /** True while an utterance is open. */
  get inUtterance(): boolean {
    return this.#segmenter.active;
  }

  /**
   * Ends the open utterance now (reason `silence`): a turn-taking decision ended it before the
   * VAD's silence window. Frames still queued for the VAD belong to what follows. Returns false
   * when no utterance is open.
   */
  endUtterance(): boolean {
    return !this.#closed && this.#segmenter.end();
  }

  /**
   * The unvoiced frames that end an utterance (AUDIO_SILENCE_FRAMES at start): a turn-taking
   * machine that decides the end itself raises it to its longest wait, so the VAD never ends a
   * turn first. Throws a RangeError for a count that is not an integer ≥ 1.
   */
  set silenceFrames(frames: number) {
    if (!Number.isInteger(frames) || frames < 1) {
      throw new RangeError(`silence frames ${frames} must be an integer ≥ 1`);
    }
    this.#normal = { ...this.#normal, stopFrames: frames };
    this.#guarded = { ...this.#guarded, stopFrames: frames };
    this.#vad.params = this.#raised ? this.#guarded : this.#normal;
  }

  get silenceFrames(): number {
    return this.#normal.stopFrames;
  }

  /** The echo path's current estimate (`estimate` guard), for metrics and tests. */
  get echoEstimate(): EchoPath["estimate"] | undefined {
    return this.#echo?.estimate;
  }

  /**
   * One 20 ms reply frame (floats at any rate) as it is sent to the device at `at` (ms, the clock of
   * the capture times given to {@link push}): the reference of the echo path. `talkspurtStart`:
   * the first frame after the playback queue ran dry (its time jump is no late clock).
   */
  reference(frame: Float32Array, at: number, talkspurtStart = false): void {
    if (!this.#echo || this.#closed) return;
    this.#echo.reference(frame, at, talkspurtStart);
    this.#lastReferenceAt = at;
  }

  /**
   * Turns the echo guard on while a reply plays, off when it stops; under `estimate` the raised
   * thresholds hold only until the echo path has converged.
   */
  #followReply(): void {
    this.#playing = this.#options.reply?.replyPlaying ?? false;
    const raised = this.#playing && (!this.#echo || !this.#echo.estimate.converged);
    if (this.#raised === raised) return;
    this.#raised = raised;
    this.#vad.params = raised ? this.#guarded : this.#normal;
  }

  /** `estimate`: true when the mic frame at `at` is not clearly above the reply's echo. */
  #isEcho(frame: Float32Array, at: number): boolean {
    // A late playback clock spreads the echo's delay: its tail comes that much later too.
    const hangover = ECHO_HANGOVER_MS + (this.#echo?.spreadMs ?? 0);
    if (!this.#echo || at - this.#lastReferenceAt > hangover) return false;
    if (this.#echo.microphone(frame, at).verdict === "speech") return false;
    this.stats.echo++;
    return true;
  }

  /** One RTP payload in sequence order, or `null` for a lost packet; `at` = arrival (ms). */
  push(payload: Uint8Array | null, at: number): void {
    if (this.#closed) return;
    let samples: Float32Array;
    if (payload === null) {
      this.stats.concealed++;
      samples = this.#decoder.conceal();
    } else {
      try {
        samples = this.#decoder.decode(payload);
      } catch {
        this.stats.undecodable++;
        samples = this.#decoder.conceal();
      }
    }
    this.#pushSamples(samples, at);
  }

  /**
   * Feeds `frames` frames of silence from capture time `at` (ms): a timestamp gap (DTX) or a
   * device overdue past the stall hold (`audio_receiver.ts`). One queue slot holds the whole
   * run, so no length of silence can overflow the VAD's queue.
   */
  pushSilence(frames: number, at: number): void {
    if (this.#closed || !(frames >= 1)) return;
    // A gap: the partial frame's samples are dropped with the rest of the silence.
    this.#partial.reset();
    this.#enqueue(this.#partial.frame.fill(0), at, Math.floor(frames));
    this.#pump();
  }

  /** Ends an open utterance and frees the decoder. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#segmenter.flush();
    this.#decoder.close();
    this.#options.model.close();
  }

  /** One frame at the utterance rate to the segmenter, whose events go to the sink. */
  #segment(frame: Float32Array, state: VadState, at: number): void {
    this.#segmenter.push(frame, state, at);
    this.stats.utterances = this.#segmenter.utterances;
  }

  #pushSamples(samples: Float32Array, at: number): void {
    this.#partialAt = at;
    this.#partial.push(samples);
    this.#pump();
  }

  #enqueue(frame: Float32Array, at: number, repeat = 1): void {
    if (this.#count === QUEUE_FRAMES) {
      // The VAD fell 640 ms behind: drop input rather than grow without bound (the head slot
      // may be in use by an inference, so the newest frame is the one dropped).
      this.stats.dropped++;
      return;
    }
    const slot = (this.#head + this.#count) % QUEUE_FRAMES;
    this.#ring.set(frame, slot * this.#frameSamples);
    this.#ringAt[slot] = at;
    this.#ringRepeat[slot] = repeat;
    this.#count++;
  }

  /** The head frame is done: the next repeat of a silence run, or the next slot. */
  #release(): void {
    const slot = this.#head;
    if (--this.#ringRepeat[slot] > 0) {
      this.#ringAt[slot] += OPUS_FRAME_MS;
      return;
    }
    this.#head = (slot + 1) % QUEUE_FRAMES;
    this.#count--;
  }

  #pump(): void {
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#count > 0 && !this.#closed) {
        const slot = this.#head;
        const frame = this.#ring.subarray(
          slot * this.#frameSamples,
          (slot + 1) * this.#frameSamples,
        );
        const at = this.#ringAt[slot];
        this.#followReply();
        // Before the idle gate: the echo path also learns from quiet frames.
        const echo = this.#isEcho(frame, at);
        if (this.#idle(frame)) {
          this.#finishGated(at);
          continue;
        }
        const frame16k = this.#toVad?.process(frame) ?? frame;
        const mute = this.#playing && this.#options.echoGuard === "half_duplex";
        const confidence = mute ? 0 : this.#options.model.confidence(frame16k);
        if (typeof confidence !== "number") {
          // Async model: finish this frame when it answers, then continue.
          confidence.then(
            (value) => this.#finishFrame(frame, echo ? 0 : value, at),
            (error) => {
              this.#options.onError?.(error);
              this.#finishFrame(frame, 0, at);
            },
          ).catch((error) => {
            // A throw further down (segmenter, AI client, publish) must not become an unhandled
            // rejection: that would end the process and every device's call with it.
            this.#options.onError?.(error);
          }).finally(() => {
            this.#running = false;
            this.#pump();
          });
          return;
        }
        this.#finishFrame(frame, echo ? 0 : confidence, at);
      }
    } catch (error) {
      this.#options.onError?.(error);
    }
    this.#running = false;
  }

  /**
   * True when the frame may skip the VAD: quiet, nobody speaking, nothing being cut, and the
   * frame below the idle gate or within 6 dB of the room's noise floor ({@link IdleGate}).
   */
  #idle(frame: Float32Array): boolean {
    const quiet = this.#idleGate.quiet(frame);
    if (this.#vad.state !== "quiet" || this.#segmenter.active || !quiet) {
      this.#gated = false;
      return false;
    }
    if (!this.#gated) {
      // Gated frames count as digital silence: start the filters from silence when speech comes.
      this.#gated = true;
      this.#utterance.reset();
      this.#toVad?.reset();
      this.#toUtterance?.reset();
      this.#options.model.reset();
    }
    return true;
  }

  /** A gated frame: silence for the VAD and the pre-roll; frees its slot. */
  #finishGated(at: number): void {
    this.stats.frames++;
    this.stats.gated++;
    this.#segment(this.#zeros, this.#vad.update(0), at);
    this.#release();
  }

  /** VAD update and segmentation for the frame at the ring's head; frees its slot. */
  #finishFrame(frame: Float32Array, confidence: number, at: number): void {
    try {
      if (this.#closed) return;
      this.stats.frames++;
      const state = this.#vad.update(confidence);
      const samples = this.#toUtterance?.process(frame) ?? frame;
      this.#frameState = state;
      this.#frameAt = at;
      this.#utterance.push(samples);
    } finally {
      this.#release();
    }
  }
}
