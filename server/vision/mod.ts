/**
 * Vision (spec 10.1, 11.11): decode a JPEG/PNG/WebP image, detect COCO objects (CenterNet on
 * TF.js WASM, or a YOLOv8 ONNX export), describe them in one sentence, and read text on demand.
 * Detection runs in a worker behind a bounded queue so a camera never slows a voice turn.
 *
 * @example
 * ```ts
 * import { createVision } from "./mod.ts";
 * const vision = await createVision();
 * const context = await vision.analyze(await Deno.readFile("photo.jpg"), { source: "upload" });
 * console.log(context.description); // "I see a person and a cat."
 * await vision.close();
 * ```
 */
import type { Vision, VisionOptions } from "./types.ts";

export {
  type AnalyzeOptions,
  type DetectedObject,
  ImageError,
  type ImageErrorCode,
  type Vision,
  VisionBusyError,
  type VisionOptions,
  type VisualContext,
} from "./types.ts";

/**
 * Starts the vision worker and loads the detector (CenterNet by default).
 * @throws {Error} the YOLO model file is missing or not a YOLOv8 export.
 */
export function createVision(_options: VisionOptions = {}): Promise<Vision> {
  return Promise.reject(new Error("vision: implementation follows (interface published first)"));
}
