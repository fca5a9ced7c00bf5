/**
 * A decoded camera frame as JPEG, for the AI server's `image` message (docs/video.md): packed
 * I420 → RGB ({@link i420ToRgb}) → sharp (libjpeg-turbo, on libuv's thread pool, so the event
 * loop and the audio path do not wait on it).
 *
 * @example
 * ```ts
 * const jpeg = await encodeJpeg(frame); // frame: CameraFrame from CameraPipeline
 * ```
 */
import { i420ToRgb } from "./i420_rgb.ts";

/** Quality 80: a 640×480 frame is 30–60 KB and the detector sees no difference from the raw. */
export const JPEG_QUALITY = 80;

/** sharp, loaded on the first encode: a gateway whose sharp cannot load (no native binary for
 * its CPU) still serves audio; only its camera frames fail (camera_hub.ts counts them). */
let sharpModule: Promise<typeof import("sharp")> | undefined;

/** Side of the grey picture {@link warmJpegEncoder} encodes (the smallest whole JPEG block). */
const WARM_UP_SIZE = 16;

/**
 * Loads sharp and runs one tiny encode, so a camera's first motion frame does not pay for
 * loading the module and starting libvips (~40 ms measured, scripts/bench_cameras.ts). Rejects
 * as {@link encodeJpeg} would (e.g. no sharp binary for this CPU).
 */
export async function warmJpegEncoder(): Promise<void> {
  const side = WARM_UP_SIZE;
  await encodeJpeg({ width: side, height: side, i420: new Uint8Array(side * side * 1.5) });
}

/** A tightly packed I420 picture (Y, then U, then V; chroma rounded up to even sizes). */
export interface PackedI420 {
  width: number;
  height: number;
  i420: Uint8Array;
}

/** Encodes `frame` as a baseline JPEG. Throws RangeError when `i420` is shorter than its size. */
export async function encodeJpeg(frame: PackedI420, quality = JPEG_QUALITY): Promise<Uint8Array> {
  const { width, height, i420 } = frame;
  const cw = (width + 1) >> 1;
  const ch = (height + 1) >> 1;
  const ySize = width * height;
  const cSize = cw * ch;
  if (i420.length < ySize + 2 * cSize) {
    throw new RangeError(`I420 of ${width}x${height} needs ${ySize + 2 * cSize} bytes`);
  }
  const rgb = i420ToRgb({
    width,
    height,
    y: { data: i420.subarray(0, ySize), width, height, stride: width },
    u: { data: i420.subarray(ySize, ySize + cSize), width: cw, height: ch, stride: cw },
    v: { data: i420.subarray(ySize + cSize, ySize + 2 * cSize), width: cw, height: ch, stride: cw },
  });
  sharpModule ??= import("sharp");
  const { default: sharp } = await sharpModule;
  const out = await sharp(rgb, { raw: { width, height, channels: 3 } })
    .jpeg({ quality, mozjpeg: false })
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}
