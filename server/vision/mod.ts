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
export { createVision, DEFAULT_MAX_QUEUE } from "./vision_client.ts";
export { DEFAULT_MIN_CONFIDENCE } from "./analyzer.ts";
export { DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS } from "./image_decoder.ts";
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
