/**
 * One image → spec 11.11's visual context, in the calling thread: decode and letterbox
 * (image_decoder.ts), detect (CenterNet or YOLO), per-class NMS, boxes back to image pixels,
 * labels, the description, and OCR when asked. vision_worker.ts runs it off the server's event
 * loop; tests and benchmarks may run it directly.
 */
import sharp from "sharp";
import { loadCenterNet } from "./centernet_detector.ts";
import { COCO_LABELS } from "./coco_labels.ts";
import { describeObjects } from "./describe.ts";
import type { Detector } from "./detector.ts";
import {
  decodeImage,
  decodeRgba,
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_PIXELS,
  toImageBox,
} from "./image_decoder.ts";
import { nonMaxSuppression } from "./nms.ts";
import { loadOcr, OCR_MAX_SIDE, type OcrReader } from "./ocr_reader.ts";
import type { DetectedObject, VisionOptions, VisualContext } from "./types.ts";
import { loadYolo } from "./yolo_detector.ts";

/** Default detection threshold: CenterNet scored the four test photos' objects 0.44–0.71 and its false positives (a dog in chelsea.png) ≤ 0.25. */
export const DEFAULT_MIN_CONFIDENCE = 0.3;
/** Side of the warm-up image: small, so it costs the decoder little. */
const WARM_UP_SIDE = 128;
/** Confidences are reported to two decimals: more is noise. */
const CONFIDENCE_DECIMALS = 100;

/** Spec 11.11's context without `source`, which the caller adds. */
export type Analysis = Omit<VisualContext, "source">;

/** The vision pipeline in one thread. */
export interface Analyzer {
  readonly detectorName: string;
  /**
   * @throws {ImageError} for bytes that are not a usable JPEG/PNG/WebP image.
   */
  analyze(image: Uint8Array, options?: { ocr?: boolean }): Promise<Analysis>;
  close(): Promise<void>;
}

/** The options the analyzer uses (`maxQueue` belongs to the worker client). */
export type AnalyzerOptions = Omit<VisionOptions, "maxQueue">;

/**
 * Loads the chosen detector (CenterNet by default). OCR models load on the first `ocr: true`.
 * @throws {Error} "yolo" without `yoloModelPath`, or a YOLO file that does not load.
 */
export async function createAnalyzer(options: AnalyzerOptions = {}): Promise<Analyzer> {
  const kind = options.detector ?? "centernet";
  let detector: Detector;
  if (kind === "yolo") {
    if (options.yoloModelPath === undefined) {
      throw new Error('vision detector "yolo" needs yoloModelPath (a YOLOv8 ONNX export)');
    }
    detector = await loadYolo(options.yoloModelPath);
  } else if (kind === "centernet") {
    detector = await loadCenterNet();
  } else {
    throw new Error(`unknown vision detector "${kind}", expected "centernet" or "yolo"`);
  }
  const minConfidence = options.minConfidence ?? DEFAULT_MIN_CONFIDENCE;
  const limits = {
    maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
    maxPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS,
  };
  let ocr: Promise<OcrReader> | undefined;

  const analyzer: Analyzer = {
    detectorName: detector.name,
    async analyze(image, { ocr: wantText = false } = {}) {
      const started = performance.now();
      const decoded = await decodeImage(image, {
        ...limits,
        inputSize: detector.inputSize,
        padValue: detector.padValue,
      });
      const decodedAt = performance.now();
      const boxes = nonMaxSuppression(await detector.detect(decoded.letterbox.rgb, minConfidence));
      const objects: DetectedObject[] = boxes
        .filter(({ classIndex }) => classIndex >= 0 && classIndex < COCO_LABELS.length)
        .map(({ classIndex, score, box }) => ({
          label: COCO_LABELS[classIndex],
          confidence: Math.round(score * CONFIDENCE_DECIMALS) / CONFIDENCE_DECIMALS,
          bbox: toImageBox(box, decoded.letterbox, decoded.width, decoded.height),
        }))
        .filter(({ bbox }) => bbox[2] > 0 && bbox[3] > 0);
      const detectedAt = performance.now();
      const analysis: Analysis = {
        media: { width: decoded.width, height: decoded.height, format: decoded.format },
        objects,
        description: describeObjects(objects),
        timing_ms: {
          decode: Math.round(decodedAt - started),
          detect: Math.round(detectedAt - decodedAt),
        },
      };
      if (wantText) {
        // A failed load is retried on the next request rather than cached.
        ocr ??= loadOcr().catch((error) => {
          ocr = undefined;
          throw error;
        });
        const reader = await ocr;
        analysis.text_detected = await reader.read(await decodeRgba(image, OCR_MAX_SIDE));
        analysis.timing_ms.ocr = Math.round(performance.now() - detectedAt);
      }
      return analysis;
    },
    close: () => detector.close(),
  };
  // One run through the whole path: the first compiles WASM kernels, sizes buffers and starts
  // libvips (~0.5–1 s), which would otherwise fall on the first camera's snapshot.
  await analyzer.analyze(await warmUpImage());
  return analyzer;
}

/** A small grey PNG with a lighter square: something for the detector to look at. */
async function warmUpImage(): Promise<Uint8Array> {
  const square = await sharp({
    create: { width: WARM_UP_SIDE / 2, height: WARM_UP_SIDE / 2, channels: 3, background: "#ddd" },
  }).png().toBuffer();
  const image = await sharp({
    create: { width: WARM_UP_SIDE, height: WARM_UP_SIDE, channels: 3, background: "#777" },
  }).composite([{ input: square, left: WARM_UP_SIDE / 4, top: WARM_UP_SIDE / 4 }]).png().toBuffer();
  return new Uint8Array(image);
}
