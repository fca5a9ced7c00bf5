/**
 * Timing of one device's RTP stream, on the media clock rather than the arrival clock (issue 9,
 * "silence on the media clock"):
 *
 * - {@link InterarrivalJitter}: RFC 3550 section 6.4.1 / appendix A.8 interarrival jitter, the
 *   smoothed mean deviation of transit-time differences, in ms.
 * - {@link PlayoutDepth}: how long a missing packet should be waited for before it is declared
 *   lost (the reorder window of `packet_order.ts`), adapted to what the stream shows: it grows at
 *   once to cover a reordering or jitter seen, holds for {@link SHRINK_HOLD_MS} after the last
 *   reordering, then shrinks slowly (a few ms per second of media), and
 *   stays between {@link MIN_DEPTH_MS} and {@link MAX_DEPTH_MS}.
 * - {@link MediaClock}: where each packet sits on the sender's clock (RTP timestamp unwrapped to
 *   ms) and how far the arrival clock has run ahead of it. A 400 ms Wi-Fi stall followed by a
 *   burst of the held packets leaves no gap on the media clock: it is not silence. A timestamp
 *   jump (DTX, or packets that never arrive) is.
 *
 * Everything is O(1) per packet with no allocation.
 *
 * @example
 * ```ts
 * const clock = new MediaClock();
 * const depth = new PlayoutDepth();
 * const jitter = new InterarrivalJitter();
 * // per RTP packet:
 * const step = clock.observe(seq, ts, arrivalMs); // step.mediaGapMs: silence/loss on the media clock
 * jitter.update(ts, arrivalMs);
 * const windowFrames = depth.observe(seq, arrivalMs, jitter.jitterMs); // reorder window in frames
 * ```
 */
import { sequenceDistance } from "./packet_order.ts";

/** Opus's RTP clock runs at 48 kHz whatever the coded bandwidth (RFC 7587 section 4.1). */
export const OPUS_RTP_CLOCK_HZ = 48_000;
/** One Opus frame as NAILA's devices send it. */
export const FRAME_MS = 20;
/** RTP sequence numbers are 16 bits (RFC 3550 section 5.1). */
const SEQUENCE_MODULO = 0x10000;
/** RTP timestamps are 32 bits (RFC 3550 section 5.1). */
const TIMESTAMP_MODULO = 0x1_0000_0000;
/** RFC 3550 A.8: the jitter estimate moves 1/16 of the way to each new sample (noise reduction). */
const JITTER_GAIN = 1 / 16;
/**
 * A transit difference above 5 s is a new talkspurt or a sender restart, not jitter (the same
 * bound `device_session.ts` uses today).
 */
const MAX_JITTER_STEP_MS = 5000;

/**
 * The depth never goes under one frame: an adjacent swap (the commonest reordering) is then
 * repaired with no history, as the fixed window of `packet_order.ts` does today.
 */
export const MIN_DEPTH_MS = FRAME_MS;
/**
 * Nor over 200 ms: waiting longer for a missing packet costs more reply latency than concealing
 * it costs intelligibility; a stall longer than this is measured by {@link MediaClock} instead.
 */
export const MAX_DEPTH_MS = 200;
/**
 * Jitter is a mean deviation; twice it covers about 95 % of transit variation for a roughly
 * normal spread (the usual playout-delay rule of thumb, e.g. Ramjee et al. 1994 use 4× on the
 * variance-based estimate; 2× of the mean deviation is our lower, latency-first choice).
 */
export const JITTER_DEPTH_FACTOR = 2;
/**
 * Shrinking: 10 ms per second of media (one frame every 2 s), so one burst of reordering keeps
 * the deeper window for the ~10-20 s a busy Wi-Fi spell lasts, then latency comes back.
 */
export const SHRINK_MS_PER_S = 10;
/**
 * No shrinking for 2 s after the last reordering: on busy Wi-Fi reorderings come every few
 * hundred ms, and a window that had already shrunk below the last one's need loses the next.
 */
export const SHRINK_HOLD_MS = 2000;
/** A sequence jump beyond 1000 packets (20 s) is a sender restart: start over (packet_order.ts). */
const RESYNC_DISTANCE = 1000;

/**
 * The best transit seen may rise by 1 ms per second of media (1000 ppm): a device whose clock
 * runs up to 20× slower than a cheap crystal's ±50 ppm is still tracked, so hours into a session
 * its packets do not look ever more overdue; a stall (transit up by hundreds of ms at once) still
 * shows in full, since 1 ms/s is far slower than any stall grows.
 */
export const TRANSIT_CREEP = 0.001;

/** Signed distance from `a` to `b` modulo 2^32 (RTP timestamps), in clock units. */
export function timestampDelta(a: number, b: number): number {
  const d = (((b - a) % TIMESTAMP_MODULO) + TIMESTAMP_MODULO) % TIMESTAMP_MODULO;
  return d >= TIMESTAMP_MODULO / 2 ? d - TIMESTAMP_MODULO : d;
}

/**
 * Media time from packet `from` to packet `to`, in ms, by RTP timestamp (wrap-aware). Negative
 * when `to` was sent earlier. Throws a RangeError for a clock rate that is not a positive number.
 */
export function mediaDistanceMs(
  fromTimestamp: number,
  toTimestamp: number,
  clockRate: number = OPUS_RTP_CLOCK_HZ,
): number {
  if (!(clockRate > 0)) throw new RangeError(`clock rate ${clockRate} Hz must be > 0`);
  return (timestampDelta(fromTimestamp, toTimestamp) / clockRate) * 1000;
}

/** RFC 3550 interarrival jitter of one stream (A.8), in ms. */
export class InterarrivalJitter {
  readonly clockRate: number;
  #jitterMs = 0;
  #lastTransitMs: number | undefined;
  #lastTimestamp = 0;
  #unwrappedMs = 0;

  /** Throws a RangeError for a clock rate that is not a positive number (Hz). */
  constructor(clockRate: number = OPUS_RTP_CLOCK_HZ) {
    if (!(clockRate > 0)) throw new RangeError(`clock rate ${clockRate} Hz must be > 0`);
    this.clockRate = clockRate;
  }

  /** The current estimate, ms. */
  get jitterMs(): number {
    return this.#jitterMs;
  }

  /**
   * Feeds one packet: its RTP timestamp and its arrival time (ms, any monotonic clock). Returns
   * the updated jitter in ms. Packets may come in any order; the timestamp is unwrapped relative
   * to the previous one.
   */
  update(timestamp: number, arrivalMs: number): number {
    if (this.#lastTransitMs === undefined) {
      this.#unwrappedMs = 0;
    } else {
      this.#unwrappedMs += mediaDistanceMs(this.#lastTimestamp, timestamp, this.clockRate);
    }
    this.#lastTimestamp = timestamp;
    const transit = arrivalMs - this.#unwrappedMs;
    if (this.#lastTransitMs !== undefined) {
      const d = Math.abs(transit - this.#lastTransitMs);
      if (d < MAX_JITTER_STEP_MS) this.#jitterMs += (d - this.#jitterMs) * JITTER_GAIN;
    }
    this.#lastTransitMs = transit;
    return this.#jitterMs;
  }

  /** Forgets the stream (a new session). */
  reset(): void {
    this.#jitterMs = 0;
    this.#lastTransitMs = undefined;
    this.#unwrappedMs = 0;
  }
}

/** Options of {@link PlayoutDepth}; all in ms. */
export interface PlayoutDepthOptions {
  minMs?: number;
  maxMs?: number;
  frameMs?: number;
  shrinkMsPerS?: number;
}

/**
 * The reorder/playout depth one stream needs, in ms and whole frames. A packet arriving after a
 * packet with a higher sequence number was held for `arrival − (arrival of that successor)`:
 * waiting that long would have saved it. The depth is the larger of the worst such wait still
 * remembered and {@link JITTER_DEPTH_FACTOR} × jitter; it jumps up at once and decays by
 * {@link SHRINK_MS_PER_S}.
 */
export class PlayoutDepth {
  readonly minMs: number;
  readonly maxMs: number;
  readonly frameMs: number;
  readonly shrinkMsPerS: number;
  #depthMs: number;
  #highest: number | undefined;
  /** Arrival time of each of the last sequence numbers, by `sequence % ring`. */
  #arrivals: Float64Array;
  #arrivalSeq: Int32Array;
  #lastArrivalMs: number | undefined;
  #lastReorderMs = -Infinity;
  /** Reorderings seen (a packet older than one already received). */
  reorderings = 0;

  /** Throws a RangeError naming the option when the bounds are not 0 < min ≤ max. */
  constructor(options: PlayoutDepthOptions = {}) {
    this.minMs = options.minMs ?? MIN_DEPTH_MS;
    this.maxMs = options.maxMs ?? MAX_DEPTH_MS;
    this.frameMs = options.frameMs ?? FRAME_MS;
    this.shrinkMsPerS = options.shrinkMsPerS ?? SHRINK_MS_PER_S;
    if (!(this.frameMs > 0)) throw new RangeError(`frameMs ${this.frameMs} must be > 0`);
    if (!(this.minMs >= 0) || !(this.maxMs >= this.minMs)) {
      throw new RangeError(
        `depth bounds minMs ${this.minMs}, maxMs ${this.maxMs}: need 0 ≤ min ≤ max`,
      );
    }
    if (!(this.shrinkMsPerS >= 0)) {
      throw new RangeError(`shrinkMsPerS ${this.shrinkMsPerS} must be ≥ 0`);
    }
    this.#depthMs = this.minMs;
    // Enough slots to remember arrivals across the deepest window.
    const slots = Math.ceil(this.maxMs / this.frameMs) * 2 + 2;
    this.#arrivals = new Float64Array(slots);
    this.#arrivalSeq = new Int32Array(slots).fill(-1);
  }

  /** The target depth in ms. */
  get depthMs(): number {
    return this.#depthMs;
  }

  /** The target depth in whole frames (at least 1 when `minMs` > 0): a reorder window size. */
  get frames(): number {
    return Math.ceil(this.#depthMs / this.frameMs - 1e-9);
  }

  /**
   * Feeds one packet (RTP sequence number, arrival ms, the stream's current jitter in ms);
   * returns the target depth in frames.
   */
  observe(sequence: number, arrivalMs: number, jitterMs = 0): number {
    if (this.#lastArrivalMs !== undefined && arrivalMs - this.#lastReorderMs > SHRINK_HOLD_MS) {
      const elapsed = Math.max(0, arrivalMs - this.#lastArrivalMs);
      this.#depthMs = Math.max(this.minMs, this.#depthMs - (elapsed / 1000) * this.shrinkMsPerS);
    }
    this.#lastArrivalMs = arrivalMs;
    let needed = JITTER_DEPTH_FACTOR * jitterMs;
    const slots = this.#arrivals.length;
    if (this.#highest === undefined) {
      this.#highest = sequence;
    } else {
      const delta = sequenceDistance(this.#highest, sequence);
      if (Math.abs(delta) > RESYNC_DISTANCE) {
        this.#highest = sequence;
        this.#arrivalSeq.fill(-1);
      } else if (delta > 0) {
        this.#highest = sequence;
      } else if (delta < 0) {
        this.reorderings++;
        this.#lastReorderMs = arrivalMs;
        // The earliest arrival among the packets sent after this one: the wait that would have
        // been needed to put it back in order.
        let earliest = Infinity;
        for (let k = 1; k <= -delta && k < slots; k++) {
          const s = (sequence + k) % SEQUENCE_MODULO;
          const slot = s % slots;
          if (this.#arrivalSeq[slot] === s) earliest = Math.min(earliest, this.#arrivals[slot]);
        }
        const wait = Number.isFinite(earliest) ? arrivalMs - earliest : -delta * this.frameMs;
        needed = Math.max(needed, wait);
      }
    }
    const slot = sequence % slots;
    this.#arrivals[slot] = arrivalMs;
    this.#arrivalSeq[slot] = sequence;
    if (needed > this.#depthMs) this.#depthMs = Math.min(this.maxMs, needed);
    return this.frames;
  }

  /** Forgets the stream (a new session); the depth goes back to the minimum. */
  reset(): void {
    this.#depthMs = this.minMs;
    this.#highest = undefined;
    this.#lastArrivalMs = undefined;
    this.#lastReorderMs = -Infinity;
    this.#arrivalSeq.fill(-1);
  }
}

/** What {@link MediaClock.observe} says about one packet. */
export interface MediaStep {
  /** The packet's position on the media clock, ms since the stream's first packet. */
  mediaMs: number;
  /**
   * Media time missing between the previous newest packet and this one beyond one frame, ms: 0
   * for a packet that follows its predecessor (however late it arrived), > 0 for a timestamp jump
   * (DTX silence, or packets that will never come), 0 for an older packet.
   */
  mediaGapMs: number;
  /** Arrival time since the previous packet, ms (large after a stall, ~0 inside a burst). */
  arrivalGapMs: number;
  /** How far the arrival clock is behind the stream's best transit, ms, for this packet. */
  lateMs: number;
}

/**
 * Places packets on the sender's clock. `behindMs(now)` says how long the stream has been
 * silent on the arrival clock beyond what the media clock explains: the time to wait before
 * concluding that a device which stopped sending is silent, not stalled.
 */
export class MediaClock {
  readonly clockRate: number;
  readonly frameMs: number;
  #firstTimestamp = 0;
  #newestMs: number | undefined;
  #lastArrivalMs = 0;
  /** Smallest arrival − media seen: the stream's fastest transit (offset of the two clocks). */
  #minTransitMs = Infinity;

  /** Throws a RangeError for a clock rate or frame length that is not positive. */
  constructor(options: { clockRate?: number; frameMs?: number } = {}) {
    this.clockRate = options.clockRate ?? OPUS_RTP_CLOCK_HZ;
    this.frameMs = options.frameMs ?? FRAME_MS;
    if (!(this.clockRate > 0)) throw new RangeError(`clock rate ${this.clockRate} Hz must be > 0`);
    if (!(this.frameMs > 0)) throw new RangeError(`frameMs ${this.frameMs} must be > 0`);
  }

  /** The newest packet's media position (ms since the first packet), or undefined before any. */
  get newestMediaMs(): number | undefined {
    return this.#newestMs;
  }

  /** Feeds one packet's RTP timestamp and arrival ms; see {@link MediaStep}. */
  observe(timestamp: number, arrivalMs: number): MediaStep {
    if (this.#newestMs === undefined) {
      this.#firstTimestamp = timestamp;
      this.#newestMs = 0;
      this.#lastArrivalMs = arrivalMs;
      this.#minTransitMs = arrivalMs;
      return { mediaMs: 0, mediaGapMs: 0, arrivalGapMs: 0, lateMs: 0 };
    }
    // Unwrap relative to the newest packet, so the 32-bit wrap never shows.
    const newestTs = this.#firstTimestamp + (this.#newestMs * this.clockRate) / 1000;
    const mediaMs = this.#newestMs + mediaDistanceMs(newestTs, timestamp, this.clockRate);
    const step = mediaMs - this.#newestMs;
    const mediaGapMs = step > this.frameMs ? step - this.frameMs : 0;
    if (step > 0) {
      this.#newestMs = mediaMs;
      // The best transit may creep up with the media: a sender clock slower than ours.
      this.#minTransitMs += step * TRANSIT_CREEP;
    }
    const arrivalGapMs = arrivalMs - this.#lastArrivalMs;
    this.#lastArrivalMs = arrivalMs;
    const transit = arrivalMs - mediaMs;
    if (transit < this.#minTransitMs) this.#minTransitMs = transit;
    return { mediaMs, mediaGapMs, arrivalGapMs, lateMs: transit - this.#minTransitMs };
  }

  /**
   * A media position on the arrival clock: when a packet at `mediaMs` would have arrived at the
   * stream's best transit. Frames of a burst get their spacing back (20 ms apart), so capture
   * times, `end.ts` and the silence count follow the media, not the Wi-Fi. Undefined before the
   * first packet.
   */
  arrivalClockMs(mediaMs: number): number | undefined {
    return this.#newestMs === undefined ? undefined : this.#minTransitMs + mediaMs;
  }

  /**
   * How long, at arrival time `nowMs`, the stream is overdue: the newest packet's media time
   * plus one frame, at the best transit seen, against `nowMs` (0 if not overdue or no packet).
   * A device that keeps sending is never overdue by more than its jitter; a stalled one grows by
   * 1 ms per ms; when the held packets arrive it drops back to ~0 without any media gap.
   */
  behindMs(nowMs: number): number {
    if (this.#newestMs === undefined) return 0;
    const due = this.#minTransitMs + this.#newestMs + this.frameMs;
    return Math.max(0, nowMs - due);
  }

  /**
   * The packet at `mediaMs` arriving at `arrivalMs` sets the best transit: the stream arrives
   * steadily but later than before (a longer path, a sender clock that waited instead of
   * sending its backlog), so lateness is measured from now on against this transit. Packets
   * that come faster lower it again, as always.
   */
  rebase(mediaMs: number, arrivalMs: number): void {
    this.#minTransitMs = arrivalMs - mediaMs;
  }

  /** Forgets the stream (a new session or a sender restart). */
  reset(): void {
    this.#newestMs = undefined;
    this.#minTransitMs = Infinity;
  }
}
