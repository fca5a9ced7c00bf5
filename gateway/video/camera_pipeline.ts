/**
 * One camera's video path on the gateway (spec 10.2), from RTP packets to motion frames:
 * {@link Vp8Depacketizer} → {@link FrameSampler} → {@link VpxDecoder} → grey thumbnail →
 * {@link MotionDetector} → `onMotionFrame` (at most `forwardFps` while motion lasts), plus live
 * grabs of the latest picture (spec 11.4). The device session owns one per video track: it
 * feeds packets, sends a PLI when asked, and forwards motion frames to the AI server.
 *
 * Nothing a camera sends can throw out of {@link CameraPipeline.push}: malformed packets,
 * corrupt VP8, oversize or never-keyframed streams become counters and log lines (one per
 * change of state, not one per frame), and the pipeline recovers at the next keyframe.
 *
 * @example
 * ```ts
 * const camera = new CameraPipeline(loadVideoConfig(Deno.env.toObject()), {
 *   onKeyframeRequest: () => receiver.sendRtcpPLI(ssrc),
 *   onMotionFrame: (frame) => aiClient.sendImage(device, frame),
 *   onLog: (message) => log.info(`camera ${device}: ${message}`),
 * });
 * track.onReceiveRtp.subscribe((rtp) => camera.push({ ...rtp.header, payload: rtp.payload }));
 * ```
 */

import { FrameSampler } from "./frame_sampler.ts";
import { downscaleLuma, thumbnailSize } from "./luma_thumbnail.ts";
import { type Box, MotionDetector } from "./motion_detector.ts";
import type { VideoConfig } from "./video_config.ts";
import { Vp8Depacketizer, type Vp8Frame } from "./vp8_depacketizer.ts";
import type { RtpVideoPacket } from "../../shared/video/vp8_payload.ts";
import { copyI420, type DecodedFrame, VpxDecodeError, VpxDecoder } from "./vpx_decoder.ts";

/** A decoded picture handed out of the pipeline: a copy the receiver owns. */
export interface CameraFrame {
  width: number;
  height: number;
  /** Tightly packed I420 (Y, U, V planes), width × height × 1.5 bytes. */
  i420: Uint8Array;
  /** Wall-clock ms (epoch) when the gateway decoded it. */
  capturedAt: number;
  /** RTP timestamp, 90 kHz. */
  rtpTimestamp: number;
}

/** A frame with motion, to forward to the server. */
export interface MotionFrame extends CameraFrame {
  /** Where the change is, in frame pixels. */
  box: Box;
  /** Fraction of the frame that changed (0..1). */
  changedFraction: number;
}

/** What the pipeline tells its owner. */
export interface CameraEvents {
  /** Send a keyframe request (RTCP PLI) to the camera. */
  onKeyframeRequest: (reason: string) => void;
  onMotionFrame: (frame: MotionFrame) => void;
  /** A log-ready sentence on each change of state (stream broken, resumed, refused size). */
  onLog?: (message: string) => void;
}

/** Counters for metrics and benchmarks. */
export interface CameraStats {
  framesReceived: number;
  framesDecoded: number;
  framesAnalyzed: number;
  framesForwarded: number;
  decodeErrors: number;
  keyframeRequests: number;
}

/** A live grab older than this is stale: wait for the next picture instead (1 s = 5 frames at
 * the slowest configured camera rate). */
export const MAX_GRAB_AGE_MS = 1000;
/** Wait this long for a decodable picture before a live grab fails (two keyframe requests). */
export const DEFAULT_GRAB_TIMEOUT_MS = 2500;

/** No frame for this long means the camera stopped (or its network did): logged once. 5 s is
 * 25 frames at the slowest configured rate, far beyond any jitter or keyframe wait. */
export const CAMERA_STALL_MS = 5000;

/** A live grab that found no picture. */
export class CameraGrabError extends Error {
  override name = "CameraGrabError";
}

/** One camera's decode + motion path; see the module doc. */
export class CameraPipeline {
  readonly stats: CameraStats = {
    framesReceived: 0,
    framesDecoded: 0,
    framesAnalyzed: 0,
    framesForwarded: 0,
    decodeErrors: 0,
    keyframeRequests: 0,
  };
  #events: CameraEvents;
  #now: () => number;
  #depacketizer: Vp8Depacketizer;
  #sampler: FrameSampler;
  #decoder: VpxDecoder;
  #motion: MotionDetector;
  #thumbnail = new Uint8Array(0);
  /** The last decoded picture (a view into libvpx, valid until the next decode). */
  #latest: { frame: DecodedFrame; at: number; rtpTimestamp: number } | undefined;
  #grabs: ((frame: CameraFrame) => void)[] = [];
  #lastLog = "";
  #lastFrameAt: number | undefined;

  /** Throws `VpxUnavailableError` when libvpx cannot be loaded. */
  constructor(config: VideoConfig, events: CameraEvents, options: { now?: () => number } = {}) {
    this.#events = events;
    this.#now = options.now ?? Date.now;
    this.#decoder = new VpxDecoder({ maxWidth: config.maxWidth, maxHeight: config.maxHeight });
    this.#motion = new MotionDetector({
      minAreaFraction: config.motionThreshold,
      pixelThreshold: config.motionPixelThreshold,
    });
    this.#sampler = new FrameSampler({
      motionFps: config.motionFps,
      frameSkip: config.frameSkip,
      forwardFps: config.forwardFps,
      onKeyframeRequest: (reason) => {
        this.stats.keyframeRequests++;
        this.#log(`asking for a keyframe: ${reason}`);
        this.#events.onKeyframeRequest(reason);
      },
    });
    this.#depacketizer = new Vp8Depacketizer({
      onFrame: (frame) => this.#frame(frame),
      onKeyframeNeeded: (_reason, detail) => this.#sampler.keyframeNeeded(detail, this.#now()),
    });
  }

  /** Depacketizer counters (packets, losses, malformed, dropped frames). */
  get packetStats(): Vp8Depacketizer["stats"] {
    return this.#depacketizer.stats;
  }

  /** Feeds one RTP packet of the camera's video track. Never throws on what the camera sent. */
  push(packet: RtpVideoPacket): void {
    this.#depacketizer.push(packet);
    this.#sampler.tick(this.#now());
  }

  /** Retries unanswered keyframe requests and notices a camera that stopped sending
   * ({@link CAMERA_STALL_MS}); call about once a second. */
  tick(): void {
    const now = this.#now();
    this.#sampler.tick(now);
    if (this.#lastFrameAt !== undefined && now - this.#lastFrameAt >= CAMERA_STALL_MS) {
      this.#log(`no video frames for ${CAMERA_STALL_MS / 1000} s: the camera stopped sending`);
    }
  }

  /**
   * The camera's latest picture (spec 11.4): at once when one was decoded within
   * {@link MAX_GRAB_AGE_MS}, otherwise the next one (asking for a keyframe if the stream is
   * broken). Rejects with {@link CameraGrabError} after `timeoutMs`.
   */
  grab(timeoutMs = DEFAULT_GRAB_TIMEOUT_MS): Promise<CameraFrame> {
    const now = this.#now();
    const latest = this.#latest;
    if (latest && now - latest.at <= MAX_GRAB_AGE_MS && !this.#sampler.awaitingKeyframe) {
      return Promise.resolve(this.#copy(latest.frame, latest.at, latest.rtpTimestamp));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#grabs = this.#grabs.filter((g) => g !== deliver);
        if (this.#grabs.length === 0) this.#sampler.captured();
        reject(new CameraGrabError(`no decodable video frame within ${timeoutMs} ms`));
      }, timeoutMs);
      const deliver = (frame: CameraFrame) => {
        clearTimeout(timer);
        resolve(frame);
      };
      this.#grabs.push(deliver);
      this.#sampler.wantFrame(now);
    });
  }

  /** Frees the decoder; pending grabs time out. */
  close(): void {
    this.#decoder.close();
    this.#latest = undefined;
  }

  #frame(frame: Vp8Frame): void {
    this.stats.framesReceived++;
    this.#lastFrameAt = this.#now();
    const plan = this.#sampler.plan(frame);
    if (!plan.decode) return;
    let picture: DecodedFrame | null;
    try {
      picture = this.#decoder.decode(frame.data);
    } catch (error) {
      this.#decodeFailed(error as Error);
      return;
    }
    if (picture === null) return;
    this.stats.framesDecoded++;
    const now = this.#now();
    this.#latest = { frame: picture, at: now, rtpTimestamp: frame.timestamp };
    this.#log(`decoding ${picture.width}x${picture.height}`);
    if (plan.capture && this.#grabs.length > 0) {
      const copy = this.#copy(picture, now, frame.timestamp);
      for (const deliver of this.#grabs.splice(0)) deliver(copy);
      this.#sampler.captured();
    }
    if (plan.analyze) this.#analyze(picture, frame.timestamp, now);
  }

  #analyze(picture: DecodedFrame, rtpTimestamp: number, now: number): void {
    this.stats.framesAnalyzed++;
    const size = thumbnailSize(picture.width, picture.height);
    if (this.#thumbnail.length !== size.width * size.height) {
      this.#thumbnail = new Uint8Array(size.width * size.height);
    }
    // Every other source row: half the reads, and blocks are ≥ 4 rows at 640×480.
    downscaleLuma(picture.y, this.#thumbnail, { ...size, rowStep: 2 });
    const result = this.#motion.detect({ data: this.#thumbnail, ...size }, picture);
    const forward = this.#sampler.motion(result.motion, rtpTimestamp, result.freshFraction);
    if (!forward || !result.box) return;
    this.stats.framesForwarded++;
    this.#events.onMotionFrame({
      ...this.#copy(picture, now, rtpTimestamp),
      box: result.box,
      changedFraction: result.changedFraction,
    });
  }

  #decodeFailed(error: Error): void {
    this.stats.decodeErrors++;
    if (!(error instanceof VpxDecodeError)) throw error; // a bug of ours, not camera input
    this.#latest = undefined;
    if (error.code === "too_large") {
      // Asking again brings the same size: say it once, decode again when the size changes.
      this.#log(`refusing frames: ${error.message}`);
      return;
    }
    if (error.code !== "closed") this.#sampler.keyframeNeeded(error.message, this.#now());
  }

  #copy(frame: DecodedFrame, at: number, rtpTimestamp: number): CameraFrame {
    return {
      width: frame.width,
      height: frame.height,
      i420: copyI420(frame),
      capturedAt: at,
      rtpTimestamp,
    };
  }

  /** Logs a state once, not once per frame. */
  #log(message: string): void {
    if (message === this.#lastLog) return;
    this.#lastLog = message;
    this.#events.onLog?.(message);
  }
}
