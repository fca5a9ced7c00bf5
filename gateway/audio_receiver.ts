/**
 * One device's RTP audio on the media clock (issue 9, "silence on the media clock";
 * docs/turn_taking.md section 2): packets in, in sequence order, each with its capture time,
 * to the {@link AudioInput}; silence only where the media clock has a gap.
 *
 *   RTP packet ─▶ {@link MediaClock} (where it sits on the sender's clock)
 *              ─▶ {@link PlayoutDepth} ─▶ {@link PacketOrder} window (adaptive reorder wait)
 *              ─▶ in order: payload (or `null`: never arrived, concealed) at its capture time
 *
 * - A packet's capture time is its media position at the stream's best transit
 *   ({@link MediaClock.arrivalClockMs}): a burst of held packets keeps its 20 ms spacing, so
 *   the segmenter, `end.ts` and every latency follow the media, not the Wi-Fi.
 * - A timestamp jump between consecutive packets (DTX, a sender that paused) is silence of that
 *   length. Packets that never arrive are concealed when the reorder window gives up on them.
 * - A device that stops sending entirely is heard as silent only once it is
 *   {@link DEFAULT_STALL_HOLD_MS} (AUDIO_STALL_HOLD_MS) overdue on the media clock, checked
 *   every {@link STALL_CHECK_MS} while an utterance is open: a 400 ms Wi-Fi stall followed by a
 *   burst of the held packets is not silence. Packets older than silence already fed are late
 *   and dropped (counted in `stats.late`).
 *
 * @example
 * ```ts
 * const receiver = new AudioReceiver(input, { stallHoldMs: 1000 });
 * track.onReceiveRtp.subscribe((rtp) =>
 *   receiver.receive(rtp.header.sequenceNumber, rtp.header.timestamp, rtp.payload));
 * ```
 */
import { InterarrivalJitter, MAX_DEPTH_MS, MediaClock, PlayoutDepth } from "./jitter_estimator.ts";
import { PacketOrder } from "./packet_order.ts";

/** Devices send 20 ms Opus frames (spec 5.6). */
export const FRAME_MS = 20;
/**
 * A device silent this long beyond what the media clock explains is heard as silent
 * (AUDIO_STALL_HOLD_MS): longer than the Wi-Fi stalls seen in homes (issue 9 lists 400 ms),
 * short enough that a device that vanished mid-sentence still ends its turn within ~1.3 s.
 */
export const DEFAULT_STALL_HOLD_MS = 1000;
/** How often an open utterance checks whether its device is overdue. */
export const STALL_CHECK_MS = 100;
/**
 * A timestamp gap longer than 5 s is a sender restart or a talkspurt long after the utterance
 * ended: only enough silence to end any utterance is fed, not the whole gap.
 */
const MAX_GAP_MS = 5000;
/**
 * A packet 10 s behind the newest on the media clock is no reordering: the sender restarted its
 * timestamps. The clock starts over from it rather than taking every later packet as late.
 */
const RESTART_BEHIND_MS = 10_000;
/** Reorder window slots: the deepest playout depth, in frames, plus the packet that waits. */
const MAX_WINDOW = Math.ceil(MAX_DEPTH_MS / FRAME_MS) + 1;

/** Where the receiver's audio goes (`audio_input.ts` {@link AudioInput} is one). */
export interface ReceiverSink {
  /** One payload in order, or `null` for a packet that never arrived; `at`: capture time (ms). */
  push(payload: Uint8Array | null, at: number): void;
  /** `frames` frames of silence starting at capture time `at` (ms). */
  pushSilence(frames: number, at: number): void;
  /** True while an utterance is open (only then is a stalled device watched). */
  readonly inUtterance: boolean;
}

/** Options of {@link AudioReceiver}. */
export interface AudioReceiverOptions {
  /** AUDIO_STALL_HOLD_MS (default {@link DEFAULT_STALL_HOLD_MS}). */
  stallHoldMs?: number;
  /** The arrival clock (ms); default `Date.now`, the gateway's clock for every latency. */
  now?: () => number;
}

/** Counters for metrics. */
export interface AudioReceiverStats {
  received: number;
  /** Packets that never arrived in time: concealed. */
  lost: number;
  /** Packets that came after their place was played (reordered too far, or after a stall). */
  late: number;
  duplicates: number;
  reordered: number;
  /** Silence fed for timestamp gaps (DTX) and stalled devices, ms. */
  silenceMs: number;
  /** Stalls longer than the hold, heard as silence. */
  stalls: number;
}

interface Packet {
  payload: Uint8Array;
  mediaMs: number;
}

/** See the module doc. */
export class AudioReceiver {
  readonly stallHoldMs: number;
  #sink: ReceiverSink;
  #now: () => number;
  #clock = new MediaClock({ frameMs: FRAME_MS });
  #jitter = new InterarrivalJitter();
  #depth = new PlayoutDepth({ frameMs: FRAME_MS });
  #order: PacketOrder<Packet>;
  /** Media position just after the last frame handed to the sink, or undefined before any. */
  #fedUntil: number | undefined;
  /** Media position of the last packet in sequence order, and the losses counted since. */
  #lastPacketMs: number | undefined;
  #lostSince = 0;
  #late = 0;
  #silenceMs = 0;
  #stalls = 0;
  /** The current overdue spell was already counted as a stall. */
  #stalled = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /** Throws a RangeError when `stallHoldMs` is not a number of ms ≥ 0. */
  constructor(sink: ReceiverSink, options: AudioReceiverOptions = {}) {
    this.#sink = sink;
    this.#now = options.now ?? Date.now;
    this.stallHoldMs = options.stallHoldMs ?? DEFAULT_STALL_HOLD_MS;
    if (!(this.stallHoldMs >= 0) || !Number.isFinite(this.stallHoldMs)) {
      throw new RangeError(`stallHoldMs ${this.stallHoldMs} must be a finite number of ms ≥ 0`);
    }
    this.#order = new PacketOrder<Packet>((packet) => this.#inOrder(packet), {
      maxWindow: MAX_WINDOW,
    });
  }

  /** Counters since creation. */
  get stats(): AudioReceiverStats {
    const s = this.#order.stats;
    return {
      received: s.received,
      lost: s.lost,
      late: s.late + this.#late,
      duplicates: s.duplicates,
      reordered: s.reordered,
      silenceMs: this.#silenceMs,
      stalls: this.#stalls,
    };
  }

  /** RFC 3550 interarrival jitter, ms. */
  get jitterMs(): number {
    return this.#jitter.jitterMs;
  }

  /** The current reorder wait, ms (adapts to the reordering and jitter seen). */
  get depthMs(): number {
    return this.#depth.depthMs;
  }

  /** One RTP packet: sequence number, timestamp (48 kHz), Opus payload; `arrivalMs` default now. */
  receive(sequence: number, timestamp: number, payload: Uint8Array, arrivalMs = this.#now()): void {
    if (this.#closed) return;
    const jitter = this.#jitter.update(timestamp, arrivalMs);
    // The window holds the packets that arrive while one is missing: depth frames, plus one.
    this.#order.window = this.#depth.observe(sequence, arrivalMs, jitter) + 1;
    let step = this.#clock.observe(timestamp, arrivalMs);
    if (step.mediaMs < (this.#clock.newestMediaMs ?? 0) - RESTART_BEHIND_MS) {
      this.#clock.reset();
      this.#fedUntil = undefined;
      this.#lastPacketMs = undefined;
      step = this.#clock.observe(timestamp, arrivalMs);
    }
    if (step.lateMs >= this.stallHoldMs && step.mediaMs === this.#clock.newestMediaMs) {
      // The newest packet arrives, yet a stall hold late: the stream is delayed, not stalled
      // (a sender whose clock waited instead of sending its backlog). Without this, every
      // utterance would be cut by the stall watch and its packets dropped as late until the
      // transit's creep caught up, 1 ms per second.
      this.#clock.rebase(step.mediaMs, arrivalMs);
    }
    if (this.#clock.behindMs(arrivalMs) < this.stallHoldMs) this.#stalled = false;
    this.#order.push(sequence, { payload, mediaMs: step.mediaMs });
    this.#watch();
  }

  /** Stops the stall watch; later packets are ignored. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** A packet (or a loss) in sequence order. */
  #inOrder(packet: Packet | null): void {
    if (packet === null) {
      // Where the lost packet was on the media clock: one frame per sequence number.
      const at = this.#lastPacketMs === undefined
        ? this.#fedUntil ?? 0
        : this.#lastPacketMs + ++this.#lostSince * FRAME_MS;
      // Its place may already be silence of a stall: nothing more to conceal.
      if (this.#fedUntil !== undefined && at < this.#fedUntil - FRAME_MS / 2) return;
      this.#fedUntil = at + FRAME_MS;
      this.#sink.push(null, this.#captureAt(at));
      return;
    }
    const { mediaMs } = packet;
    this.#lastPacketMs = mediaMs;
    this.#lostSince = 0;
    if (this.#fedUntil !== undefined) {
      // Half a frame of slack: timestamps of 20 ms frames are exact, rounding is not.
      if (mediaMs < this.#fedUntil - FRAME_MS / 2) {
        this.#late++; // its place was already filled by stall silence
        return;
      }
      const gap = mediaMs - this.#fedUntil;
      if (gap >= FRAME_MS / 2) this.#silence(Math.round(Math.min(gap, MAX_GAP_MS) / FRAME_MS));
    }
    this.#fedUntil = mediaMs + FRAME_MS;
    this.#sink.push(packet.payload, this.#captureAt(mediaMs));
  }

  /** Feeds `frames` of silence at the fed position. */
  #silence(frames: number): void {
    if (frames <= 0) return;
    const at = this.#fedUntil ?? 0;
    this.#sink.pushSilence(frames, this.#captureAt(at));
    this.#fedUntil = at + frames * FRAME_MS;
    this.#silenceMs += frames * FRAME_MS;
  }

  #captureAt(mediaMs: number): number {
    return this.#clock.arrivalClockMs(mediaMs) ?? this.#now();
  }

  /** While an utterance is open, checks every {@link STALL_CHECK_MS} that the device is not overdue. */
  #watch(): void {
    if (this.#timer !== undefined || this.#closed || !this.#sink.inUtterance) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed || !this.#sink.inUtterance) return;
      this.checkStall(this.#now());
      this.#watch();
    }, STALL_CHECK_MS);
  }

  /**
   * A device overdue by the hold or more at `now` (ms, arrival clock) is heard as silent:
   * silence up to where its media should be now (the packets it still owes are dropped as late
   * if they come after all). The stall timer calls it every {@link STALL_CHECK_MS} while an
   * utterance is open.
   */
  checkStall(now: number): void {
    const behind = this.#clock.behindMs(now);
    const newest = this.#clock.newestMediaMs;
    if (behind < this.stallHoldMs || newest === undefined || this.#fedUntil === undefined) return;
    if (!this.#stalled) {
      this.#stalled = true;
      this.#stalls++;
    }
    const due = newest + FRAME_MS + behind;
    const frames = Math.floor((due - this.#fedUntil) / FRAME_MS);
    this.#silence(Math.min(frames, MAX_GAP_MS / FRAME_MS));
  }
}
