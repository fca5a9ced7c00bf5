/**
 * Image decoding for vision (spec 10.1 "Decode ▶ Image", issue 12): JPEG, PNG and WebP through
 * sharp (libvips), with every limit checked BEFORE pixels are allocated — the byte size first, the
 * format from the magic bytes, then the dimensions the header declares (sharp's `metadata()` reads
 * only the header) — and the letterbox a detector wants: the whole image scaled to fit a square,
 * centred, the rest padded (stretching turned the cat in chelsea.png into a dog).
 */
import sharp from "sharp";
import { ImageError } from "./types.ts";

/** The formats vision decodes (spec 11.11's `media.format`). */
export type ImageFormat = "jpeg" | "png" | "webp";

/** Default byte limit: a 12 MP JPEG from a phone is ~5 MB; a PNG screenshot of 4K ~10 MB. */
export const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;
/** Default pixel limit: 40 MP covers phone cameras (12–48 MP, the largest downscaled by upload) while refusing decompression bombs (a 100,000² PNG is 10 G pixels). */
export const DEFAULT_MAX_PIXELS = 40_000_000;

/** Formats recognised by their magic bytes only to be refused with their name. */
const UNSUPPORTED_SIGNATURES: { name: string; test: (bytes: Uint8Array) => boolean }[] = [
  { name: "GIF", test: (b) => ascii(b, 0, 4) === "GIF8" },
  { name: "BMP", test: (b) => ascii(b, 0, 2) === "BM" },
  { name: "TIFF", test: (b) => ascii(b, 0, 4) === "II*\0" || ascii(b, 0, 4) === "MM\0*" },
  { name: "HEIF/AVIF", test: (b) => ascii(b, 4, 8) === "ftyp" },
  { name: "JPEG 2000", test: (b) => ascii(b, 4, 8) === "jP  " },
  { name: "ICO", test: (b) => b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 0 },
  { name: "SVG", test: (b) => /^\s*(<\?xml|<svg)/.test(ascii(b, 0, 64)) },
];

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}

/**
 * The format of `bytes` from its magic bytes, without decoding.
 * @throws {ImageError} "too_large" over `maxBytes`, "unsupported_format" for a known image format
 * vision does not take (GIF, BMP, TIFF, HEIF, ...), "not_image" for anything else.
 */
export function sniffImage(bytes: Uint8Array, maxBytes = DEFAULT_MAX_BYTES): ImageFormat {
  if (bytes.length > maxBytes) {
    throw new ImageError("too_large", `image is ${bytes.length} bytes, the limit is ${maxBytes}`);
  }
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  if (ascii(bytes, 0, 8) === "\x89PNG\r\n\x1a\n") return "png";
  if (ascii(bytes, 0, 4) === "RIFF" && ascii(bytes, 8, 12) === "WEBP") return "webp";
  const known = UNSUPPORTED_SIGNATURES.find(({ test }) => test(bytes));
  if (known !== undefined) {
    throw new ImageError(
      "unsupported_format",
      `${known.name} images are not supported; send JPEG, PNG or WebP`,
    );
  }
  throw new ImageError(
    "not_image",
    `not an image: ${bytes.length} bytes starting ${hex(bytes.subarray(0, 8))}, ` +
      "expected JPEG, PNG or WebP",
  );
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ") || "(empty)";
}

/** Where a square model input's pixels come from: original = (input - pad) / scale. */
export interface Letterbox {
  /** RGB bytes, row-major, `size` × `size` × 3. */
  rgb: Uint8Array;
  /** The square's side in pixels (the model's input). */
  size: number;
  /** Input pixels per original pixel. */
  scale: number;
  /** Padding left and top of the scaled image, in input pixels. */
  padX: number;
  padY: number;
}

/** A decoded image and its letterbox. */
export interface DecodedImage {
  format: ImageFormat;
  /** Size of the image as displayed (after its EXIF orientation), in pixels. */
  width: number;
  height: number;
  letterbox: Letterbox;
}

/** Options of {@link decodeImage}. */
export interface DecodeOptions {
  /** Side of the square the detector takes (CenterNet 512, YOLOv8 640). */
  inputSize: number;
  /** Grey level of the padding (YOLOv8 trains with 114; CenterNet with 0). */
  padValue: number;
  maxBytes?: number;
  maxPixels?: number;
}

/**
 * Decodes JPEG/PNG/WebP bytes and letterboxes them into `inputSize`². Limits come first: bytes,
 * format, then the declared width × height, so a PNG declaring 100,000 × 100,000 pixels is
 * refused before any pixel buffer exists.
 * @throws {ImageError} not_image, unsupported_format, too_large, or truncated (the data ends or is
 * corrupt before the declared image is complete).
 */
export async function decodeImage(
  bytes: Uint8Array,
  options: DecodeOptions,
): Promise<DecodedImage> {
  const { inputSize, padValue } = options;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const format = sniffImage(bytes, options.maxBytes);
  // Header only: sharp's own pixel limit is off here so the size can be reported; ours follows.
  const header = await sharp(bytes, { limitInputPixels: false }).metadata().catch((error) => {
    throw new ImageError("truncated", `${format} header could not be read: ${reason(error)}`);
  });
  const width = header.autoOrient?.width ?? header.width;
  const height = header.autoOrient?.height ?? header.height;
  if (!(width > 0 && height > 0)) {
    throw new ImageError("truncated", `${format} header declares no size`);
  }
  const pixels = width * height;
  if (pixels > maxPixels) {
    throw new ImageError(
      "too_large",
      `${format} declares ${width} × ${height} = ${pixels} pixels, the limit is ${maxPixels}`,
    );
  }
  const scale = Math.min(inputSize / width, inputSize / height);
  const scaledWidth = Math.max(1, Math.round(width * scale));
  const scaledHeight = Math.max(1, Math.round(height * scale));
  const padX = Math.floor((inputSize - scaledWidth) / 2);
  const padY = Math.floor((inputSize - scaledHeight) / 2);
  const background = { r: padValue, g: padValue, b: padValue };
  const { data, info } = await sharp(bytes, { failOn: "truncated", limitInputPixels: maxPixels })
    .autoOrient()
    .resize(scaledWidth, scaledHeight, { fit: "fill" })
    .extend({
      top: padY,
      bottom: inputSize - scaledHeight - padY,
      left: padX,
      right: inputSize - scaledWidth - padX,
      background,
    })
    .removeAlpha()
    .toColourspace("srgb")
    .raw()
    .toBuffer({ resolveWithObject: true })
    .catch((error) => {
      throw new ImageError("truncated", `${format} data is truncated or corrupt: ${reason(error)}`);
    });
  if (info.width !== inputSize || info.height !== inputSize || info.channels !== 3) {
    throw new Error(
      `letterbox produced ${info.width}×${info.height}×${info.channels}, expected ${inputSize}²×3`,
    );
  }
  const rgb = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { format, width, height, letterbox: { rgb, size: inputSize, scale, padX, padY } };
}

/**
 * A box [x, y, width, height] in letterboxed input pixels → original image pixels, clipped to the
 * image and rounded.
 */
export function toImageBox(
  box: readonly number[],
  letterbox: Omit<Letterbox, "rgb">,
  width: number,
  height: number,
): [number, number, number, number] {
  const { scale, padX, padY } = letterbox;
  const x1 = clamp((box[0] - padX) / scale, 0, width);
  const y1 = clamp((box[1] - padY) / scale, 0, height);
  const x2 = clamp((box[0] + box[2] - padX) / scale, 0, width);
  const y2 = clamp((box[1] + box[3] - padY) / scale, 0, height);
  return [Math.round(x1), Math.round(y1), Math.round(x2 - x1), Math.round(y2 - y1)];
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message.split("\n")[0] : String(error);
}

/**
 * Downscales an image so its longer side is at most `maxSide` and returns RGBA pixels (the OCR
 * input, issue 12: "its input downscaled"). Call after {@link decodeImage} accepted the bytes.
 */
export async function decodeRgba(
  bytes: Uint8Array,
  maxSide: number,
): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(bytes, { failOn: "truncated" })
    .autoOrient()
    .resize(maxSide, maxSide, { fit: "inside", withoutEnlargement: true })
    .ensureAlpha(1)
    .toColourspace("srgb")
    .raw()
    .toBuffer({ resolveWithObject: true });
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
  };
}
