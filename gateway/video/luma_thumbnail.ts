/**
 * Downscales a luma (Y) plane to a small grey thumbnail by box averaging: each output pixel is
 * the mean of the source block it covers (so the downscale is also the anti-aliasing blur).
 * This is all motion detection looks at (gateway/video/motion_detector.ts): 160 pixels wide,
 * height by the frame's aspect ratio (160×120 for 4:3, 160×90 for 16:9).
 *
 * Cost is one add per source pixel sampled; `rowStep` 2 samples every other source row of each
 * block (half the reads; blocks are ≥ 4 rows tall at 640×480, so the average stays smooth).
 */

/** A plane of 8-bit samples with its row stride in bytes. */
export interface Plane {
  data: Uint8Array;
  width: number;
  height: number;
  /** Bytes from one row's start to the next (≥ width). */
  stride: number;
}

/** Thumbnail width: 160 pixels is Frigate's motion resolution class (it uses 100–180 rows) and
 * keeps a person at 5 m several pixels wide. */
export const THUMBNAIL_WIDTH = 160;

/** The thumbnail size for a frame: {@link THUMBNAIL_WIDTH} wide (or the frame's width if
 * smaller), height by aspect ratio, at least 1. */
export function thumbnailSize(width: number, height: number): { width: number; height: number } {
  const w = Math.min(THUMBNAIL_WIDTH, width);
  return { width: w, height: Math.max(1, Math.round((height * w) / width)) };
}

/** Reusable scratch of {@link downscaleLuma} for one source and target size. */
interface Scratch {
  key: string;
  columnOf: Uint16Array;
  columnCount: Uint16Array;
  sums: Uint32Array;
}

let scratch: Scratch | undefined;

/**
 * Box-downscales `source` into `out` (`width`×`height`, row-major, no padding). Samples every
 * `rowStep`-th source row (1 = all). Throws RangeError when the target is larger than the
 * source or `out` is too small.
 */
export function downscaleLuma(
  source: Plane,
  out: Uint8Array,
  options: { width: number; height: number; rowStep?: number },
): Uint8Array {
  const { width, height } = options;
  const rowStep = options.rowStep ?? 1;
  if (width < 1 || height < 1 || width > source.width || height > source.height) {
    throw new RangeError(
      `thumbnail ${width}x${height} must be 1x1..${source.width}x${source.height}`,
    );
  }
  if (out.length < width * height) {
    throw new RangeError(`thumbnail buffer has ${out.length} bytes, needs ${width * height}`);
  }
  const key = `${source.width}x${width}`;
  if (scratch?.key !== key) {
    const columnOf = new Uint16Array(source.width);
    const columnCount = new Uint16Array(width);
    for (let x = 0; x < source.width; x++) {
      columnOf[x] = Math.floor((x * width) / source.width);
      columnCount[columnOf[x]]++;
    }
    scratch = { key, columnOf, columnCount, sums: new Uint32Array(width) };
  }
  const { columnOf, columnCount, sums } = scratch;
  const data = source.data;
  for (let oy = 0; oy < height; oy++) {
    const top = Math.floor((oy * source.height) / height);
    const bottom = Math.floor(((oy + 1) * source.height) / height);
    sums.fill(0);
    let rows = 0;
    for (let y = top; y < bottom; y += rowStep) {
      const start = y * source.stride;
      for (let x = 0; x < source.width; x++) sums[columnOf[x]] += data[start + x];
      rows++;
    }
    const base = oy * width;
    for (let ox = 0; ox < width; ox++) {
      out[base + ox] = Math.round(sums[ox] / (columnCount[ox] * rows));
    }
  }
  return out;
}
