/**
 * The gateway's cameras as the AI server sees them (issue 13, docs/video.md): every device
 * session with a video track registers its {@link CameraPipeline} here, and the hub
 *
 * - sends each motion frame as a JPEG `image` (reason `motion`), one encode in flight per
 *   camera: a frame arriving while the previous one is still being encoded is dropped (the
 *   pipeline already limits frames to `VIDEO_FORWARD_FPS`);
 * - answers the server's `frame_request` with the camera's latest frame (`image`, reason `grab`)
 *   or an `error` naming the request: `no_video` (no such camera here), `timeout` (no decodable
 *   frame in time), `busy` (more than {@link MAX_GRABS} at once), `internal` (encoding failed).
 *
 * Nothing here throws into the AI connection or a device session.
 *
 * @example
 * ```ts
 * const hub = new CameraHub({ link: aiClient, log });
 * aiClient.onFrameRequest((request) => hub.request(request));
 * const remove = hub.add("hallway", pipeline);
 * ```
 */
import {
  type ErrorMessage,
  errorMessage,
  type FrameRequestMessage,
  type ImageMessage,
} from "../shared/frame_codec.ts";
import type { Logger } from "../shared/log.ts";
import type { CameraFrame, MotionFrame } from "./video/mod.ts";
import { encodeJpeg, warmJpegEncoder } from "./video/jpeg.ts";

/** Frame requests answered at once (docs/protocol.md: at most 4 outstanding). */
export const MAX_GRABS = 4;

/** Where camera messages go (the gateway's AiServers). */
export interface CameraLink {
  /** False when not sent (link down, or a server without `image`). */
  sendCamera(message: ImageMessage | ErrorMessage): boolean;
}

/** A live camera: its latest picture (CameraPipeline.grab). */
export interface CameraSource {
  grab(timeoutMs?: number): Promise<CameraFrame>;
}

/** Counters for metrics and benchmarks. */
export interface CameraHubStats {
  motionSent: number;
  /** Motion frames not sent: encoder busy, or the link down. */
  motionDropped: number;
  grabsAnswered: number;
  grabsFailed: number;
}

/** Options of {@link CameraHub}. */
export interface CameraHubOptions {
  link: CameraLink;
  log?: Logger;
  /** JPEG encoder; default {@link encodeJpeg}. */
  encode?: (frame: CameraFrame) => Promise<Uint8Array>;
}

/** See the module doc. */
export class CameraHub {
  readonly stats: CameraHubStats = {
    motionSent: 0,
    motionDropped: 0,
    grabsAnswered: 0,
    grabsFailed: 0,
  };
  #o: CameraHubOptions;
  #encode: (frame: CameraFrame) => Promise<Uint8Array>;
  #cameras = new Map<string, CameraSource>();
  #encoding = new Set<string>();
  #grabs = 0;
  #warmed = false;

  constructor(options: CameraHubOptions) {
    this.#o = options;
    this.#encode = options.encode ?? encodeJpeg;
  }

  /** Registers `device`'s camera (replacing an earlier one); returns its removal. */
  add(device: string, camera: CameraSource): () => void {
    this.#cameras.set(device, camera);
    if (!this.#warmed && this.#o.encode === undefined) {
      this.#warmed = true;
      // The first camera: load the encoder now, not on its first motion frame. A failure here
      // shows again, logged and counted, at that frame's encode.
      warmJpegEncoder().catch(() => {});
    }
    return () => {
      if (this.#cameras.get(device) === camera) this.#cameras.delete(device);
    };
  }

  /** Devices with a camera here. */
  devices(): string[] {
    return [...this.#cameras.keys()];
  }

  /** A motion frame of `device`: encoded and sent as an `image`, unless one is still encoding. */
  motion(device: string, frame: MotionFrame): void {
    if (this.#encoding.has(device)) {
      this.stats.motionDropped++;
      return;
    }
    this.#encoding.add(device);
    this.#encode(frame).then((jpeg) => {
      const sent = this.#o.link.sendCamera({
        type: "image",
        device,
        reason: "motion",
        capture_ts: frame.capturedAt,
        width: frame.width,
        height: frame.height,
        box: clampBox(frame.box, frame.width, frame.height),
        changed: Math.min(1, Math.max(0, Math.round(frame.changedFraction * 1000) / 1000)),
        format: "jpeg",
        ts: Date.now(),
        jpeg,
      });
      if (sent) this.stats.motionSent++;
      else this.stats.motionDropped++;
    }).catch((error) => {
      this.stats.motionDropped++;
      this.#o.log?.warn("motion frame not sent", { device, error: (error as Error).message });
    }).finally(() => this.#encoding.delete(device));
  }

  /** The server's `frame_request`: answered with an `image` or an `error` naming it. */
  request(message: FrameRequestMessage): void {
    void this.#answer(message);
  }

  async #answer({ request, device }: FrameRequestMessage): Promise<void> {
    const fail = (code: string, text: string) => {
      this.stats.grabsFailed++;
      this.#o.log?.info("frame request failed", { request, device, code, message: text });
      this.#o.link.sendCamera(errorMessage(code, text, { request }));
    };
    const camera = this.#cameras.get(device);
    if (camera === undefined) return fail("no_video", `device ${device} has no video track`);
    if (this.#grabs >= MAX_GRABS) return fail("busy", `${MAX_GRABS} frame requests are running`);
    this.#grabs++;
    try {
      let frame: CameraFrame;
      try {
        frame = await camera.grab();
      } catch (error) {
        return fail("timeout", `device ${device}: ${(error as Error).message}`);
      }
      let jpeg: Uint8Array;
      try {
        jpeg = await this.#encode(frame);
      } catch (error) {
        return fail("internal", `JPEG encoding failed: ${(error as Error).message}`);
      }
      this.stats.grabsAnswered++;
      this.#o.link.sendCamera({
        type: "image",
        device,
        reason: "grab",
        request,
        capture_ts: frame.capturedAt,
        width: frame.width,
        height: frame.height,
        format: "jpeg",
        ts: Date.now(),
        jpeg,
      });
    } finally {
      this.#grabs--;
    }
  }
}

/** The motion box as integers inside the frame (the wire format's rule). */
function clampBox(
  box: MotionFrame["box"],
  width: number,
  height: number,
): [number, number, number, number] {
  const x = Math.min(width - 1, Math.max(0, Math.floor(box.x)));
  const y = Math.min(height - 1, Math.max(0, Math.floor(box.y)));
  const w = Math.max(1, Math.min(width - x, Math.round(box.width)));
  const h = Math.max(1, Math.min(height - y, Math.round(box.height)));
  return [x, y, w, h];
}
