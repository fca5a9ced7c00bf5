/**
 * One utterance's int16 PCM, grown as it comes: one second first, then doubled, at most
 * {@link MAX_UTTERANCE_MS} (what a v1 frame carries, and what the segmenter cuts at). Used for
 * v1's whole-utterance frame, v2's replay copy, and the audio held back after a `pause`.
 *
 * @example
 * ```ts
 * const buffer = new UtteranceBuffer(16000);
 * buffer.append(pcm);
 * send(buffer.view());
 * buffer.clear();
 * ```
 */
import { MAX_UTTERANCE_MS } from "./utterance_segmenter.ts";

/** Bytes per int16 sample. */
const BYTES_PER_SAMPLE = 2;

/** See the module doc. */
export class UtteranceBuffer {
  #bytes: Uint8Array | undefined;
  #length = 0;
  #rate: number;

  /** `rate`: samples per second of the PCM it will hold (Hz). */
  constructor(rate: number) {
    this.#rate = rate;
  }

  /** Bytes held. */
  get length(): number {
    return this.#length;
  }

  /** Appends int16 LE PCM; what goes past {@link MAX_UTTERANCE_MS} is cut off. */
  append(pcm: Uint8Array): void {
    const bytesPerSecond = this.#rate * BYTES_PER_SAMPLE;
    const max = (MAX_UTTERANCE_MS / 1000) * bytesPerSecond;
    if (!this.#bytes || this.#length + pcm.length > this.#bytes.length) {
      const size = Math.min(
        max,
        Math.max(bytesPerSecond, (this.#bytes?.length ?? 0) * 2, this.#length + pcm.length),
      );
      const grown = new Uint8Array(size);
      if (this.#bytes) grown.set(this.#bytes.subarray(0, this.#length));
      this.#bytes = grown;
    }
    const take = Math.min(pcm.length, this.#bytes.length - this.#length);
    this.#bytes.set(pcm.subarray(0, take), this.#length);
    this.#length += take;
  }

  /** The bytes so far (a view, valid until the next append or clear). */
  view(): Uint8Array {
    return (this.#bytes ?? new Uint8Array(0)).subarray(0, this.#length);
  }

  /** Empties the buffer and lets its memory go (so an earlier view stays valid). */
  clear(): void {
    this.#bytes = undefined;
    this.#length = 0;
  }
}
