/**
 * IVF, the simplest VP8 container (what `ffmpeg -c:v libvpx out.ivf` writes and libvpx's own
 * tools read): a 32-byte file header, then per frame a 12-byte header (size, timestamp) and the
 * frame's bytes. Tests and the device CLI (`deno task device --video FILE`) stream VP8 from IVF
 * files; {@link writeIvf} builds edited streams (spliced, truncated) for tests.
 *
 * Layout (little-endian, https://wiki.multimedia.cx/index.php/IVF):
 * `DKIF` | version u16 (0) | header size u16 (32) | fourcc (`VP80`) | width u16 | height u16 |
 * time base denominator u32 | numerator u32 | frame count u32 | unused u32; then per frame
 * size u32 | timestamp u64 (in time base units) | size bytes.
 *
 * @example
 * ```ts
 * const ivf = readIvf(await Deno.readFile("clip.ivf"));
 * for (const frame of ivf.frames) send(frame.data, frame.timestamp);
 * ```
 */

/** Bytes of the IVF file header. */
export const IVF_HEADER_BYTES = 32;
/** Bytes of each frame header. */
export const IVF_FRAME_HEADER_BYTES = 12;
/** The largest frame this reader accepts: 4 MiB is far above any 1080p VP8 keyframe, far below
 * what a corrupt size field could claim (4 GiB). */
export const MAX_IVF_FRAME_BYTES = 4 * 1024 * 1024;

const SIGNATURE = "DKIF";

/** The file header's fields. */
export interface IvfHeader {
  /** Four-character codec code, e.g. `VP80`. */
  fourcc: string;
  /** Pixels, as the encoder declared them (frames may still change size). */
  width: number;
  height: number;
  /** Time base: a timestamp of `t` means `t * timeBaseNumerator / timeBaseDenominator` seconds. */
  timeBaseDenominator: number;
  timeBaseNumerator: number;
  /** Frame count as declared (ffmpeg writes it; a live writer may leave 0). */
  frameCount: number;
}

/** One compressed frame. */
export interface IvfFrame {
  /** In time-base units of the header. */
  timestamp: number;
  /** A view into the file's bytes (no copy). */
  data: Uint8Array;
}

/** A whole IVF file. */
export interface Ivf {
  header: IvfHeader;
  frames: IvfFrame[];
}

/** A malformed IVF file; the message names the field, its value and the offset. */
export class IvfError extends Error {
  override name = "IvfError";
}

/**
 * Parses a whole IVF file. Throws {@link IvfError} on a bad signature, header size, or a frame
 * whose size is over {@link MAX_IVF_FRAME_BYTES} or runs past the end of the file.
 */
export function readIvf(bytes: Uint8Array): Ivf {
  if (bytes.length < IVF_HEADER_BYTES) {
    throw new IvfError(`IVF file is ${bytes.length} bytes, shorter than its 32-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const signature = String.fromCharCode(...bytes.subarray(0, 4));
  if (signature !== SIGNATURE) {
    throw new IvfError(`IVF signature is ${JSON.stringify(signature)}, expected "DKIF"`);
  }
  const headerBytes = view.getUint16(6, true);
  if (headerBytes < IVF_HEADER_BYTES || headerBytes > bytes.length) {
    throw new IvfError(`IVF header size is ${headerBytes}, expected 32..${bytes.length}`);
  }
  const header: IvfHeader = {
    fourcc: String.fromCharCode(...bytes.subarray(8, 12)),
    width: view.getUint16(12, true),
    height: view.getUint16(14, true),
    timeBaseDenominator: view.getUint32(16, true),
    timeBaseNumerator: view.getUint32(20, true),
    frameCount: view.getUint32(24, true),
  };
  const frames: IvfFrame[] = [];
  let offset = headerBytes;
  while (offset < bytes.length) {
    if (offset + IVF_FRAME_HEADER_BYTES > bytes.length) {
      throw new IvfError(
        `IVF frame ${frames.length} header at offset ${offset} is cut off at ${bytes.length}`,
      );
    }
    const size = view.getUint32(offset, true);
    const timestamp = Number(view.getBigUint64(offset + 4, true));
    const start = offset + IVF_FRAME_HEADER_BYTES;
    if (size > MAX_IVF_FRAME_BYTES) {
      throw new IvfError(
        `IVF frame ${frames.length} size is ${size} bytes, at most ${MAX_IVF_FRAME_BYTES}`,
      );
    }
    if (start + size > bytes.length) {
      throw new IvfError(
        `IVF frame ${frames.length} of ${size} bytes at offset ${start} runs past the end (${bytes.length})`,
      );
    }
    frames.push({ timestamp, data: bytes.subarray(start, start + size) });
    offset = start + size;
  }
  return { header, frames };
}

/** Serializes frames as an IVF file (the inverse of {@link readIvf}). */
export function writeIvf(header: IvfHeader, frames: readonly IvfFrame[]): Uint8Array {
  let total = IVF_HEADER_BYTES;
  for (const frame of frames) total += IVF_FRAME_HEADER_BYTES + frame.data.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(SIGNATURE), 0);
  view.setUint16(4, 0, true);
  view.setUint16(6, IVF_HEADER_BYTES, true);
  out.set(new TextEncoder().encode(header.fourcc.padEnd(4, " ").slice(0, 4)), 8);
  view.setUint16(12, header.width, true);
  view.setUint16(14, header.height, true);
  view.setUint32(16, header.timeBaseDenominator, true);
  view.setUint32(20, header.timeBaseNumerator, true);
  view.setUint32(24, frames.length, true);
  let offset = IVF_HEADER_BYTES;
  for (const frame of frames) {
    view.setUint32(offset, frame.data.length, true);
    view.setBigUint64(offset + 4, BigInt(frame.timestamp), true);
    out.set(frame.data, offset + IVF_FRAME_HEADER_BYTES);
    offset += IVF_FRAME_HEADER_BYTES + frame.data.length;
  }
  return out;
}
