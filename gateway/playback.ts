/**
 * Reply audio out (spec 5.6 "Sending Audio", 7.2): per device a {@link PlaybackQueue} of reply
 * samples and one gateway-wide {@link PlaybackClock} that pulls one 20 ms frame from every
 * playing queue per tick.
 *
 * Frames go out at the rate the server sent (the wire's 8/16/24/48 kHz are all rates libopus
 * encodes from; the device's decoder plays them at its own rate); only another rate is resampled
 * to 48 kHz here. Resampling every reply to 48 kHz in JS cost ~12 % of a busy gateway (issue 14).
 * One turn plays at one rate: a chunk at another rate than its turn's first is resampled to it.
 *
 * The clock is shared/media's drift-free {@link FrameClock} (no drift, no burst after a stall).
 * It runs only while some queue has audio: an idle device costs nothing (no silence is encoded
 * or sent).
 *
 * Barge-in: {@link PlaybackQueue.flush} empties a queue synchronously, so not one more frame of
 * it is sent after the current tick.
 *
 * @example
 * ```ts
 * const clock = new PlaybackClock();
 * const queue = new PlaybackQueue({ send: (frame) => encodeAndSend(frame) });
 * queue.listen({ drained: (turn, playedMs) => done(turn, playedMs) });
 * clock.add(queue);
 * queue.enqueue("t1", replySamples, 24000); // plays from the next tick
 * ```
 */
import { Resampler } from "../shared/audio.ts";
import { type ClockStats, FrameClock } from "../shared/media/frame_clock.ts";
import {
  isOpusPcmRate,
  OPUS_FRAME_MS,
  OPUS_FRAME_SAMPLES,
  OPUS_RATE,
} from "../shared/media/opus_codec.ts";

/** Where a queue's frames go (the device's encoder and RTP sender). */
export interface PlaybackSink {
  /**
   * One 20 ms frame (a view, valid during the call) at `frame.length × 50` Hz, one of the Opus
   * PCM rates; `first` starts a talkspurt.
   */
  send(frame: Float32Array, first: boolean): void;
}

/** Who follows a queue's progress (the device's conversation). */
export interface PlaybackListener {
  /** A frame of `turn` was sent. */
  frameSent?(turn: string): void;
  /** All queued audio of `turn` has been sent. */
  drained?(turn: string, playedMs: number): void;
}

interface Chunk {
  turn: string;
  samples: Float32Array;
  /** Hz, the turn's playback rate. */
  rate: number;
  offset: number;
}

/** The rate a turn plays at, and the resamplers to it for chunks at other rates (by input rate). */
interface TurnRate {
  rate: number;
  resamplers: Map<number, Resampler>;
}

/**
 * Most reply audio one device may have waiting (2 min): more than any spoken answer, and a bound
 * on memory (48 kHz float, ~23 MB) when a server streams much faster than real time.
 */
export const MAX_QUEUED_MS = 120_000;

/** One device's reply audio, as chunks consumed frame by frame. */
export class PlaybackQueue {
  #sink: PlaybackSink;
  #listener: PlaybackListener = {};
  #chunks: Chunk[] = [];
  #frame = new Float32Array(OPUS_FRAME_SAMPLES);
  /** Views of #frame, one per rate played (none allocated per tick). */
  #frames = new Map<number, Float32Array>();
  #rates = new Map<string, TurnRate>();
  #turn: string | undefined;
  #playedFrames = 0;
  #talking = false;
  #ended = new Set<string>();
  /** Frames sent since creation, for metrics. */
  framesSent = 0;

  constructor(sink: PlaybackSink) {
    this.#sink = sink;
  }

  /** Sets who hears of sent frames and drained turns (one listener). */
  listen(listener: PlaybackListener): void {
    this.#listener = listener;
  }

  /** The turn whose audio is playing or queued, if any. */
  get turn(): string | undefined {
    return this.#turn;
  }

  /** True while audio is queued. */
  get playing(): boolean {
    return this.#chunks.length > 0;
  }

  /** Milliseconds of the current turn's reply sent so far. */
  get playedMs(): number {
    return this.#playedFrames * OPUS_FRAME_MS;
  }

  /** Queued milliseconds not yet sent. */
  get queuedMs(): number {
    let ms = 0;
    for (const chunk of this.#chunks) {
      ms += ((chunk.samples.length - chunk.offset) / chunk.rate) * 1000;
    }
    return ms;
  }

  /**
   * Queues reply audio of `turn` at `rate` Hz (copied). The turn's first chunk sets its
   * playback rate (its own when libopus encodes from it, else 48 kHz); chunks at another rate
   * are resampled to it as one stream. Returns false, queuing nothing, when the queue already
   * holds {@link MAX_QUEUED_MS}.
   */
  enqueue(turn: string, samples: Float32Array, rate: number): boolean {
    if (this.queuedMs >= MAX_QUEUED_MS) return false;
    if (this.#turn !== turn) {
      this.#turn = turn;
      this.#playedFrames = 0;
      // Turns that will get no more audio (replaced without finish) leave no state behind.
      for (const other of this.#rates.keys()) {
        if (!this.#chunks.some((chunk) => chunk.turn === other)) this.#rates.delete(other);
      }
    }
    let playback = this.#rates.get(turn);
    if (!playback) {
      playback = { rate: isOpusPcmRate(rate) ? rate : OPUS_RATE, resamplers: new Map() };
      this.#rates.set(turn, playback);
    }
    let out: Float32Array;
    if (rate === playback.rate) {
      out = samples.slice();
    } else {
      let resampler = playback.resamplers.get(rate);
      if (!resampler) {
        resampler = new Resampler(rate, playback.rate);
        playback.resamplers.set(rate, resampler);
      }
      out = resampler.process(samples).slice();
    }
    if (out.length > 0) this.#chunks.push({ turn, samples: out, rate: playback.rate, offset: 0 });
    return true;
  }

  /** The turn's reply is complete: emit the resampler's tail and pad the last frame. */
  finish(turn: string): void {
    const playback = this.#rates.get(turn);
    this.#rates.delete(turn);
    for (const resampler of playback?.resamplers.values() ?? []) {
      const tail = resampler.flush();
      if (tail.length > 0 && this.#turn === turn) {
        this.#chunks.push({ turn, samples: tail, rate: playback!.rate, offset: 0 });
      }
    }
    this.#ended.add(turn);
    if (this.#chunks.length === 0 && this.#turn === turn) this.#drained(turn);
  }

  /** Barge-in: drops everything queued now; returns how much of the turn was played (ms). */
  flush(): number {
    const played = this.playedMs;
    this.#chunks.length = 0;
    this.#rates.clear();
    this.#ended.clear();
    this.#talking = false;
    return played;
  }

  /** Called by the clock: sends one frame if audio is queued; returns whether it did. */
  tick(): boolean {
    if (this.#chunks.length === 0) {
      this.#talking = false;
      return false;
    }
    const frame = this.#frameAt(this.#chunks[0].rate);
    let filled = 0;
    let turn = this.#chunks[0].turn;
    while (filled < frame.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      if (chunk.turn !== turn) break;
      const take = Math.min(frame.length - filled, chunk.samples.length - chunk.offset);
      frame.set(chunk.samples.subarray(chunk.offset, chunk.offset + take), filled);
      chunk.offset += take;
      filled += take;
      if (chunk.offset === chunk.samples.length) this.#chunks.shift();
      // A turn's last chunk pads with silence instead of borrowing from the next turn.
      if (this.#chunks.length === 0 || this.#chunks[0].turn !== turn) break;
      turn = this.#chunks[0].turn;
    }
    // Underrun mid-reply (server still synthesizing): pad this frame with silence.
    frame.fill(0, filled);
    const first = !this.#talking;
    this.#talking = true;
    this.#playedFrames++;
    this.framesSent++;
    this.#sink.send(frame, first);
    this.#listener.frameSent?.(turn);
    const next = this.#chunks[0];
    if (next === undefined || next.turn !== turn) {
      if (this.#ended.has(turn)) this.#drained(turn);
    }
    return true;
  }

  /** The 20 ms frame buffer at `rate` Hz. */
  #frameAt(rate: number): Float32Array {
    let frame = this.#frames.get(rate);
    if (!frame) {
      frame = this.#frame.subarray(0, (rate * OPUS_FRAME_MS) / 1000);
      this.#frames.set(rate, frame);
    }
    return frame;
  }

  #drained(turn: string): void {
    this.#ended.delete(turn);
    this.#listener.drained?.(turn, this.playedMs);
  }
}

/** One 20 ms clock for every device's queue; see the module doc. */
export class PlaybackClock {
  #queues = new Set<PlaybackQueue>();
  #clock: FrameClock;
  #onError: (error: unknown) => void;

  constructor(options: { now?: () => number; onError?: (error: unknown) => void } = {}) {
    this.#onError = options.onError ?? (() => {});
    this.#clock = new FrameClock({
      now: options.now,
      frame: () => this.#tick(),
      keepRunning: (active) => active || this.#anyPlaying(),
    });
  }

  add(queue: PlaybackQueue): void {
    this.#queues.add(queue);
  }

  remove(queue: PlaybackQueue): void {
    this.#queues.delete(queue);
  }

  /** Call after enqueuing: starts the clock if it is idle. The first frame goes out at once. */
  wake(): void {
    this.#clock.start();
  }

  /** Counters since creation; the worst lateness is since the previous call (then reset). */
  takeStats(): ClockStats {
    return this.#clock.takeStats();
  }

  /** Stops the clock (shutdown). */
  stop(): void {
    this.#clock.stop();
  }

  #anyPlaying(): boolean {
    for (const queue of this.#queues) if (queue.playing) return true;
    return false;
  }

  /** One frame from every playing queue; returns whether any sent one. */
  #tick(): boolean {
    let active = false;
    for (const queue of this.#queues) {
      try {
        if (queue.tick()) active = true;
      } catch (error) {
        // One broken device must not stop the others' audio.
        this.#onError(error);
      }
    }
    return active;
  }
}
