/**
 * Puts RTP packets back in sequence order: duplicates and late packets are dropped, a packet
 * that arrives early waits in a small window for the gap before it to fill, and a gap that does
 * not fill in time is reported as lost (so the decoder conceals it). In-order packets pass
 * straight through: the window adds delay only while a packet is actually missing.
 *
 * @example
 * ```ts
 * const order = new PacketOrder((payload) => payload ? decode(payload) : conceal());
 * order.push(10, a); order.push(12, c); order.push(11, b); // emits a, b, c
 * ```
 */

/** RTP sequence numbers are 16 bits (RFC 3550). */
const SEQUENCE_MODULO = 0x10000;
/** Packets held while waiting for a missing one: a swapped pair is repaired, and a loss delays
 * what follows by at most one 20 ms frame (latency matters more than rare deep reordering). */
export const DEFAULT_REORDER_WINDOW = 2;
/** A jump this far ahead or behind means the sender restarted its sequence: resynchronize. */
const RESYNC_DISTANCE = 1000;

/** Called with each packet payload in order, or `null` for a packet declared lost. `T` is the
 * payload type: Opus bytes for audio, a whole RTP packet for video (gateway/video/). */
export type EmitPacket<T = Uint8Array> = (payload: T | null) => void;

/** Counters for metrics. */
export interface PacketOrderStats {
  received: number;
  lost: number;
  duplicates: number;
  late: number;
  reordered: number;
}

/** Signed distance from `a` to `b` modulo 2^16, in -32768..32767. */
export function sequenceDistance(a: number, b: number): number {
  const d = (b - a + SEQUENCE_MODULO) % SEQUENCE_MODULO;
  return d >= SEQUENCE_MODULO / 2 ? d - SEQUENCE_MODULO : d;
}

/** Reorders one RTP stream; see the module doc. */
export class PacketOrder<T = Uint8Array> {
  readonly stats: PacketOrderStats = { received: 0, lost: 0, duplicates: 0, late: 0, reordered: 0 };
  #emit: EmitPacket<T>;
  #window: number;
  #expected: number | undefined;
  /** `#held[d]` holds sequence `#expected + d`; slot 0 is always empty between calls. */
  #held: (T | undefined)[];
  #heldCount = 0;

  constructor(emit: EmitPacket<T>, options: { window?: number } = {}) {
    this.#emit = emit;
    this.#window = options.window ?? DEFAULT_REORDER_WINDOW;
    if (!Number.isInteger(this.#window) || this.#window < 0) {
      throw new RangeError(`window ${this.#window} is not a non-negative integer`);
    }
    this.#held = new Array(this.#window + 1).fill(undefined);
  }

  /** Feeds one packet by its RTP sequence number. */
  push(sequence: number, payload: T): void {
    this.stats.received++;
    if (this.#expected === undefined) this.#expected = sequence;
    let distance = sequenceDistance(this.#expected, sequence);
    if (distance < -RESYNC_DISTANCE || distance > RESYNC_DISTANCE) {
      this.reset();
      this.#expected = sequence;
      distance = 0;
    }
    if (distance < 0) {
      this.stats.late++;
      return;
    }
    // Further ahead than the window can hold: the oldest gaps are lost.
    while (distance > this.#window) {
      this.#loseExpected();
      distance--;
    }
    if (distance === 0) {
      this.#deliver(payload);
      this.#drain();
      return;
    }
    if (this.#held[distance] !== undefined) {
      this.stats.duplicates++;
      return;
    }
    this.#held[distance] = payload;
    this.#heldCount++;
    this.stats.reordered++;
    while (this.#heldCount >= this.#window && this.#heldCount > 0) this.#loseExpected();
  }

  /** Forgets the stream (e.g. a new session); nothing is emitted. */
  reset(): void {
    this.#expected = undefined;
    this.#held.fill(undefined);
    this.#heldCount = 0;
  }

  #advance(): void {
    this.#expected = (this.#expected! + 1) % SEQUENCE_MODULO;
    for (let i = 0; i < this.#window; i++) this.#held[i] = this.#held[i + 1];
    this.#held[this.#window] = undefined;
  }

  #deliver(payload: T | null): void {
    this.#emit(payload);
    this.#advance();
  }

  #loseExpected(): void {
    this.stats.lost++;
    this.#deliver(null);
    this.#drain();
  }

  #drain(): void {
    let next = this.#held[0];
    while (next !== undefined) {
      this.#held[0] = undefined;
      this.#heldCount--;
      this.#deliver(next);
      next = this.#held[0];
    }
  }
}
