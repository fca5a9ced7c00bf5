/**
 * Test images for the vision tests: real photos (Debian's python3-skimage, fetched by
 * scripts/test_photos.ts) and hand-made bad ones. Test support only; no production code imports it.
 */
import sharp from "sharp";
import { crc32 } from "node:zlib";
import { concatBytes } from "../../shared/audio.ts";
import { ensureTestPhotos, type Photo, photoPath } from "../../scripts/test_photos.ts";

/** The bytes of one of the skimage photos, fetching them first if set-up has not. */
export async function photo(name: Photo): Promise<Uint8Array> {
  await ensureTestPhotos(new URL("../..", import.meta.url).pathname, true);
  return await Deno.readFile(photoPath(name));
}

/** A PNG chunk: length, type, data, CRC over type and data. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const body = new Uint8Array(4 + data.length);
  body.set(new TextEncoder().encode(type));
  body.set(data, 4);
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(body, 4);
  view.setUint32(8 + data.length, crc32(body));
  return out;
}

/**
 * A valid PNG header declaring `width` × `height` RGB pixels, followed by a tiny IDAT and IEND:
 * a decompression bomb's shape without its payload.
 */
export function pngDeclaring(width: number, height: number): Uint8Array {
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, RGB, deflate, adaptive filter, no interlace
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", new Uint8Array([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    chunk("IEND", new Uint8Array()),
  ];
  return concatBytes(parts);
}

/** A photo re-encoded as JPEG (optionally resized to `width` × `height`, stretched). */
export async function jpeg(name: Photo, size?: [number, number]): Promise<Uint8Array> {
  let image = sharp(await photo(name));
  if (size !== undefined) image = image.resize(size[0], size[1], { fit: "fill" });
  return new Uint8Array(await image.jpeg({ quality: 85 }).toBuffer());
}

/** The first `fraction` of a JPEG: the header parses, the scan data ends early. */
export async function truncatedJpeg(fraction = 0.5): Promise<Uint8Array> {
  const whole = await jpeg("chelsea");
  return whole.slice(0, Math.floor(whole.length * fraction));
}

/** A 1×1 GIF: a real image format vision does not take. */
export const GIF_1X1 = Uint8Array.from(
  atob("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw=="),
  (c) => c.charCodeAt(0),
);
