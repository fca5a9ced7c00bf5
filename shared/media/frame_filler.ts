/**
 * Cuts a stream of samples (or bytes) that arrives in pieces of any size into fixed-size frames:
 * the one loop behind Opus's 20 ms frames from 10/40/60 ms packets, the utterance's 20 ms frames
 * after resampling, and the AI link's 100 ms audio chunks. The frame is preallocated and reused.
 *
 * @example
 * ```ts
 * const filler = new FrameFiller(new Float32Array(960), (frame) => process(frame));
 * filler.push(decoded); // calls process() once per whole frame, keeps the rest
 * ```
 */

/** A typed array a {@link FrameFiller} can fill. */
export type FrameArray = Float32Array | Uint8Array;

/** See the module doc. */
export class FrameFiller<T extends FrameArray> {
  readonly frame: T;
  #fill = 0;
  #full: (frame: T) => void;

  /** `frame`: the buffer to fill (its length is the frame size); `full`: called when it is. */
  constructor(frame: T, full: (frame: T) => void) {
    this.frame = frame;
    this.#full = full;
  }

  /** Samples in the frame so far (less than its length between calls). */
  get fill(): number {
    return this.#fill;
  }

  /** Appends `samples`; every time the frame is full, `full` gets it (a view valid during the call). */
  push(samples: T): void {
    const frame = this.frame;
    let offset = 0;
    while (offset < samples.length) {
      const take = Math.min(frame.length - this.#fill, samples.length - offset);
      frame.set(samples.subarray(offset, offset + take), this.#fill);
      this.#fill += take;
      offset += take;
      if (this.#fill === frame.length) {
        this.#fill = 0;
        this.#full(frame);
      }
    }
  }

  /** The partial frame so far (a view), and empties it. */
  take(): T {
    const part = this.frame.subarray(0, this.#fill) as T;
    this.#fill = 0;
    return part;
  }

  /** Drops the partial frame. */
  reset(): void {
    this.#fill = 0;
  }
}
