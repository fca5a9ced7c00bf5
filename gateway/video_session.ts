/**
 * The video half of a device session (issue 13, docs/video.md): a receive-only VP8 transceiver
 * on the device's peer connection, one {@link CameraPipeline} per video track it brings, RTCP
 * PLI when the pipeline wants a keyframe, a once-a-second `tick()` (keyframe retries, a camera
 * that stopped), and the pipeline's motion frames and live grabs through the gateway's
 * {@link CameraHub}. The audio half never waits on it: packets are handled as they arrive,
 * and a broken or oversize stream only logs (once per change of state) and counts.
 *
 * @example
 * ```ts
 * const video = new VideoSession(pc, { device, config: videoConfig, hub, log });
 * // ... pc offer/answer ...
 * video.close();
 * ```
 */
import type { RTCPeerConnection, RTCRtpTransceiver } from "werift";
import type { Logger } from "../shared/log.ts";
import type { CameraHub } from "./camera_hub.ts";
import {
  CameraPipeline,
  type CameraStats,
  rtpVideoPacket,
  type VideoConfig,
  VpxUnavailableError,
} from "./video/mod.ts";

/** How often the pipeline's timers run (keyframe retries, stall notice). */
export const VIDEO_TICK_MS = 1000;

/** Options of {@link VideoSession}. */
export interface VideoSessionOptions {
  device: string;
  config: VideoConfig;
  hub: CameraHub;
  log: Logger;
}

/** Per-device video numbers for `naila/gateway/metrics`. */
export interface VideoMetrics extends CameraStats {
  tracks: number;
  lost_packets: number;
}

/** See the module doc. */
export class VideoSession {
  #o: VideoSessionOptions;
  #transceiver: RTCRtpTransceiver;
  #pipeline: CameraPipeline | undefined;
  #removeCamera: (() => void) | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #tracks = 0;
  #closed = false;

  /** Adds the video transceiver: call before the offer is made. */
  constructor(pc: RTCPeerConnection, options: VideoSessionOptions) {
    this.#o = options;
    this.#transceiver = pc.addTransceiver("video", { direction: "recvonly" });
    this.#transceiver.onTrack.subscribe((track) => {
      if (this.#closed) return;
      const pipeline = this.#open();
      if (!pipeline) return;
      this.#tracks++;
      track.onReceiveRtp.subscribe((rtp) => {
        if (!this.#closed) pipeline.push(rtpVideoPacket(rtp));
      });
      this.#sendPli = () => {
        const ssrc = track.ssrc;
        if (ssrc !== undefined) this.#transceiver.receiver.sendRtcpPLI(ssrc).catch(() => {});
      };
    });
  }

  /** Sends a keyframe request once the track is known. */
  #sendPli: () => void = () => {};

  /** The camera pipeline, once a track arrived. */
  get pipeline(): CameraPipeline | undefined {
    return this.#pipeline;
  }

  metrics(): VideoMetrics | undefined {
    const pipeline = this.#pipeline;
    if (!pipeline) return undefined;
    return {
      ...pipeline.stats,
      tracks: this.#tracks,
      lost_packets: pipeline.packetStats.lostPackets,
    };
  }

  /** Stops the pipeline and unregisters the camera. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#removeCamera?.();
    this.#pipeline?.close();
  }

  #open(): CameraPipeline | undefined {
    if (this.#pipeline) return this.#pipeline;
    const { device, config, hub, log } = this.#o;
    try {
      this.#pipeline = new CameraPipeline(config, {
        onKeyframeRequest: () => this.#sendPli(),
        onMotionFrame: (frame) => hub.motion(device, frame),
        onLog: (message) => log.info(`camera ${device}: ${message}`, { device }),
      });
    } catch (error) {
      if (!(error instanceof VpxUnavailableError)) throw error;
      log.error("video track ignored: libvpx is not available", { device, error: error.message });
      return undefined;
    }
    const pipeline = this.#pipeline;
    this.#removeCamera = hub.add(device, pipeline);
    this.#timer = setInterval(() => pipeline.tick(), VIDEO_TICK_MS);
    log.info("video track", { device });
    return pipeline;
  }
}
