/**
 * The VP8 bytes both ends of a video track agree on: the RTP payload descriptor of RFC 7741
 * section 4.2 (read by gateway/video/vp8_depacketizer.ts, written by vp8_packetizer.ts) and the
 * uncompressed frame header of RFC 6386 section 9.1 (keyframe flag, width, height).
 *
 * ```
 *       0 1 2 3 4 5 6 7
 *      |X|R|N|S|R| PID |   required
 *   X: |I|L|T|K| RSV   |   if X
 *   I: |M| PictureID   |   if I (second byte if M: 15-bit picture id)
 *   L: |   TL0PICIDX   |   if L
 * T/K: |TID|Y| KEYIDX  |   if T or K
 * ```
 */

/** RFC 7741 4.2: bits of the first descriptor byte. */
const X_BIT = 0x80;
const N_BIT = 0x20;
const S_BIT = 0x10;
const PID_MASK = 0x07;
/** Bits of the extension byte. */
const I_BIT = 0x80;
const L_BIT = 0x40;
const T_BIT = 0x20;
const K_BIT = 0x10;
/** The picture id's long-form flag; a long id is 15 bits. */
const M_BIT = 0x80;
export const PICTURE_ID_MODULO = 0x8000;
/** RFC 6386 9.1: a keyframe's start code after the 3-byte frame tag. */
const KEYFRAME_START_CODE = [0x9d, 0x01, 0x2a];
/** Frame tag (3 bytes) + start code (3) + width (2) + height (2). */
export const KEYFRAME_HEADER_BYTES = 10;
const FRAME_TAG_BYTES = 3;
/** Widths and heights are 14-bit fields (RFC 6386 9.1). */
const DIMENSION_MASK = 0x3fff;
/** RFC 6386 9.1: versions 0..3 are defined; others are reserved. */
const MAX_VERSION = 3;

/** A malformed VP8 payload descriptor or frame header; the message names field and value. */
export class Vp8PayloadError extends Error {
  override name = "Vp8PayloadError";
}

/** RFC 7741 payload descriptor fields. */
export interface Vp8Descriptor {
  /** N: the frame is not used as a reference; it can be dropped without harm. */
  nonReference: boolean;
  /** S: this packet starts a VP8 partition. */
  partitionStart: boolean;
  /** PID: the partition index (0..7). S with PID 0 starts a frame. */
  partitionIndex: number;
  /** 7- or 15-bit picture id, when present. */
  pictureId?: number;
  /** TL0PICIDX, when present. */
  tl0PicIdx?: number;
  /** Temporal layer id (0..3), when present. */
  temporalLayer?: number;
  /** Y: layer sync. */
  layerSync?: boolean;
  /** KEYIDX, when present. */
  keyIndex?: number;
  /** Bytes of the descriptor; the VP8 payload follows. */
  length: number;
}

/**
 * Parses the descriptor at the start of an RTP payload. Throws {@link Vp8PayloadError} when it
 * is cut off or no VP8 bytes follow it.
 */
export function parseVp8Descriptor(payload: Uint8Array): Vp8Descriptor {
  if (payload.length === 0) throw new Vp8PayloadError("VP8 RTP payload is empty");
  const first = payload[0];
  const descriptor: Vp8Descriptor = {
    nonReference: (first & N_BIT) !== 0,
    partitionStart: (first & S_BIT) !== 0,
    partitionIndex: first & PID_MASK,
    length: 1,
  };
  let at = 1;
  const need = (field: string) => {
    if (at >= payload.length) {
      throw new Vp8PayloadError(
        `VP8 payload descriptor cut off at its ${field} (byte ${at} of ${payload.length})`,
      );
    }
    return payload[at++];
  };
  if (first & X_BIT) {
    const ext = need("extension byte");
    if (ext & I_BIT) {
      const high = need("picture id");
      descriptor.pictureId = high & M_BIT
        ? ((high & 0x7f) << 8) | need("second picture id byte")
        : high;
    }
    if (ext & L_BIT) descriptor.tl0PicIdx = need("TL0PICIDX");
    if (ext & (T_BIT | K_BIT)) {
      const tk = need("TID/KEYIDX byte");
      if (ext & T_BIT) {
        descriptor.temporalLayer = tk >> 6;
        descriptor.layerSync = (tk & 0x20) !== 0;
      }
      if (ext & K_BIT) descriptor.keyIndex = tk & 0x1f;
    }
  }
  if (at >= payload.length) {
    throw new Vp8PayloadError(
      `VP8 RTP payload has a ${at}-byte descriptor and no VP8 data after it`,
    );
  }
  descriptor.length = at;
  return descriptor;
}

/** What the packetizer writes: always S/PID, optionally a picture id (Chrome sends 15-bit). */
export interface Vp8DescriptorFields {
  partitionStart: boolean;
  nonReference?: boolean;
  /** 15-bit picture id; omitted → no extension bytes. */
  pictureId?: number;
}

/** Bytes {@link writeVp8Descriptor} will write for these fields. */
export function vp8DescriptorLength(fields: Vp8DescriptorFields): number {
  return fields.pictureId === undefined ? 1 : 4;
}

/** Writes a descriptor at `out[0..]`; returns its length. Partition index is always 0. */
export function writeVp8Descriptor(out: Uint8Array, fields: Vp8DescriptorFields): number {
  let first = fields.partitionStart ? S_BIT : 0;
  if (fields.nonReference) first |= N_BIT;
  if (fields.pictureId === undefined) {
    out[0] = first;
    return 1;
  }
  const id = fields.pictureId % PICTURE_ID_MODULO;
  out[0] = first | X_BIT;
  out[1] = I_BIT;
  out[2] = M_BIT | (id >> 8);
  out[3] = id & 0xff;
  return 4;
}

/** RFC 6386 9.1 frame header; `width`/`height` only on keyframes. */
export interface Vp8FrameHeader {
  keyframe: boolean;
  /** 0..3: the reconstruction filter and loop filter type. */
  version: number;
  /** False for an invisible frame (e.g. an alt-ref). */
  showFrame: boolean;
  /** Bytes of the first partition. */
  firstPartitionSize: number;
  /** Pixels (keyframes only). */
  width?: number;
  height?: number;
}

/**
 * Parses the frame header at the start of a VP8 frame. Throws {@link Vp8PayloadError} on a
 * frame shorter than its header, a reserved version, a keyframe without the start code or with
 * a zero dimension, or a first partition longer than the frame.
 */
export function parseVp8FrameHeader(frame: Uint8Array): Vp8FrameHeader {
  if (frame.length < FRAME_TAG_BYTES) {
    throw new Vp8PayloadError(`VP8 frame is ${frame.length} bytes, shorter than its 3-byte tag`);
  }
  const tag = frame[0] | (frame[1] << 8) | (frame[2] << 16);
  const header: Vp8FrameHeader = {
    keyframe: (tag & 1) === 0,
    version: (tag >> 1) & 7,
    showFrame: ((tag >> 4) & 1) === 1,
    firstPartitionSize: tag >>> 5,
  };
  if (header.version > MAX_VERSION) {
    throw new Vp8PayloadError(`VP8 frame version is ${header.version}, expected 0..3`);
  }
  if (header.firstPartitionSize > frame.length - FRAME_TAG_BYTES) {
    throw new Vp8PayloadError(
      `VP8 first partition is ${header.firstPartitionSize} bytes, frame has ${frame.length}`,
    );
  }
  if (!header.keyframe) return header;
  if (frame.length < KEYFRAME_HEADER_BYTES) {
    throw new Vp8PayloadError(
      `VP8 keyframe is ${frame.length} bytes, shorter than its 10-byte header`,
    );
  }
  if (KEYFRAME_START_CODE.some((b, i) => frame[FRAME_TAG_BYTES + i] !== b)) {
    const got = [...frame.subarray(3, 6)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new Vp8PayloadError(`VP8 keyframe start code is ${got}, expected 9d 01 2a`);
  }
  header.width = (frame[6] | (frame[7] << 8)) & DIMENSION_MASK;
  header.height = (frame[8] | (frame[9] << 8)) & DIMENSION_MASK;
  if (header.width === 0 || header.height === 0) {
    throw new Vp8PayloadError(`VP8 keyframe size is ${header.width}x${header.height}`);
  }
  return header;
}

/** RFC 7741 4.1: VP8's RTP timestamps run at 90 kHz. */
export const VP8_CLOCK_RATE = 90_000;
/** RTP sequence numbers are 16 bits (RFC 3550). */
export const SEQUENCE_MODULO = 0x10000;

/** The RTP fields video needs, independent of the WebRTC library (werift's RtpPacket maps
 * onto it: `header.sequenceNumber`, `header.timestamp`, `header.marker`, `payload`). */
export interface RtpVideoPacket {
  sequenceNumber: number;
  /** 90 kHz units ({@link VP8_CLOCK_RATE}); all packets of one frame share it. */
  timestamp: number;
  /** Set on the last packet of a frame (RFC 7741 4.1). */
  marker: boolean;
  /** Payload descriptor + VP8 bytes. */
  payload: Uint8Array;
}
