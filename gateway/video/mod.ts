/**
 * Cameras on the gateway (issue 13, docs/video.md): what the device session needs to turn a
 * WebRTC video track into motion frames for the AI server and live grabs.
 *
 * @example
 * ```ts
 * import { CameraPipeline, loadVideoConfig, rtpVideoPacket, vp8Codec } from "./video/mod.ts";
 * const camera = new CameraPipeline(loadVideoConfig(Deno.env.toObject()), events);
 * track.onReceiveRtp.subscribe((rtp) => camera.push(rtpVideoPacket(rtp)));
 * ```
 */
export {
  CAMERA_STALL_MS,
  type CameraEvents,
  type CameraFrame,
  CameraGrabError,
  CameraPipeline,
  type CameraStats,
  type MotionFrame,
} from "./camera_pipeline.ts";
export { i420ToRgb } from "./i420_rgb.ts";
export type { Box } from "./motion_detector.ts";
export { loadVideoConfig, type VideoConfig } from "./video_config.ts";
export type { RtpVideoPacket } from "../../shared/video/vp8_payload.ts";
export { VpxUnavailableError } from "./vpx_decoder.ts";
export { rtpVideoPacket, vp8Codec } from "../../shared/video/webrtc_video.ts";
