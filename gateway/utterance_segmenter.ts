/**
 * Cuts one device's audio into utterances (spec 5.4 "Utterance Detection") from the VAD state
 * of each 20 ms frame. An explicit state machine with two states:
 *
 * - `idle`: frames go into a pre-roll ring (the last {@link SegmenterOptions.preRollFrames});
 *   when the VAD says `speaking`, the utterance starts with the pre-roll so the first syllable
 *   (heard while the VAD was still `starting`) is not cut.
 * - `utterance`: every frame is streamed out. The VAD's `quiet` (reached after
 *   AUDIO_SILENCE_FRAMES unvoiced frames) ends it with reason `silence`; reaching
 *   {@link SegmenterOptions.maxFrames} (pre-roll included) ends it with `max_length`, and the
 *   next part starts at the next voiced frame with `utteranceStart(at, { afterCap: true })`:
 *   the same request going on, never a barge-in (issue 9, "long requests stay whole"). The cap
 *   is read at each utterance's start: {@link MAX_UTTERANCE_MS} (30 s, what one v1 frame or a
 *   v2 turn of a server without `continue` carries) or TURN_MAX_MS for a server that accepts
 *   long turns.
 * - Inside an utterance, {@link SPECULATE_AFTER_MS} after the last speaking frame, `pause` says
 *   the user went quiet (once per silence stretch); a speaking frame after it first calls
 *   `resume`. The AI server may start STT at the pause (docs/protocol.md, `pause`).
 *
 * Frames are copied into a preallocated ring; nothing is allocated per frame.
 *
 * @example
 * ```ts
 * const seg = new UtteranceSegmenter({ frameSamples: 960, preRollFrames: 15, maxFrames: 1500 }, {
 *   utteranceStart: () => {}, utteranceAudio: (frame) => {}, utteranceEnd: (reason, at) => {},
 * });
 * seg.push(frame48k, vadState, Date.now());
 * ```
 */
import type { VadState } from "./vad.ts";

/** Spec 5.4: an utterance longer than 30 s is cut (also the frame codec's per-frame limit). */
export const MAX_UTTERANCE_MS = 30_000;
/**
 * TURN_MAX_MS default: a v2 server that announced `continue` takes one turn of up to 120 s
 * (docs/turn_taking.md, "long requests past 30 s"); only past that is a request cut.
 */
export const DEFAULT_TURN_MAX_MS = 120_000;
/**
 * The v2 capability of a server that takes one turn past {@link MAX_UTTERANCE_MS} (up to
 * TURN_MAX_MS): a server that can continue a turn holds a request of that length anyway.
 */
export const LONG_TURN_CAPABILITY = "continue";
/** 300 ms of pre-roll covers the VAD's start delay plus a soft onset. */
export const PRE_ROLL_MS = 300;

/**
 * Silence inside an utterance after which `pause` is emitted: a fifth of the spec's 300 ms
 * silence window (AUDIO_SILENCE_FRAMES 15 × 20 ms), so the speculative transcript, and with it a
 * `complete` end-of-turn hint, is in ~60 ms after the user stops plus the STT time
 * (docs/turn_taking.md section 6: p50 first reply 277 → 216 ms against 100 ms here). Shorter gaps
 * inside fluent speech rarely reach it (Silero's confidence carries over stop closures); one that
 * does costs a speculative STT run, which any final turn aborts.
 */
export const SPECULATE_AFTER_MS = 60;

/** Why an utterance ended. */
export type EndReason = "silence" | "max_length" | "flush";

/** Where the segmenter sends its output: the device's conversation (conversation.ts). */
export interface SegmenterSink {
  /**
   * Speech started; `at` is the wall-clock time (ms) of the first pre-roll frame. `afterCap`:
   * this utterance continues one just ended with `max_length` (the user kept talking): the
   * same request, to be answered after the earlier part, never a barge-in on it.
   */
  utteranceStart(at: number, info?: { afterCap: boolean }): void;
  /** One frame of the utterance (a view, valid during the call). */
  utteranceAudio(frame: Float32Array): void;
  /** The utterance is over; `lastSpeechAt` is when its last voiced frame was captured. */
  utteranceEnd(reason: EndReason, lastSpeechAt: number): void;
  /** The user went quiet inside the utterance (after the audio of the frame at `at`). */
  utterancePause?(at: number): void;
  /** Speech came back after a `pause` (before that frame's audio). */
  utteranceResume?(): void;
}

/** Sizes, in frames of `frameSamples` samples each. */
export interface SegmenterOptions {
  frameSamples: number;
  preRollFrames: number;
  /** The cap of one utterance; a function is asked at each utterance's start. */
  maxFrames: number | (() => number);
  /** Silence before `pause`, ms of capture time (default {@link SPECULATE_AFTER_MS}). */
  speculateAfterMs?: number;
}

/** See the module doc. */
export class UtteranceSegmenter {
  readonly options: Readonly<SegmenterOptions>;
  #sink: SegmenterSink;
  #state: "idle" | "utterance" = "idle";
  #ring: Float32Array;
  #ringTimes: Float64Array;
  #ringStart = 0;
  #ringCount = 0;
  #frames = 0;
  #utterances = 0;
  #lastSpeechAt = 0;
  /** A max-length cut happened while the VAD still said speaking: restart on the next voiced frame. */
  #cut = false;
  /** `pause` was emitted for the current silence stretch. */
  #paused = false;
  #speculateAfterMs: number;
  #maxFrames: () => number;
  /** The cap of the open utterance, read at its start. */
  #cap = 0;
  /** The next utterance continues one cut at the cap. */
  #afterCap = false;

  constructor(options: SegmenterOptions, sink: SegmenterSink) {
    this.#maxFrames = typeof options.maxFrames === "function"
      ? options.maxFrames
      : () => options.maxFrames as number;
    const maxFrames = this.#maxFrames();
    for (const [key, value] of [["frameSamples", options.frameSamples], ["maxFrames", maxFrames]]) {
      if (!Number.isInteger(value) || (value as number) < 1) {
        throw new RangeError(`${key} ${value} must be an integer >= 1`);
      }
    }
    if (
      !Number.isInteger(options.preRollFrames) || options.preRollFrames < 0 ||
      options.preRollFrames >= maxFrames
    ) {
      throw new RangeError(
        `preRollFrames ${options.preRollFrames} must be an integer in 0..${maxFrames - 1}`,
      );
    }
    this.options = { ...options };
    this.#speculateAfterMs = options.speculateAfterMs ?? SPECULATE_AFTER_MS;
    this.#sink = sink;
    this.#ring = new Float32Array(Math.max(1, options.preRollFrames) * options.frameSamples);
    this.#ringTimes = new Float64Array(Math.max(1, options.preRollFrames));
  }

  /** Utterances started so far. */
  get utterances(): number {
    return this.#utterances;
  }

  /** True while an utterance is open. */
  get active(): boolean {
    return this.#state === "utterance";
  }

  /** Frames in the open utterance (pre-roll included). */
  get frames(): number {
    return this.#frames;
  }

  /** Feeds one frame (exactly `frameSamples`) with its VAD state and capture time (ms). */
  push(frame: Float32Array, vad: VadState, at: number): void {
    if (frame.length !== this.options.frameSamples) {
      throw new RangeError(
        `frame has ${frame.length} samples, expected ${this.options.frameSamples}`,
      );
    }
    const voiced = vad === "speaking" || vad === "starting";
    if (this.#state === "idle") {
      const begin = vad === "speaking" || (this.#cut && voiced);
      if (!begin) {
        // Silence after the cut: whatever comes next is a new request.
        if (vad === "quiet") this.#cut = false;
        this.#remember(frame, at);
        return;
      }
      this.#afterCap = this.#cut;
      this.#cut = false;
      this.#begin(at);
    }
    this.#frames++;
    if (vad === "speaking") {
      if (this.#paused) {
        this.#paused = false;
        this.#sink.utteranceResume?.();
      }
      this.#lastSpeechAt = at;
    }
    this.#sink.utteranceAudio(frame);
    if (vad === "quiet") {
      this.#finish("silence");
    } else if (this.#frames >= this.#cap) {
      this.#finish("max_length");
      this.#cut = true;
    } else if (
      !this.#paused && vad !== "speaking" && at - this.#lastSpeechAt >= this.#speculateAfterMs
    ) {
      this.#paused = true;
      this.#sink.utterancePause?.(at);
    }
  }

  /**
   * Ends the open utterance now with reason `silence`, as if the VAD had said quiet: for a
   * turn-taking decision that ends it sooner than the VAD's silence window (an end-of-turn hint,
   * docs/turn_taking.md section 3). Returns false when no utterance is open.
   */
  end(): boolean {
    if (this.#state !== "utterance") return false;
    this.#finish("silence");
    return true;
  }

  /** Ends an open utterance now (e.g. the device went away); drops the pre-roll. */
  flush(): void {
    if (this.#state === "utterance") this.#finish("flush");
    this.#ringCount = 0;
    this.#cut = false;
  }

  #remember(frame: Float32Array, at: number): void {
    const slots = this.options.preRollFrames;
    if (slots === 0) return;
    const slot = (this.#ringStart + this.#ringCount) % slots;
    this.#ring.set(frame, slot * this.options.frameSamples);
    this.#ringTimes[slot] = at;
    if (this.#ringCount < slots) this.#ringCount++;
    else this.#ringStart = (this.#ringStart + 1) % slots;
  }

  #begin(at: number): void {
    this.#state = "utterance";
    this.#utterances++;
    const cap = this.#maxFrames();
    // A cap smaller than the pre-roll could never be reached before the pre-roll is out.
    this.#cap = Number.isInteger(cap) && cap > this.options.preRollFrames ? cap : this.#cap;
    if (this.#cap === 0) this.#cap = this.options.preRollFrames + 1;
    this.#paused = false;
    this.#frames = 0;
    this.#lastSpeechAt = at;
    const slots = this.options.preRollFrames;
    const n = this.options.frameSamples;
    const startAt = this.#ringCount > 0 ? this.#ringTimes[this.#ringStart] : at;
    if (this.#afterCap) this.#sink.utteranceStart(startAt, { afterCap: true });
    else this.#sink.utteranceStart(startAt);
    this.#afterCap = false;
    for (let i = 0; i < this.#ringCount; i++) {
      const slot = (this.#ringStart + i) % slots;
      this.#frames++;
      this.#sink.utteranceAudio(this.#ring.subarray(slot * n, (slot + 1) * n));
    }
    this.#ringStart = 0;
    this.#ringCount = 0;
  }

  #finish(reason: EndReason): void {
    this.#state = "idle";
    this.#paused = false;
    this.#frames = 0;
    this.#sink.utteranceEnd(reason, this.#lastSpeechAt);
  }
}
