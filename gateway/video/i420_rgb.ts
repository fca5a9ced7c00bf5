/**
 * I420 → interleaved 8-bit RGB, for encoding a decoded camera frame as JPEG (e.g. with sharp's
 * raw input: `sharp(rgb, { raw: { width, height, channels: 3 } }).jpeg()`). VP8 pictures are
 * BT.601 limited range (RFC 6386 section 9.2: Y 16..235, U/V 16..240); chroma is upsampled by
 * nearest neighbour (each U/V sample covers a 2×2 block), fixed-point with 16 fractional bits.
 */

import type { Plane } from "./luma_thumbnail.ts";

/** BT.601 limited-range coefficients × 2^16 (ITU-R BT.601: R = 1.164(Y−16) + 1.596(V−128),
 * G = 1.164(Y−16) − 0.391(U−128) − 0.813(V−128), B = 1.164(Y−16) + 2.018(U−128)). */
const Y_GAIN = 76309; // 1.164
const V_TO_R = 104597; // 1.596
const U_TO_G = 25675; // 0.391
const V_TO_G = 53279; // 0.813
const U_TO_B = 132201; // 2.018
const HALF = 1 << 15;
const SHIFT = 16;

/** The planes of one picture (a gateway/video/vpx_decoder.ts `DecodedFrame`). */
export interface I420Picture {
  width: number;
  height: number;
  y: Plane;
  u: Plane;
  v: Plane;
}

/** Converts to RGB (`width × height × 3` bytes, row-major); `out` is reused when given. Throws
 * RangeError when `out` is too small. */
export function i420ToRgb(picture: I420Picture, out?: Uint8Array): Uint8Array {
  const { width, height, y, u, v } = picture;
  const rgb = out ?? new Uint8Array(width * height * 3);
  if (rgb.length < width * height * 3) {
    throw new RangeError(`RGB buffer has ${rgb.length} bytes, needs ${width * height * 3}`);
  }
  let at = 0;
  for (let row = 0; row < height; row++) {
    const yRow = row * y.stride;
    const cRow = (row >> 1) * u.stride;
    const vRow = (row >> 1) * v.stride;
    for (let x = 0; x < width; x++) {
      const luma = (y.data[yRow + x] - 16) * Y_GAIN + HALF;
      const cu = u.data[cRow + (x >> 1)] - 128;
      const cv = v.data[vRow + (x >> 1)] - 128;
      rgb[at++] = clamp((luma + V_TO_R * cv) >> SHIFT);
      rgb[at++] = clamp((luma - U_TO_G * cu - V_TO_G * cv) >> SHIFT);
      rgb[at++] = clamp((luma + U_TO_B * cu) >> SHIFT);
    }
  }
  return rgb;
}

function clamp(value: number): number {
  return value < 0 ? 0 : value > 255 ? 255 : value;
}
