/**
 * One drift-free 20 ms frame clock (spec 5.5's frame size), for whatever sends audio in real
 * time: the gateway's playback of every device's reply, and the software device's microphone.
 *
 * Frame n is due at `start + n × 20 ms`, never "20 ms after the last one", so timer jitter does
 * not accumulate; a late wake-up runs every frame that came due. After a stall of more than
 * {@link MAX_CATCH_UP_FRAMES} (a capture clock: `maxCatchUpFrames`) the clock re-anchors on now
 * instead of bursting the backlog. It
 * runs from {@link FrameClock.start} while its owner says so (`keepRunning`): an idle owner
 * costs nothing.
 *
 * @example
 * ```ts
 * const clock = new FrameClock({ frame: () => sendOneFrame(), keepRunning: () => hasAudio() });
 * clock.start(); // the first frame runs at once
 * ```
 */
import { OPUS_FRAME_MS } from "./opus_codec.ts";

/** A stall longer than 3 frames (60 ms) is skipped, not caught up in a burst. */
export const MAX_CATCH_UP_FRAMES = 3;

/**
 * A capture clock catches up to 2 s of stall in one burst: a microphone's audio keeps coming
 * while its process waits (the sound card buffers it), so the stream stays on real time; longer
 * than that and the process was gone, not slow.
 */
export const MAX_CAPTURE_CATCH_UP_FRAMES = 100;

/**
 * A frame run a whole frame (20 ms) or more after its due time counts as late: it leaves when
 * the next one is already due, so a device with a one-frame jitter buffer hears a gap.
 */
export const LATE_TICK_MS = 20;

/** What the clock did, for metrics and the benchmark's capacity sweep. */
export interface ClockStats {
  /** Frame ticks run. */
  ticks: number;
  /** Ticks that ran {@link LATE_TICK_MS} or more after they were due. */
  lateTicks: number;
  /** Re-anchors after a stall longer than {@link MAX_CATCH_UP_FRAMES}. */
  stalls: number;
  /** Worst lateness since the last {@link FrameClock.takeStats}, in ms. */
  maxLateMs: number;
}

/** Options of {@link FrameClock}. */
export interface FrameClockOptions {
  /** Runs one frame; returns whether it produced anything. */
  frame(): boolean;
  /**
   * After the frames of one wake-up: whether the clock goes on. `active` is what the last
   * frame returned (true when woken before any frame was due).
   */
  keepRunning(active: boolean): boolean;
  /** Milliseconds clock; default performance.now(). */
  now?: () => number;
  /**
   * Frames caught up in a burst after a late wake-up; a longer stall re-anchors. Default
   * {@link MAX_CATCH_UP_FRAMES} (playback: a device's jitter buffer takes no bigger burst). A
   * capture clock (a microphone) catches up its whole backlog, as a sound card's buffer would:
   * {@link MAX_CAPTURE_CATCH_UP_FRAMES}.
   */
  maxCatchUpFrames?: number;
}

/** See the module doc. */
export class FrameClock {
  #o: FrameClockOptions;
  #now: () => number;
  #maxCatchUp: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #start = 0;
  #ticks = 0;
  #stats: ClockStats = { ticks: 0, lateTicks: 0, stalls: 0, maxLateMs: 0 };

  constructor(options: FrameClockOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
    this.#maxCatchUp = options.maxCatchUpFrames ?? MAX_CATCH_UP_FRAMES;
  }

  /** True while a next frame is scheduled. */
  get running(): boolean {
    return this.#timer !== undefined;
  }

  /** Starts the clock if it is idle; the first frame runs at once. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#start = this.#now();
    this.#ticks = 0;
    this.#run();
  }

  /** Stops the clock. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Counters since creation; the worst lateness is since the previous call (then reset). */
  takeStats(): ClockStats {
    const stats = { ...this.#stats };
    this.#stats.maxLateMs = 0;
    return stats;
  }

  #run = (): void => {
    this.#timer = undefined;
    const now = this.#now();
    let due = Math.floor((now - this.#start) / OPUS_FRAME_MS) + 1 - this.#ticks;
    // How late the first due frame is; the k-th of a catch-up burst is 20 ms less late.
    const late = due > 0 ? now - (this.#start + this.#ticks * OPUS_FRAME_MS) : 0;
    this.#stats.maxLateMs = Math.max(this.#stats.maxLateMs, late);
    if (due > this.#maxCatchUp) {
      // Stalled: re-anchor on now, run one frame, don't burst the backlog.
      this.#stats.stalls++;
      this.#stats.lateTicks++;
      this.#start = now;
      this.#ticks = 0;
      due = 1;
    } else if (due > 0) {
      this.#stats.lateTicks += Math.min(due, Math.floor(late / LATE_TICK_MS));
    }
    if (due > 0) this.#stats.ticks += due;
    let active = due <= 0; // Woken early: nothing due yet, keep the clock.
    for (let i = 0; i < due; i++) {
      this.#ticks++;
      active = this.#o.frame();
    }
    if (!this.#o.keepRunning(active)) return;
    const next = this.#start + this.#ticks * OPUS_FRAME_MS;
    this.#timer = setTimeout(this.#run, Math.max(0, next - this.#now()));
  };
}
