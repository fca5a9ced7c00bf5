/**
 * What the vision worker needs of an object detector: the square input it takes and a run on one
 * letterboxed RGB frame. CenterNet (centernet_detector.ts) and a YOLOv8 ONNX export
 * (yolo_detector.ts) implement it.
 */
import type { ScoredBox } from "./nms.ts";

/** A COCO object detector on a square letterboxed RGB input. */
export interface Detector {
  /** "centernet" or "yolo". */
  readonly name: string;
  /** Side of the square input in pixels. */
  readonly inputSize: number;
  /** Grey level the letterbox pads with (what the model was trained on). */
  readonly padValue: number;
  /**
   * Runs on `rgb` (inputSize² × 3 bytes, row-major) and returns boxes [x, y, width, height] in
   * input pixels with a COCO class index, scores at or above `minConfidence`, before NMS.
   */
  detect(rgb: Uint8Array, minConfidence: number): Promise<ScoredBox[]>;
  /** Frees the model. */
  close(): Promise<void>;
}
