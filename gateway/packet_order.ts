/**
 * Puts RTP packets back in sequence order: duplicates and late packets are dropped, a packet
 * that arrives early waits in a small window for the gap before it to fill, and a gap that does
 * not fill in time is reported as lost (so the decoder conceals it). In-order packets pass
 * straight through: the window adds delay only while a packet is actually missing.
 *
 * The window may change while the stream runs ({@link PacketOrder.window}, up to the
 * `maxWindow` it was made with): the audio path sets it per packet from the reorder depth the
 * stream shows (`PlayoutDepth` of `jitter_estimator.ts`, issue 9), so a device on busy
 * Wi-Fi that reorders by 60 ms loses nothing while a clean link keeps the one-frame wait.
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

  /**
   * `window`: packets held while one is missing (default {@link DEFAULT_REORDER_WINDOW});
   * `maxWindow`: the largest window {@link window} may later be set to (default `window`).
   * Throws a RangeError naming a size that is not an integer ≥ 0 or a window over the maximum.
   */
  constructor(emit: EmitPacket<T>, options: { window?: number; maxWindow?: number } = {}) {
    this.#emit = emit;
    this.#window = options.window ?? DEFAULT_REORDER_WINDOW;
    const max = options.maxWindow ?? this.#window;
    for (const [key, value] of [["window", this.#window], ["maxWindow", max]] as const) {
      if (!Number.isInteger(value) || value < 0) {
        throw new RangeError(`${key} ${value} is not a non-negative integer`);
      }
    }
    if (this.#window > max) throw new RangeError(`window ${this.#window} > maxWindow ${max}`);
    this.#held = new Array(max + 1).fill(undefined);
  }

  /** Packets held at most while one is missing. */
  get window(): number {
    return this.#window;
  }

  /**
   * Changes the window (clamped to 0..maxWindow). Shrinking below what is held declares the
   * oldest gaps lost at once, emitting what they held back.
   */
  set window(size: number) {
    const max = this.#held.length - 1;
    const next = Math.max(0, Math.min(max, Math.floor(size)));
    this.#window = next;
    if (this.#expected === undefined) return;
    while (this.#heldCount > 0 && (this.#heldCount >= next || this.#heldBeyond(next))) {
      this.#loseExpected();
    }
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

  /** True when a packet is held further ahead than `window` allows. */
  #heldBeyond(window: number): boolean {
    for (let d = window + 1; d < this.#held.length; d++) {
      if (this.#held[d] !== undefined) return true;
    }
    return false;
  }

  #advance(): void {
    this.#expected = (this.#expected! + 1) % SEQUENCE_MODULO;
    const last = this.#held.length - 1;
    for (let i = 0; i < last; i++) this.#held[i] = this.#held[i + 1];
    this.#held[last] = undefined;
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
