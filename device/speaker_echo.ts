/**
 * A device speaker without echo cancellation, for tests and the benchmark (issue 9, "speaker
 * echo"): the reply audio a {@link DevicePeer} receives comes back into its microphone
 * `gainDb` quieter and `delayMs` late, mixed over whatever the mic carries.
 *
 * @example
 * ```ts
 * const echo = new SpeakerEcho({ gainDb: -10, delayMs: 150 });
 * echo.heard(replySamples48k, performance.now()); // per reply packet
 * echo.mix(micFrame, true, performance.now());     // per mic frame (in place)
 * ```
 */

/** Gain and delay of the simulated echo path. */
export interface SpeakerEchoOptions {
  /** Echo level relative to the reply, dB (≤ 0). */
  gainDb: number;
  /** From receiving a reply packet to its echo at the mic, ms (≥ 0). */
  delayMs: number;
}

/** See the module doc. */
export class SpeakerEcho {
  readonly gainDb: number;
  readonly delayMs: number;
  #gain: number;
  /** Reply audio not yet due, with the time it is heard at the mic (ms). */
  #queue: { at: number; samples: Float32Array }[] = [];
  #pending: Float32Array[] = [];
  #offset = 0;

  /** Throws a RangeError naming a gain above 0 dB or a negative delay. */
  constructor(options: SpeakerEchoOptions) {
    if (!(options.gainDb <= 0) || !(options.delayMs >= 0)) {
      throw new RangeError(
        `echo gainDb ${options.gainDb} must be ≤ 0 and delayMs ${options.delayMs} ≥ 0`,
      );
    }
    this.gainDb = options.gainDb;
    this.delayMs = options.delayMs;
    this.#gain = 10 ** (options.gainDb / 20);
  }

  /** True while reply audio is still to come back into the mic. */
  get due(): boolean {
    return this.#queue.length > 0 || this.#pending.length > 0;
  }

  /** Reply samples (48 kHz) the speaker played at `at` (ms). */
  heard(samples: Float32Array, at: number): void {
    this.#queue.push({ at: at + this.delayMs, samples: samples.slice() });
  }

  /**
   * Mixes the echo due by `now` into `frame` (in place; `speech`: the frame holds mic audio,
   * else it is replaced). Returns false, leaving the frame alone, when no echo is due.
   */
  mix(frame: Float32Array, speech: boolean, now: number): boolean {
    while (this.#queue.length > 0 && this.#queue[0].at <= now) {
      this.#pending.push(this.#queue.shift()!.samples);
    }
    if (this.#pending.length === 0) return false;
    if (!speech) frame.fill(0);
    let filled = 0;
    while (filled < frame.length && this.#pending.length > 0) {
      const chunk = this.#pending[0];
      const take = Math.min(frame.length - filled, chunk.length - this.#offset);
      for (let i = 0; i < take; i++) frame[filled + i] += chunk[this.#offset + i] * this.#gain;
      filled += take;
      this.#offset += take;
      if (this.#offset === chunk.length) {
        this.#pending.shift();
        this.#offset = 0;
      }
    }
    return true;
  }
}
