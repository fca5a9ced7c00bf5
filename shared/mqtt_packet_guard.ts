/**
 * Refuses oversized MQTT packets from the bytes on the wire, before any MQTT parser buffers them:
 * it reads each packet's fixed header (type and "remaining length", MQTT 3.1.1 section 2.2) and,
 * for a PUBLISH, its topic, then skips the body without keeping it. The embedded broker feeds it
 * every chunk it reads and drops a connection whose packet is over the topic's limit
 * (`packetLimitFor` in mqtt_acl.ts), so a 100 MB publish costs one socket read, not 100 MB.
 *
 * @example
 * ```ts
 * import { PacketGuard } from "@naila/shared/mqtt_packet_guard";
 * const guard = new PacketGuard(() => 1024);
 * guard.feed(new Uint8Array([0x30, 0x80, 0x08])); // PUBLISH of 1024 bytes: { bytes: 1027, ... }
 * ```
 */

/** A packet over its limit: its total size in bytes, its type and (PUBLISH) topic. */
export interface OversizedPacket {
  bytes: number;
  limit: number;
  type: number;
  topic?: string;
}

/** A fixed header that cannot be MQTT (a remaining length of more than 4 bytes). */
export interface MalformedPacket {
  malformed: string;
}

/** MQTT control packet type of PUBLISH (MQTT 3.1.1 section 2.2.1). */
const PUBLISH = 3;
/** The remaining length takes at most 4 bytes (MQTT 3.1.1 section 2.2.3). */
const MAX_LENGTH_BYTES = 4;
/** Largest header worth waiting for: fixed header (5) + topic length (2) + topic (65535). */
const MAX_PEEK_BYTES = 5 + 2 + 65535;

/** Tracks packet boundaries across chunks; see the module doc. */
export class PacketGuard {
  #limit: (topic: string | undefined) => number;
  #largest: number;
  #skip = 0;
  #pending: Uint8Array = new Uint8Array(0);

  /**
   * @param limit largest packet in bytes for a PUBLISH on `topic`, or for any other packet
   *   (`topic` undefined).
   * @param largest the largest limit `limit` ever returns: a PUBLISH above it is refused without
   *   waiting for its topic.
   */
  constructor(limit: (topic: string | undefined) => number, largest = Infinity) {
    this.#limit = limit;
    this.#largest = largest;
  }

  /** Checks the next bytes of the stream; returns what was wrong, or undefined when all is fine. */
  feed(chunk: Uint8Array): OversizedPacket | MalformedPacket | undefined {
    let work = chunk;
    if (this.#pending.length > 0) {
      work = new Uint8Array(this.#pending.length + chunk.length);
      work.set(this.#pending);
      work.set(chunk, this.#pending.length);
      this.#pending = new Uint8Array(0);
    }
    let i = 0;
    while (i < work.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, work.length - i);
        this.#skip -= n;
        i += n;
        continue;
      }
      const header = this.#header(work, i);
      if (header === "more") {
        if (work.length - i > MAX_PEEK_BYTES) return { malformed: "header longer than any MQTT" };
        this.#pending = work.slice(i);
        return undefined;
      }
      if ("malformed" in header) return header;
      if (header.bytes > header.limit) return header;
      this.#skip = header.bytes;
    }
    return undefined;
  }

  #header(work: Uint8Array, at: number): OversizedPacket | MalformedPacket | "more" {
    const type = work[at] >> 4;
    let remaining = 0;
    let multiplier = 1;
    let n = 0;
    for (;;) {
      if (n === MAX_LENGTH_BYTES) return { malformed: "remaining length over 4 bytes" };
      const index = at + 1 + n;
      if (index >= work.length) return "more";
      const byte = work[index];
      remaining += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      n++;
      if ((byte & 0x80) === 0) break;
    }
    const bytes = 1 + n + remaining;
    if (type !== PUBLISH) return { bytes, type, limit: this.#limit(undefined) };
    if (bytes > this.#largest) return { bytes, type, limit: this.#largest };
    const topicAt = at + 1 + n;
    if (remaining < 2) return { bytes, type, limit: this.#limit(undefined) };
    if (topicAt + 2 > work.length) return "more";
    const topicLength = (work[topicAt] << 8) | work[topicAt + 1];
    if (topicAt + 2 + topicLength > work.length) return "more";
    const topic = new TextDecoder().decode(work.subarray(topicAt + 2, topicAt + 2 + topicLength));
    return { bytes, type, topic, limit: this.#limit(topic) };
  }
}
