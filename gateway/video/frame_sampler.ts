/**
 * Decides, per received VP8 frame of one camera, how much work it gets (spec 14.1 VideoConfig:
 * frame rate, processing frame skip): decode it or not, run motion detection on it or not,
 * forward it to the AI server or not; and when to ask the camera for a keyframe (PLI).
 *
 * - **Decode** what motion needs and no more. VP8 inter frames reference earlier frames, so
 *   every reference frame must be decoded; frames that nothing references (RFC 7741 N bit, or a
 *   temporal layer above 0) are skipped unless motion or a live grab wants this one.
 * - **Analyse** at most `motionFps` frames per second of RTP time, and one frame in
 *   `frameSkip + 1`. An inter frame whose compressed size jumps ({@link SPIKE_RATIO} × the recent
 *   average, and ≥ {@link MIN_SPIKE_BYTES}) is analysed at once even when not due: the encoder
 *   spent bits because the picture changed, so motion is not left waiting up to a whole analysis
 *   interval (at 15 fps analysed at 5, the first frame of a person walking in waited 0–133 ms).
 *   Such early analyses are at least half an analysis interval apart (an encoder's quality ramp
 *   after a keyframe also makes big frames), so at most 3 × `motionFps` in all; an analysis
 *   (~0.5 ms at 640×480, docs/video.md) costs less than the decode every reference frame gets
 *   anyway. A still scene with sensor noise had 7 such frames in 300 (20 s at 15 fps).
 * - **Forward** at most `forwardFps` frames per second while motion lasts (spec 10.2: only
 *   frames with motion go to the server). New motion on top of motion that lasts (fresh change,
 *   i.e. against the previous analysed frame, of at least {@link NEW_MOTION_FRACTION} of the
 *   frame after a frame with less than half that: someone walked in while leaves moved, or
 *   where a person's ghost lingers in the background) is forwarded at once instead of waiting
 *   up to a forward interval; such early frames are one per forward interval at most, so at
 *   most 2 × `forwardFps` in all.
 * - **Keyframes**: after a loss or a decode error, when a frame is wanted while none can be
 *   decoded, and while a stream has never sent one: requested at once, then repeated with
 *   backoff from `keyframeRetryMs` to `maxKeyframeRetryMs` until one arrives.
 *
 * Time comes in explicitly (RTP timestamps for frame rates, `now` ms for retries), so it is
 * testable without clocks.
 *
 * @example
 * ```ts
 * const sampler = new FrameSampler({ onKeyframeRequest: (reason) => track.sendPli(reason) });
 * const plan = sampler.plan(frame);
 * if (plan.decode) { const picture = decoder.decode(frame.data); sampler.decoded(frame); ... }
 * if (plan.analyze && sampler.motion(result.motion, frame.timestamp)) forward(picture);
 * ```
 */

import { VP8_CLOCK_RATE } from "../../shared/video/vp8_payload.ts";

/** Options (VideoConfig, docs/video.md); all rates are per camera. */
export interface FrameSamplerOptions {
  /** Largest rate of motion analysis, frames/s (VIDEO_MOTION_FPS). */
  motionFps?: number;
  /** Frames skipped between two analysed ones (VIDEO_FRAME_SKIP). */
  frameSkip?: number;
  /** Largest rate of frames forwarded while motion lasts (VIDEO_FORWARD_FPS). */
  forwardFps?: number;
  /** First retry of an unanswered keyframe request, ms. */
  keyframeRetryMs?: number;
  /** Longest wait between retries, ms. */
  maxKeyframeRetryMs?: number;
  /** Send a keyframe request (PLI) to the camera; `reason` is log-ready. */
  onKeyframeRequest: (reason: string) => void;
}

/** Frame fields the sampler reads (a gateway/video/vp8_depacketizer.ts `Vp8Frame`). */
export interface SampledFrame {
  /** RTP timestamp, 90 kHz. */
  timestamp: number;
  keyframe: boolean;
  nonReference: boolean;
  temporalLayer?: number;
  /** The compressed frame: only its size is read (a size spike hints at motion). */
  data?: { byteLength: number };
}

/** What to do with one frame. */
export interface FramePlan {
  /** Feed it to the decoder. */
  decode: boolean;
  /** Run motion detection on the decoded picture. */
  analyze: boolean;
  /** A live grab is pending: hand the decoded picture to it ({@link FrameSampler.wantFrame}). */
  capture: boolean;
}

/** 5 fps: Frigate's recommended detect rate; motion needs no more. */
export const DEFAULT_MOTION_FPS = 5;
/** 2 frames/s to the server while motion lasts (issue 13). */
export const DEFAULT_FORWARD_FPS = 2;
/** A camera answers a PLI within a frame or two; 1 s is a lost request, not a slow camera. */
export const DEFAULT_KEYFRAME_RETRY_MS = 1000;
/** Back off to one request per 8 s for a camera that never answers (no PLI storm). */
export const DEFAULT_MAX_KEYFRAME_RETRY_MS = 8000;
/** An inter frame this many times the recent average size is a size spike (analysed at once).
 * A still scene's inter frames vary by less than 2× (sensor noise, rate control); a person
 * walking into a 640×480 picture made a frame ~100× the still ones (scripts/bench_cameras.ts). */
export const SPIKE_RATIO = 4;
/** Smaller frames are never spikes: a few hundred bytes of change is too little to be motion
 * worth waking for (the regular analysis still sees it). */
export const MIN_SPIKE_BYTES = 2000;
/** Fresh change (against the previous analysed frame), as a fraction of the frame, that is new
 * motion: 10× the default minimum area (0.5 %); a 400×400 person walking into a 640×480 room
 * is ~0.4 (scripts/bench_cameras.ts), a lingering ghost or a parked car 0. */
export const NEW_MOTION_FRACTION = 0.05;
/** Weight of each inter frame in the running average size: ~8 frames of memory. */
const SIZE_AVERAGE_WEIGHT = 1 / 8;
/** Capture timestamps jitter by a few ms: a frame up to 10 % early still counts as due. */
const RATE_TOLERANCE = 0.1;
/** RTP timestamps are 32 bits; a step back larger than half the range is a wrap forwards. */
const TIMESTAMP_MODULO = 2 ** 32;

/** Keyframe and rate decisions for one camera stream; see the module doc. */
export class FrameSampler {
  #analyzeTicks: number;
  #forwardTicks: number;
  #frameSkip: number;
  #retryMs: number;
  #maxRetryMs: number;
  #request: (reason: string) => void;
  #lastAnalyzed: number | undefined;
  /** RTP timestamp of the last analysis a size spike brought forward. */
  #lastSpike: number | undefined;
  /** Running average compressed size of inter frames, bytes (undefined before the first). */
  #averageBytes: number | undefined;
  #skipped: number;
  #lastForwarded: number | undefined;
  /** RTP timestamp of the last frame forwarded early as new motion. */
  #lastEarlyForward: number | undefined;
  /** Fresh-change fraction of the last analysed frame. */
  #lastFresh = 0;
  #captureWanted = false;
  /** No decodable picture until a keyframe: at start, after loss or a decode error. */
  #awaitingKeyframe = true;
  #awaitingReason = "the stream has not sent a keyframe yet";
  #nextRequestAt: number | undefined;
  /** Keyframe requests since the last keyframe. */
  #requestsSent = 0;

  constructor(options: FrameSamplerOptions) {
    const motionFps = options.motionFps ?? DEFAULT_MOTION_FPS;
    const forwardFps = options.forwardFps ?? DEFAULT_FORWARD_FPS;
    for (const [name, value] of [["motionFps", motionFps], ["forwardFps", forwardFps]] as const) {
      if (!(value > 0 && value <= 60)) throw new RangeError(`${name} ${value} is not in (0, 60]`);
    }
    this.#frameSkip = options.frameSkip ?? 0;
    if (!Number.isInteger(this.#frameSkip) || this.#frameSkip < 0) {
      throw new RangeError(`frameSkip ${this.#frameSkip} is not a non-negative integer`);
    }
    this.#skipped = this.#frameSkip; // the first decodable frame is analysed
    this.#analyzeTicks = (VP8_CLOCK_RATE / motionFps) * (1 - RATE_TOLERANCE);
    this.#forwardTicks = (VP8_CLOCK_RATE / forwardFps) * (1 - RATE_TOLERANCE);
    this.#retryMs = options.keyframeRetryMs ?? DEFAULT_KEYFRAME_RETRY_MS;
    this.#maxRetryMs = options.maxKeyframeRetryMs ?? DEFAULT_MAX_KEYFRAME_RETRY_MS;
    this.#request = options.onKeyframeRequest;
  }

  /** True while no picture can be decoded (before the first keyframe, after a loss). */
  get awaitingKeyframe(): boolean {
    return this.#awaitingKeyframe;
  }

  /** The plan for one received frame, in arrival order. */
  plan(frame: SampledFrame): FramePlan {
    if (frame.keyframe) this.#keyframeArrived();
    if (this.#awaitingKeyframe) return { decode: false, analyze: false, capture: false };
    const spike = this.#sizeSpike(frame);
    const dueForMotion = (this.#skipped >= this.#frameSkip &&
      (this.#lastAnalyzed === undefined ||
        ticksSince(this.#lastAnalyzed, frame.timestamp) >= this.#analyzeTicks)) ||
      (spike && (this.#lastSpike === undefined ||
        ticksSince(this.#lastSpike, frame.timestamp) >= this.#analyzeTicks / 2));
    if (dueForMotion && spike) this.#lastSpike = frame.timestamp;
    const capture = this.#captureWanted;
    const referenced = !frame.nonReference && (frame.temporalLayer ?? 0) === 0;
    if (dueForMotion) {
      this.#lastAnalyzed = frame.timestamp;
      this.#skipped = 0;
    } else {
      this.#skipped++;
    }
    return { decode: referenced || dueForMotion || capture, analyze: dueForMotion, capture };
  }

  /** True when `frame` is an inter frame much larger than the recent ones; updates the
   * average. Keyframes (large by nature, and sent after every PLI) are neither. */
  #sizeSpike(frame: SampledFrame): boolean {
    const bytes = frame.data?.byteLength;
    if (bytes === undefined || frame.keyframe) return false;
    const average = this.#averageBytes;
    this.#averageBytes = average === undefined
      ? bytes
      : average + (bytes - average) * SIZE_AVERAGE_WEIGHT;
    return average !== undefined && bytes >= MIN_SPIKE_BYTES && bytes >= SPIKE_RATIO * average;
  }

  /**
   * Reports the motion result of an analysed frame (`fresh`: its fresh-change fraction, 0..1,
   * `MotionResult.freshFraction`); returns true when this frame is to be forwarded to the
   * server: motion, and the forward rate allows it or the motion is new (see the module doc).
   */
  motion(motion: boolean, timestamp: number, fresh = 0): boolean {
    const previous = this.#lastFresh;
    this.#lastFresh = fresh;
    if (!motion) return false;
    const due = this.#lastForwarded === undefined ||
      ticksSince(this.#lastForwarded, timestamp) >= this.#forwardTicks;
    if (!due) {
      const onset = fresh >= NEW_MOTION_FRACTION && previous < NEW_MOTION_FRACTION / 2;
      const early = onset && (this.#lastEarlyForward === undefined ||
        ticksSince(this.#lastEarlyForward, timestamp) >= this.#forwardTicks);
      if (!early) return false;
      this.#lastEarlyForward = timestamp;
    }
    this.#lastForwarded = timestamp;
    return true;
  }

  /** A live grab (spec 11.4) wants the next decoded picture: the next plan says `capture`. If
   * nothing is decodable and no request is pending, a keyframe is requested now. */
  wantFrame(now: number): void {
    this.#captureWanted = true;
    if (this.#awaitingKeyframe && this.#requestsSent === 0) {
      this.#requestNow("a live frame is wanted", now);
    }
  }

  /** The pending live grab got its picture. */
  captured(): void {
    this.#captureWanted = false;
  }

  /** The depacketizer dropped a frame or the decoder failed: nothing decodes until a keyframe.
   * Requests one now unless a request is already pending (then {@link tick} retries). */
  keyframeNeeded(reason: string, now: number): void {
    this.#awaitingKeyframe = true;
    this.#awaitingReason = reason;
    if (this.#requestsSent === 0) this.#requestNow(reason, now);
  }

  /** Call periodically (on every packet, and about once a second): retries an unanswered
   * keyframe request with backoff. A new stream gets `keyframeRetryMs` of grace first (its
   * first keyframe is normally on its way), then requests as one that never sends one. */
  tick(now: number): void {
    if (!this.#awaitingKeyframe) return;
    if (this.#nextRequestAt === undefined) this.#nextRequestAt = now + this.#retryMs;
    else if (now >= this.#nextRequestAt) this.#requestNow(this.#awaitingReason, now);
  }

  #requestNow(reason: string, now: number): void {
    this.#request(this.#requestsSent > 0 ? `${reason} (still no keyframe, retrying)` : reason);
    // Waits of retryMs, 2×, 4×, … up to maxRetryMs between unanswered requests.
    const wait = Math.min(this.#retryMs * 2 ** this.#requestsSent, this.#maxRetryMs);
    this.#requestsSent++;
    this.#nextRequestAt = now + wait;
  }

  #keyframeArrived(): void {
    this.#awaitingKeyframe = false;
    this.#nextRequestAt = undefined;
    this.#requestsSent = 0;
  }
}

/** RTP ticks from `from` to `to`, modulo 2^32 (a wrap counts forwards). */
function ticksSince(from: number, to: number): number {
  return (to - from + TIMESTAMP_MODULO) % TIMESTAMP_MODULO;
}
