/**
 * VideoConfig (spec 14.1: resolution 640×480, 5–15 fps, a processing frame skip, a motion
 * threshold) read from the gateway's environment. Pure: throws the shared `ConfigError` naming
 * the variable, its value and what is allowed.
 *
 * | Variable | Default | Meaning |
 * |---|---|---|
 * | `VIDEO_WIDTH` × `VIDEO_HEIGHT` | `640` × `480` | Resolution asked of cameras |
 * | `VIDEO_FPS` | `15` | Frame rate asked of cameras (5..15 in the spec; 1..30 accepted) |
 * | `VIDEO_MAX_WIDTH` × `VIDEO_MAX_HEIGHT` | `1920` × `1080` | Larger keyframes are refused |
 * | `VIDEO_MOTION_FPS` | `5` | Most frames per second motion detection analyses |
 * | `VIDEO_FRAME_SKIP` | `0` | Frames skipped between two analysed ones |
 * | `VIDEO_MOTION_THRESHOLD` | `0.5` | Changed area that is motion, % of the frame |
 * | `VIDEO_MOTION_PIXEL_THRESHOLD` | `15` | Grey-level change (0..255) of a changed pixel |
 * | `VIDEO_FORWARD_FPS` | `2` | Most frames per second sent to the server during motion |
 *
 * @example
 * ```ts
 * loadVideoConfig({ VIDEO_FPS: "5" }).fps; // 5
 * ```
 */

import { ConfigError, type Env, envInteger, envValue } from "../../shared/config.ts";
import { DEFAULT_FORWARD_FPS, DEFAULT_MOTION_FPS } from "./frame_sampler.ts";
import { DEFAULT_MOTION_OPTIONS } from "./motion_detector.ts";
import { DEFAULT_MAX_HEIGHT, DEFAULT_MAX_WIDTH } from "./vpx_decoder.ts";

/** The camera settings of one gateway (applied to every camera). */
export interface VideoConfig {
  /** Asked of cameras, pixels. */
  width: number;
  height: number;
  /** Asked of cameras, frames/s. */
  fps: number;
  /** The decode cap, pixels. */
  maxWidth: number;
  maxHeight: number;
  motionFps: number;
  frameSkip: number;
  /** Changed fraction (0..1) that is motion. */
  motionThreshold: number;
  /** Grey levels (1..254). */
  motionPixelThreshold: number;
  forwardFps: number;
}

/** Spec 14.1 resolution. */
export const DEFAULT_VIDEO_WIDTH = 640;
export const DEFAULT_VIDEO_HEIGHT = 480;
/** The top of the spec's 5–15 fps range: smooth enough for a person walking through. */
export const DEFAULT_VIDEO_FPS = 15;
/** VP8's 14-bit size fields allow 16383; 4096 is past any camera NAILA decodes on a Pi. */
const MAX_DIMENSION = 4096;
/** The smallest frame motion can use: a 160-wide thumbnail needs 160 source pixels. */
const MIN_DIMENSION = 160;
/** Above 30 fps a camera costs more than a Pi core share and motion gains nothing. */
const MAX_FPS = 30;
/** Skipping more than a minute of 15 fps frames is no longer motion detection. */
const MAX_FRAME_SKIP = 900;
const PERCENT = 100;

/** Reads VideoConfig; unset variables take the defaults of the table above. */
export function loadVideoConfig(env: Env): VideoConfig {
  const width = envInteger(env, "VIDEO_WIDTH", DEFAULT_VIDEO_WIDTH, MIN_DIMENSION, MAX_DIMENSION);
  const height = envInteger(env, "VIDEO_HEIGHT", DEFAULT_VIDEO_HEIGHT, 90, MAX_DIMENSION);
  const maxWidth = envInteger(env, "VIDEO_MAX_WIDTH", DEFAULT_MAX_WIDTH, width, MAX_DIMENSION);
  const maxHeight = envInteger(env, "VIDEO_MAX_HEIGHT", DEFAULT_MAX_HEIGHT, height, MAX_DIMENSION);
  const fps = envInteger(env, "VIDEO_FPS", DEFAULT_VIDEO_FPS, 1, MAX_FPS);
  return {
    width,
    height,
    fps,
    maxWidth,
    maxHeight,
    motionFps: envInteger(env, "VIDEO_MOTION_FPS", DEFAULT_MOTION_FPS, 1, MAX_FPS),
    frameSkip: envInteger(env, "VIDEO_FRAME_SKIP", 0, 0, MAX_FRAME_SKIP),
    motionThreshold: envPercent(
      env,
      "VIDEO_MOTION_THRESHOLD",
      DEFAULT_MOTION_OPTIONS.minAreaFraction * PERCENT,
    ) / PERCENT,
    motionPixelThreshold: envInteger(
      env,
      "VIDEO_MOTION_PIXEL_THRESHOLD",
      DEFAULT_MOTION_OPTIONS.pixelThreshold,
      1,
      254,
    ),
    forwardFps: envInteger(env, "VIDEO_FORWARD_FPS", DEFAULT_FORWARD_FPS, 1, MAX_FPS),
  };
}

/** A percentage in (0, 50] with decimals (above half the frame is a scene change, not an
 * object: the detector's scene-change fraction is 80 %). */
function envPercent(env: Env, name: string, fallback: number): number {
  const raw = envValue(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^[0-9]*\.?[0-9]+$/.test(raw) || !(value > 0 && value <= 50)) {
    throw new ConfigError(name, raw, "a percentage of the frame, more than 0 and at most 50");
  }
  return value;
}
