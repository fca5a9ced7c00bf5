/**
 * "Only the user can barge in" (issue 9): per device, an estimate of the acoustic echo path from
 * the reply the gateway sent (the reference) to the microphone audio it receives back, and a
 * per-frame verdict on whether the microphone holds speech clearly above the echo that path
 * predicts.
 *
 * How:
 * - Both signals are reduced to energy envelopes of {@link BLOCK_MS} (5 ms) blocks. The
 *   reference is stored by its send time in a ring covering the delay range; the microphone's
 *   blocks are placed by their capture/arrival time, so the echo path's delay includes both
 *   network legs and the device's jitter buffer (0 to {@link MAX_DELAY_MS}).
 * - For every candidate delay (one per block, 61 of them) exponentially forgotten sums
 *   ({@link MEMORY_MS}, ~3 s) give the correlation of the microphone envelope with the delayed
 *   reference envelope and the least-squares slope (with intercept) of one on the other. The
 *   delay is the correlation peak; the echo gain is the slope at that delay: energy ratio, so
 *   the user's voice, uncorrelated with the reply, does not bias it in expectation.
 * - The echo predicted for a microphone block is gain × the loudest reference block within
 *   [delay − {@link DELAY_SLACK_BLOCKS}, delay + {@link TAIL_BLOCKS}] (delay uncertainty and the
 *   room's reverberation tail). A 20 ms frame is `speech` when its energy is at least
 *   {@link ECHO_MARGIN_DB} above the echo predicted for it.
 * - A starved gateway's playback clock wakes up late and catches up in a burst: the reference
 *   times then jump, while the device's jitter buffer may have absorbed the lateness (it plays
 *   on the old cadence) or not, so the echo's delay wavers by up to that lateness. The
 *   prediction window widens on both sides by the recent playback lateness
 *   ({@link EchoPath.spreadMs}: the largest jump of a reference frame past its 20 ms cadence
 *   within a talkspurt, forgotten over {@link MEMORY_MS}, at most {@link MAX_SPREAD_MS}), so a
 *   late clock does not make echo look like the user's voice; with a punctual clock it is 0
 *   and the window is as narrow as before.
 * - Until the estimate is trusted ({@link CONVERGE_MS} of audible reference, and either a clear
 *   correlation peak or a gain so low the device evidently cancels its own echo), the
 *   prediction is conservative: gain {@link UNCONVERGED_GAIN_DB} at the worst delay of the whole
 *   range, which, like today's `raise` guard, lets only speech far louder than the reply through.
 *
 * Level convention: energies are mean squares of float samples in [-1, 1] (0 dBFS = full-scale
 * square wave). Any sample rate works as long as reference and microphone frames are 20 ms; the
 * gateway uses its 48 kHz frames (the playback frame it encodes, the Opus-decoded mic frame), so
 * no resampling is needed. Per-frame cost: see `echo_path_test.ts` (measured, printed).
 *
 * @example
 * ```ts
 * const echo = new EchoPath();
 * // playback tick: echo.reference(frame48k, sentAtMs)
 * // microphone frame: const v = echo.microphone(frame48k, capturedAtMs); v.verdict === "speech"
 * ```
 */

/** Envelope resolution: 5 ms blocks give the delay to ±2.5 ms, far finer than a 20 ms frame. */
export const BLOCK_MS = 5;
/** One frame (Opus, playback, VAD) is 20 ms. */
export const FRAME_MS = 20;
/** Blocks per frame. */
const BLOCKS_PER_FRAME = FRAME_MS / BLOCK_MS;
/**
 * Longest echo delay searched: loopback network, the device's jitter buffer and its audio
 * output/input buffers together stay well under 300 ms on a LAN (issue 9 range 0-300 ms).
 */
export const MAX_DELAY_MS = 300;
/** Memory of the correlation sums: ~3 s, several words of reply, so one word cannot swing it. */
export const MEMORY_MS = 3000;
/** The predicted echo covers one block before the estimated delay (delay error ±5 ms)... */
export const DELAY_SLACK_BLOCKS = 1;
/** ...and 8 blocks (40 ms) after it: a room's early reverberation keeps the echo up that long. */
export const TAIL_BLOCKS = 8;
/**
 * Microphone speech must be 6 dB (4× energy) over the predicted echo: the gain estimate's error
 * and the envelope's frame-to-frame spread stay inside it for echo only, while a user at the
 * reply's level over echo at -10 dB or quieter clears it on most frames.
 */
export const ECHO_MARGIN_DB = 6;
/**
 * Most the prediction window widens for a late playback clock: 200 ms, past the playback clock's
 * catch-up of 3 frames (shared/media/frame_clock.ts) and a device's usual 60-100 ms jitter
 * buffer; a wider window would predict echo from a different word than the one heard.
 */
export const MAX_SPREAD_MS = 200;
/** The estimate is trusted after 1 s of audible reference (200 blocks) has been correlated. */
export const CONVERGE_MS = 1000;
/** A correlation peak this clear means an echo is present and its delay found. */
export const MIN_CORRELATION = 0.5;
/**
 * A gain this low (-35 dB) at every delay means no echo worth predicting: the device cancels it
 * (browser AEC) or its speaker is far from its mic. Trusted even without a correlation peak.
 */
export const NO_ECHO_GAIN_DB = -35;
/**
 * Before convergence the echo is assumed at -6 dB (the loudest echo issue 9 lists) at the
 * loudest delay of the whole range: only speech well over the reply's own peaks gets through.
 * The gateway keeps its `raise` guard on top until {@link EchoDecision.converged}.
 */
export const UNCONVERGED_GAIN_DB = -6;
/**
 * Reference blocks below -60 dBFS carry no echo worth correlating (the reply's own silences);
 * they do not count towards convergence.
 */
export const AUDIBLE_REFERENCE_DB = -60;

/**
 * A microphone frame under -50 dBFS is never called speech, whatever the echo: it is below any
 * talker at the device (-30..-20 dBFS) and near the idle gate of `audio_input.ts` (-46 dBFS).
 */
export const MIN_SPEECH_DB = -50;

const AUDIBLE_ENERGY = 10 ** (AUDIBLE_REFERENCE_DB / 10);
const MIN_SPEECH_ENERGY = 10 ** (MIN_SPEECH_DB / 10);
const UNCONVERGED_GAIN = 10 ** (UNCONVERGED_GAIN_DB / 10);
const MAX_SPREAD_BLOCKS = MAX_SPREAD_MS / BLOCK_MS;

/** The per-frame verdict. */
export type EchoVerdict = "speech" | "echo";

/** What {@link EchoPath.microphone} says about one microphone frame. */
export interface EchoDecision {
  /** `speech`: at least the margin above the predicted echo (or no reply to echo). */
  verdict: EchoVerdict;
  /** Whether the path estimate is trusted (see the module doc); false: conservative prediction. */
  converged: boolean;
  /** The frame's level, dBFS (mean square). */
  micDb: number;
  /** The echo predicted for this frame, dBFS; -Infinity when no reference could echo in it. */
  echoDb: number;
}

/** The current estimate of the echo path. */
export interface EchoEstimate {
  /** Delay from sending the reference to its echo at the microphone, ms. */
  delayMs: number;
  /** Echo level relative to the reference, dB (energy slope; -Infinity for none). */
  gainDb: number;
  /** Correlation of the envelopes at that delay, -1..1. */
  correlation: number;
  converged: boolean;
}

/** Options of {@link EchoPath}; defaults are the named constants. */
export interface EchoPathOptions {
  marginDb?: number;
  maxDelayMs?: number;
  memoryMs?: number;
  convergeMs?: number;
}

function toDb(energy: number): number {
  return energy > 0 ? 10 * Math.log10(energy) : -Infinity;
}

/** Mean square of `samples[from, to)`. */
function meanSquare(samples: Float32Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += samples[i] * samples[i];
  return to > from ? sum / (to - from) : 0;
}

/** See the module doc. One per device; O(delays) work per block, nothing allocated per frame. */
export class EchoPath {
  readonly marginDb: number;
  readonly lags: number;
  #marginRatio: number;
  #forget: number;
  #convergeBlocks: number;
  /** Reference block energies by block index modulo the ring size, and the index stored. */
  #ref: Float64Array;
  #refIndex: Float64Array;
  /** The reference blocks a microphone block may hold the echo of, by delay in blocks. */
  #near: Float64Array;
  /** Sums per lag, exponentially forgotten: Σw, Σx, Σy, Σxx, Σyy, Σxy (x mic, y reference). */
  #w: Float64Array;
  #sx: Float64Array;
  #sy: Float64Array;
  #sxx: Float64Array;
  #syy: Float64Array;
  #sxy: Float64Array;
  #audibleBlocks = 0;
  #estimate: EchoEstimate = {
    delayMs: 0,
    gainDb: -Infinity,
    correlation: 0,
    converged: false,
  };
  #gain = 0;
  #lag = 0;
  #lagsDirty = true;
  /** Send time of the last reference frame (ms), for the lateness of the next. */
  #lastReferenceAt = -Infinity;
  /** Recent playback lateness, ms (see {@link spreadMs}). */
  #spreadMs = 0;
  #spreadForget: number;

  /** Throws a RangeError naming an option that is out of range. */
  constructor(options: EchoPathOptions = {}) {
    this.marginDb = options.marginDb ?? ECHO_MARGIN_DB;
    const maxDelayMs = options.maxDelayMs ?? MAX_DELAY_MS;
    const memoryMs = options.memoryMs ?? MEMORY_MS;
    const convergeMs = options.convergeMs ?? CONVERGE_MS;
    if (!(this.marginDb >= 0 && this.marginDb <= 40)) {
      throw new RangeError(`marginDb ${this.marginDb} must be within 0..40 dB`);
    }
    if (!(maxDelayMs >= 0 && maxDelayMs <= 2000)) {
      throw new RangeError(`maxDelayMs ${maxDelayMs} must be within 0..2000 ms`);
    }
    if (!(memoryMs >= 100)) throw new RangeError(`memoryMs ${memoryMs} must be ≥ 100 ms`);
    if (!(convergeMs >= 0)) throw new RangeError(`convergeMs ${convergeMs} must be ≥ 0 ms`);
    this.#marginRatio = 10 ** (this.marginDb / 10);
    this.lags = Math.floor(maxDelayMs / BLOCK_MS) + 1;
    this.#forget = 1 - BLOCK_MS / memoryMs;
    this.#convergeBlocks = Math.ceil(convergeMs / BLOCK_MS);
    this.#spreadForget = 1 - FRAME_MS / memoryMs;
    const ring = this.lags + TAIL_BLOCKS + DELAY_SLACK_BLOCKS + MAX_SPREAD_BLOCKS +
      BLOCKS_PER_FRAME * 4;
    this.#ref = new Float64Array(ring);
    this.#refIndex = new Float64Array(ring).fill(-1);
    this.#near = new Float64Array(this.lags + TAIL_BLOCKS + MAX_SPREAD_BLOCKS + 1);
    this.#w = new Float64Array(this.lags);
    this.#sx = new Float64Array(this.lags);
    this.#sy = new Float64Array(this.lags);
    this.#sxx = new Float64Array(this.lags);
    this.#syy = new Float64Array(this.lags);
    this.#sxy = new Float64Array(this.lags);
  }

  /** The current estimate (updated after every microphone frame). */
  get estimate(): Readonly<EchoEstimate> {
    if (this.#lagsDirty) this.#solve();
    return this.#estimate;
  }

  /**
   * How far the echo's delay may waver because the playback clock ran late, ms (0..
   * {@link MAX_SPREAD_MS}): the prediction window widens by this on both sides.
   */
  get spreadMs(): number {
    return this.#spreadMs;
  }

  /**
   * One frame of reply audio as sent to the device (20 ms, any rate, floats in [-1, 1]), sent
   * at `atMs` (ms, the same clock as the microphone's times). `talkspurtStart`: the first frame
   * after the playback queue ran dry (its time jump is a pause, not a late clock); without it,
   * every jump counts as lateness, which only widens the window.
   */
  reference(frame: Float32Array, atMs: number, talkspurtStart = false): void {
    const lateMs = atMs - this.#lastReferenceAt - FRAME_MS;
    this.#lastReferenceAt = atMs;
    this.#spreadMs *= this.#spreadForget;
    if (!talkspurtStart && Number.isFinite(lateMs) && lateMs > 0) {
      this.#spreadMs = Math.max(this.#spreadMs, Math.min(lateMs, MAX_SPREAD_MS));
    }
    const first = Math.round(atMs / BLOCK_MS);
    const n = frame.length / BLOCKS_PER_FRAME;
    for (let b = 0; b < BLOCKS_PER_FRAME; b++) {
      const index = first + b;
      const slot = index % this.#ref.length;
      this.#ref[slot] = meanSquare(frame, Math.round(b * n), Math.round((b + 1) * n));
      this.#refIndex[slot] = index;
    }
  }

  /**
   * One 20 ms microphone frame captured/received at `atMs`: updates the path estimate and says
   * whether the frame is speech clearly above the predicted echo.
   */
  microphone(frame: Float32Array, atMs: number): EchoDecision {
    if (this.#lagsDirty) this.#solve();
    const converged = this.#estimate.converged;
    const first = Math.round(atMs / BLOCK_MS);
    const n = frame.length / BLOCKS_PER_FRAME;
    let micEnergy = 0;
    let echoEnergy = 0;
    let referenceNear = false;
    for (let b = 0; b < BLOCKS_PER_FRAME; b++) {
      const x = meanSquare(frame, Math.round(b * n), Math.round((b + 1) * n));
      micEnergy += x;
      const loudest = this.#gather(first + b);
      if (loudest < AUDIBLE_ENERGY) continue;
      referenceNear = true;
      this.#learn(x);
      echoEnergy += this.#predict(loudest);
    }
    micEnergy /= BLOCKS_PER_FRAME;
    echoEnergy /= BLOCKS_PER_FRAME;
    this.#lagsDirty = true;
    const verdict: EchoVerdict = micEnergy >= MIN_SPEECH_ENERGY &&
        (!referenceNear || micEnergy >= echoEnergy * this.#marginRatio)
      ? "speech"
      : "echo";
    return {
      verdict,
      converged,
      micDb: toDb(micEnergy),
      echoDb: toDb(echoEnergy),
    };
  }

  /** Forgets the path (a new session: another room, another device). */
  reset(): void {
    this.#refIndex.fill(-1);
    for (const sums of [this.#w, this.#sx, this.#sy, this.#sxx, this.#syy, this.#sxy]) {
      sums.fill(0);
    }
    this.#audibleBlocks = 0;
    this.#estimate = { delayMs: 0, gainDb: -Infinity, correlation: 0, converged: false };
    this.#lagsDirty = true;
    this.#lastReferenceAt = -Infinity;
    this.#spreadMs = 0;
  }

  /** Copies the reference blocks `index − k` for k = 0..lags + tail into `#near`; returns the loudest. */
  #gather(index: number): number {
    const ref = this.#ref;
    const refIndex = this.#refIndex;
    const near = this.#near;
    const ring = ref.length;
    // One modulo, then walk the ring backwards (a modulo per block cost more than the rest).
    let slot = ((index % ring) + ring) % ring;
    let loudest = 0;
    for (let k = 0; k < near.length; k++) {
      const y = refIndex[slot] === index - k ? ref[slot] : 0;
      near[k] = y;
      if (y > loudest) loudest = y;
      slot = slot === 0 ? ring - 1 : slot - 1;
    }
    return loudest;
  }

  /** Adds one microphone block to the sums (reference in `#near`). */
  #learn(x: number): void {
    this.#audibleBlocks++;
    const f = this.#forget;
    const near = this.#near;
    for (let k = 0; k < this.lags; k++) {
      const y = near[k];
      this.#w[k] = this.#w[k] * f + 1;
      this.#sx[k] = this.#sx[k] * f + x;
      this.#sy[k] = this.#sy[k] * f + y;
      this.#sxx[k] = this.#sxx[k] * f + x * x;
      this.#syy[k] = this.#syy[k] * f + y * y;
      this.#sxy[k] = this.#sxy[k] * f + x * y;
    }
  }

  /** Echo energy predicted for the block whose reference is in `#near` (loudest: `loudest`). */
  #predict(loudest: number): number {
    if (!this.#estimate.converged) return loudest * UNCONVERGED_GAIN;
    if (this.#gain <= 0) return 0;
    let peak = 0;
    const near = this.#near;
    const spread = Math.ceil(this.#spreadMs / BLOCK_MS);
    const from = Math.max(0, this.#lag - DELAY_SLACK_BLOCKS - spread);
    const to = Math.min(near.length - 1, this.#lag + TAIL_BLOCKS + spread);
    for (let k = from; k <= to; k++) {
      if (near[k] > peak) peak = near[k];
    }
    return this.#gain * peak;
  }

  /** Finds the correlation peak and the slope there. */
  #solve(): void {
    this.#lagsDirty = false;
    let best = -2;
    let bestLag = 0;
    let maxSlope = 0;
    for (let k = 0; k < this.lags; k++) {
      const w = this.#w[k];
      if (w <= 1) continue;
      const mx = this.#sx[k] / w;
      const my = this.#sy[k] / w;
      const cxy = this.#sxy[k] / w - mx * my;
      const vx = this.#sxx[k] / w - mx * mx;
      const vy = this.#syy[k] / w - my * my;
      if (vy <= 0 || vx <= 0) continue;
      const r = cxy / Math.sqrt(vx * vy);
      maxSlope = Math.max(maxSlope, cxy / vy);
      if (r > best) {
        best = r;
        bestLag = k;
      }
    }
    let gain = 0;
    if (best > -2) {
      const w = this.#w[bestLag];
      const my = this.#sy[bestLag] / w;
      const cxy = this.#sxy[bestLag] / w - (this.#sx[bestLag] / w) * my;
      const vy = this.#syy[bestLag] / w - my * my;
      gain = Math.max(0, cxy / vy);
    }
    const enough = this.#audibleBlocks >= this.#convergeBlocks;
    const noEcho = maxSlope <= 10 ** (NO_ECHO_GAIN_DB / 10);
    const trusted = enough && (best >= MIN_CORRELATION || noEcho);
    if (!trusted) {
      // Double talk (the user over the reply) lowers the correlation: keep the last trusted
      // estimate instead of falling back to the conservative one just when the user speaks.
      if (this.#estimate.converged) return;
      this.#estimate = {
        delayMs: bestLag * BLOCK_MS,
        gainDb: toDb(gain),
        correlation: best > -2 ? best : 0,
        converged: false,
      };
      return;
    }
    this.#lag = bestLag;
    this.#gain = noEcho ? 0 : gain;
    this.#estimate = {
      delayMs: bestLag * BLOCK_MS,
      gainDb: toDb(this.#gain),
      correlation: best > -2 ? best : 0,
      converged: true,
    };
  }
}
