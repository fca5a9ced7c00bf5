/**
 * Splits VP8 frames into RTP payloads (RFC 7741 section 4): each packet starts with a payload
 * descriptor carrying a 15-bit picture id (as Chrome sends), the first packet of a frame has S
 * set and partition index 0, and the last has the RTP marker bit. The device side streams with
 * it (`deno task device --video FILE`); gateway tests use it to feed the depacketizer.
 *
 * @example
 * ```ts
 * const packetizer = new Vp8Packetizer();
 * for (const frame of readIvf(bytes).frames) send(packetizer.packetize(frame.data, rtpTimestamp));
 * ```
 */

import {
  PICTURE_ID_MODULO,
  type RtpVideoPacket,
  SEQUENCE_MODULO,
  vp8DescriptorLength,
  writeVp8Descriptor,
} from "./vp8_payload.ts";

/** 1200 bytes of RTP payload stays under a 1500-byte MTU after IP, UDP, SRTP and RTP headers
 * and extensions (what browsers use too). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1200;
/** Room for the descriptor and at least one VP8 byte. */
const MIN_PAYLOAD_BYTES = 8;

/** Options of {@link Vp8Packetizer}. */
export interface Vp8PacketizerOptions {
  /** Largest RTP payload in bytes, descriptor included. */
  maxPayloadBytes?: number;
  /** First sequence number (RFC 3550 says random; tests pass one to test wrap-around). */
  initialSequence?: number;
  /** First picture id (15 bits). */
  initialPictureId?: number;
}

/** Packetizes one VP8 stream; keeps the sequence number and picture id across frames. */
export class Vp8Packetizer {
  #maxPayload: number;
  #sequence: number;
  #pictureId: number;

  constructor(options: Vp8PacketizerOptions = {}) {
    this.#maxPayload = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    if (!Number.isInteger(this.#maxPayload) || this.#maxPayload < MIN_PAYLOAD_BYTES) {
      throw new RangeError(
        `maxPayloadBytes ${this.#maxPayload} is not an integer >= ${MIN_PAYLOAD_BYTES}`,
      );
    }
    this.#sequence = (options.initialSequence ?? randomUint(SEQUENCE_MODULO)) % SEQUENCE_MODULO;
    this.#pictureId = (options.initialPictureId ?? randomUint(PICTURE_ID_MODULO)) %
      PICTURE_ID_MODULO;
  }

  /**
   * The RTP packets of one frame, in order. `timestamp` is in 90 kHz units; `nonReference`
   * sets N (the frame updates no reference buffer). Throws RangeError on an empty frame.
   */
  packetize(
    frame: Uint8Array,
    timestamp: number,
    options: { nonReference?: boolean } = {},
  ): RtpVideoPacket[] {
    if (frame.length === 0) throw new RangeError("cannot packetize an empty VP8 frame");
    const pictureId = this.#pictureId;
    this.#pictureId = (this.#pictureId + 1) % PICTURE_ID_MODULO;
    const chunk = this.#maxPayload - vp8DescriptorLength({ partitionStart: true, pictureId });
    // Equal-sized packets (as libwebrtc does) rather than full ones and a runt: the first
    // `frame.length % count` packets carry one byte more.
    const count = Math.ceil(frame.length / chunk);
    const size = Math.floor(frame.length / count);
    const longer = frame.length % count;
    const packets: RtpVideoPacket[] = [];
    for (let i = 0, at = 0; i < count; i++) {
      const end = at + size + (i < longer ? 1 : 0);
      const part = frame.subarray(at, end);
      at = end;
      const fields = { partitionStart: i === 0, nonReference: options.nonReference, pictureId };
      const payload = new Uint8Array(vp8DescriptorLength(fields) + part.length);
      payload.set(part, writeVp8Descriptor(payload, fields));
      packets.push({
        sequenceNumber: this.#sequence,
        timestamp: timestamp >>> 0,
        marker: i === count - 1,
        payload,
      });
      this.#sequence = (this.#sequence + 1) % SEQUENCE_MODULO;
    }
    return packets;
  }
}

function randomUint(modulo: number): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] % modulo;
}
