/**
 * The vision contract (spec 10.1, 11.11): what `createVision` returns and what it throws. Other
 * server modules (media inputs, alerts, visual questions) depend on these types only.
 */

/** One detected object (spec 11.11). bbox in pixels of the original image: [x, y, width, height]. */
export interface DetectedObject {
  /** COCO class name ("person", "cat", "cup", ...). */
  label: string;
  /** Detector score in [0, 1]. */
  confidence: number;
  /** [x, y, width, height] in pixels of the original (not letterboxed) image. */
  bbox: [number, number, number, number];
}

/** The unified visual context of spec 11.11. */
export interface VisualContext {
  /** Where the image came from, as the caller named it (e.g. "mqtt_snapshot:front_door_cam"). */
  source: string;
  /** The decoded image's size in pixels and its container format. */
  media: { width: number; height: number; format: "jpeg" | "png" | "webp" };
  /** Detections above the minimum confidence, after per-class NMS, highest confidence first. */
  objects: DetectedObject[];
  /** A short English sentence built from the detections: "I see two people and a dog." */
  description: string;
  /** Lines of text read by OCR, top to bottom; present only when `ocr: true` was asked. */
  text_detected?: string[];
  /** Milliseconds spent in each step (decode includes letterboxing). */
  timing_ms: { decode: number; detect: number; ocr?: number };
}

/** Options of one {@link Vision.analyze} call. */
export interface AnalyzeOptions {
  /** Copied into {@link VisualContext.source}. */
  source: string;
  /** Also read text with OCR (slow: ~0.5–1 s; on demand only). */
  ocr?: boolean;
  /** Aborts the wait: a queued job is dropped, a running one's result is discarded. */
  signal?: AbortSignal;
}

/** An object detector plus on-demand OCR, running off the event loop. */
export interface Vision {
  /**
   * Decodes `image` (JPEG, PNG or WebP bytes), detects objects and optionally reads text.
   * @throws {ImageError} the bytes are not a usable image.
   * @throws {VisionBusyError} the bounded queue is full.
   * @throws {DOMException} "AbortError" when `options.signal` aborts.
   */
  analyze(image: Uint8Array, options: AnalyzeOptions): Promise<VisualContext>;
  /** Stops the worker; pending calls reject. */
  close(): Promise<void>;
}

/** Options of `createVision`. */
export interface VisionOptions {
  /** "centernet" (default: ships in npm, no download) or "yolo" (an ONNX YOLOv8 export). */
  detector?: "centernet" | "yolo";
  /** Path of the YOLOv8 ONNX file ([1, 84, N] output, 640×640 input); needed for "yolo". */
  yoloModelPath?: string;
  /** Detections below this score are dropped (default 0.3). */
  minConfidence?: number;
  /** Jobs waiting or running before `analyze` throws VisionBusyError (default 4). */
  maxQueue?: number;
  /** Images declaring more pixels than this are refused before decoding (default 40 M). */
  maxPixels?: number;
  /** Images larger than this many bytes are refused (default 20 MiB). */
  maxBytes?: number;
}

/** What was wrong with an image. */
export type ImageErrorCode = "not_image" | "truncated" | "too_large" | "unsupported_format";

/** Thrown for bad images: names what was wrong (not an image, truncated, too many pixels, unsupported format). */
export class ImageError extends Error {
  override name = "ImageError";
  constructor(readonly code: ImageErrorCode, message: string) {
    super(message);
  }
}

/** Thrown when the detection queue is full (bounded). */
export class VisionBusyError extends Error {
  override name = "VisionBusyError";
  constructor(message: string) {
    super(message);
  }
}
