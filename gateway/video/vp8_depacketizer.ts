/**
 * Reassembles VP8 frames from RTP packets (RFC 7741): packets are put back in sequence order by
 * the gateway's {@link PacketOrder} (a window of {@link DEFAULT_VIDEO_REORDER_WINDOW} packets),
 * a frame runs from the packet with S=1, PID=0 to the packet with the marker bit, and all its
 * packets share one RTP timestamp.
 *
 * A lost packet, a malformed descriptor or a frame over `maxFrameBytes` drops the frame it
 * belongs to; since later inter frames reference what was dropped, every frame is then dropped
 * until the next keyframe, and `onKeyframeNeeded` is called so the session can send a PLI. A
 * stream also starts in that state: nothing is decodable before its first keyframe. Memory is
 * bounded by the reorder window plus one frame of `maxFrameBytes`.
 *
 * @example
 * ```ts
 * const depacketizer = new Vp8Depacketizer({
 *   onFrame: (frame) => decoder.decode(frame.data),
 *   onKeyframeNeeded: (reason, detail) => session.requestKeyframe(reason, detail),
 * });
 * track.onReceiveRtp.subscribe((rtp) => depacketizer.push({ ...rtp.header, payload: rtp.payload }));
 * ```
 */

import { PacketOrder } from "../packet_order.ts";
import {
  parseVp8Descriptor,
  parseVp8FrameHeader,
  type RtpVideoPacket,
} from "../../shared/video/vp8_payload.ts";

/** A 640×480 keyframe is ~25 packets; 16 packets of reordering cost at most ~1.5 frames of delay
 * at 5 fps before a missing packet is declared lost. */
export const DEFAULT_VIDEO_REORDER_WINDOW = 16;
/** 1 MiB: a 1920×1080 VP8 keyframe at high quality is a few hundred KB; a frame larger than
 * this is a broken or hostile sender. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

/** One reassembled VP8 frame. */
export interface Vp8Frame {
  /** The VP8 frame (payload descriptors removed); a new buffer the caller owns. */
  data: Uint8Array;
  /** RTP timestamp, 90 kHz. */
  timestamp: number;
  keyframe: boolean;
  /** Pixels, from the keyframe header (keyframes only). */
  width?: number;
  height?: number;
  /** N bit of the first packet: nothing references this frame, it may be skipped undecoded. */
  nonReference: boolean;
  /** From the descriptor, when the sender includes them. */
  pictureId?: number;
  temporalLayer?: number;
  /** RTP packets it came in. */
  packets: number;
}

/** Why the stream cannot be decoded until a keyframe arrives. */
export type KeyframeReason =
  /** No keyframe yet: the stream started (or was joined) on an inter frame. */
  | "no_keyframe"
  /** A packet was lost: the frame it belonged to was dropped. */
  | "loss"
  /** A packet's descriptor or a frame header was malformed. */
  | "malformed"
  /** A frame exceeded `maxFrameBytes`. */
  | "too_large";

/** Counters for metrics and logs. */
export interface Vp8DepacketizerStats {
  packets: number;
  frames: number;
  keyframes: number;
  /** Packets the reorder window declared lost. */
  lostPackets: number;
  malformedPackets: number;
  oversizeFrames: number;
  /** Frames dropped: incomplete, malformed, oversize, or inter frames awaiting a keyframe. */
  droppedFrames: number;
}

/** Options of {@link Vp8Depacketizer}. */
export interface Vp8DepacketizerOptions {
  /** Each complete, decodable frame in order. */
  onFrame: (frame: Vp8Frame) => void;
  /** The stream needs a keyframe; `detail` is a log-ready sentence. Called on every event: the
   * caller throttles its PLIs (gateway/video/frame_sampler.ts). */
  onKeyframeNeeded?: (reason: KeyframeReason, detail: string) => void;
  maxFrameBytes?: number;
  reorderWindow?: number;
}

/** Depacketizes one VP8 stream; see the module doc. */
export class Vp8Depacketizer {
  readonly stats: Vp8DepacketizerStats = {
    packets: 0,
    frames: 0,
    keyframes: 0,
    lostPackets: 0,
    malformedPackets: 0,
    oversizeFrames: 0,
    droppedFrames: 0,
  };
  #onFrame: (frame: Vp8Frame) => void;
  #onKeyframeNeeded: (reason: KeyframeReason, detail: string) => void;
  #maxFrameBytes: number;
  #order: PacketOrder<RtpVideoPacket>;
  /** Payloads (descriptors stripped) of the frame being assembled; empty when between frames
   * or skipping the rest of a dropped frame. */
  #parts: Uint8Array[] = [];
  #bytes = 0;
  #timestamp = 0;
  #first: { nonReference: boolean; pictureId?: number; temporalLayer?: number } | undefined;
  #awaitingKeyframe = true;

  constructor(options: Vp8DepacketizerOptions) {
    this.#onFrame = options.onFrame;
    this.#onKeyframeNeeded = options.onKeyframeNeeded ?? (() => {});
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#order = new PacketOrder<RtpVideoPacket>((packet) => this.#inOrder(packet), {
      window: options.reorderWindow ?? DEFAULT_VIDEO_REORDER_WINDOW,
    });
  }

  /** True until the first keyframe, and again after any dropped frame until the next one. */
  get awaitingKeyframe(): boolean {
    return this.#awaitingKeyframe;
  }

  /** Feeds one RTP packet (any order within the reorder window; duplicates are ignored). */
  push(packet: RtpVideoPacket): void {
    this.stats.packets++;
    this.#order.push(packet.sequenceNumber, packet);
  }

  /** Forgets the stream (e.g. the track was replaced); the next frame must be a keyframe. */
  reset(): void {
    this.#order.reset();
    this.#abandon();
    this.#awaitingKeyframe = true;
  }

  #inOrder(packet: RtpVideoPacket | null): void {
    if (packet === null) {
      this.stats.lostPackets++;
      this.#drop("loss", "an RTP packet was lost");
      return;
    }
    let descriptor;
    try {
      descriptor = parseVp8Descriptor(packet.payload);
    } catch (error) {
      this.stats.malformedPackets++;
      this.#drop("malformed", `RTP packet ${packet.sequenceNumber}: ${(error as Error).message}`);
      return;
    }
    const frameStart = descriptor.partitionStart && descriptor.partitionIndex === 0;
    if (frameStart) {
      // A sender that omitted the marker: contiguous packets and a new start end the frame.
      if (this.#first && packet.timestamp !== this.#timestamp) this.#complete();
      else if (this.#first) {
        this.stats.malformedPackets++;
        this.#drop("malformed", `RTP packet ${packet.sequenceNumber} restarts its frame`);
        return;
      }
      this.#first = {
        nonReference: descriptor.nonReference,
        pictureId: descriptor.pictureId,
        temporalLayer: descriptor.temporalLayer,
      };
      this.#timestamp = packet.timestamp;
    } else if (!this.#first) {
      // The rest of a frame already dropped (or joined mid-frame): count it once, at its end.
      if (packet.marker) this.stats.droppedFrames++;
      return;
    } else if (packet.timestamp !== this.#timestamp) {
      this.stats.malformedPackets++;
      this.#drop(
        "malformed",
        `RTP packet ${packet.sequenceNumber} continues a frame with timestamp ${packet.timestamp}, expected ${this.#timestamp}`,
      );
      return;
    }
    const vp8 = packet.payload.subarray(descriptor.length);
    if (this.#bytes + vp8.length > this.#maxFrameBytes) {
      this.stats.oversizeFrames++;
      this.#drop(
        "too_large",
        `VP8 frame at timestamp ${this.#timestamp} exceeds ${this.#maxFrameBytes} bytes`,
      );
      return;
    }
    this.#parts.push(vp8);
    this.#bytes += vp8.length;
    if (packet.marker) this.#complete();
  }

  #complete(): void {
    const first = this.#first!;
    const data = new Uint8Array(this.#bytes);
    let at = 0;
    for (const part of this.#parts) {
      data.set(part, at);
      at += part.length;
    }
    const packets = this.#parts.length;
    this.#abandon();
    let header;
    try {
      header = parseVp8FrameHeader(data);
    } catch (error) {
      this.stats.droppedFrames++;
      this.#needKeyframe("malformed", (error as Error).message);
      return;
    }
    if (header.keyframe) {
      this.#awaitingKeyframe = false;
      this.stats.keyframes++;
    } else if (this.#awaitingKeyframe) {
      this.stats.droppedFrames++;
      this.#needKeyframe("no_keyframe", "an inter frame arrived while no keyframe is decodable");
      return;
    }
    this.stats.frames++;
    this.#onFrame({
      data,
      timestamp: this.#timestamp,
      keyframe: header.keyframe,
      width: header.width,
      height: header.height,
      nonReference: first.nonReference,
      pictureId: first.pictureId,
      temporalLayer: first.temporalLayer,
      packets,
    });
  }

  /** Drops the frame being assembled (if any) and waits for a keyframe. */
  #drop(reason: KeyframeReason, detail: string): void {
    if (this.#first) this.stats.droppedFrames++;
    this.#abandon();
    this.#needKeyframe(reason, detail);
  }

  #needKeyframe(reason: KeyframeReason, detail: string): void {
    this.#awaitingKeyframe = true;
    this.#onKeyframeNeeded(reason, detail);
  }

  #abandon(): void {
    this.#parts = [];
    this.#bytes = 0;
    this.#first = undefined;
  }
}
