/**
 * Per-class non-maximum suppression: of two boxes of the same class that overlap more than the
 * IoU threshold, only the higher-scoring one stays. CenterNet's in-graph NMS leaves duplicates
 * (ENVIRONMENT.md, "Vision") and a YOLOv8 export has none, so both detectors go through this.
 */

/** A detection before labelling: box [x, y, width, height] in any one pixel space. */
export interface ScoredBox {
  classIndex: number;
  score: number;
  box: [number, number, number, number];
}

/** Overlap above this makes two same-class boxes one object (Ultralytics' default IoU is 0.7; 0.5 is the COCO-era default and merges CenterNet's near-duplicates). */
export const DEFAULT_IOU_THRESHOLD = 0.5;

/** Intersection over union of two [x, y, width, height] boxes; 0 when either is empty. */
export function iou(a: readonly number[], b: readonly number[]): number {
  const x1 = Math.max(a[0], b[0]);
  const y1 = Math.max(a[1], b[1]);
  const x2 = Math.min(a[0] + a[2], b[0] + b[2]);
  const y2 = Math.min(a[1] + a[3], b[1] + b[3]);
  const intersection = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
  const union = a[2] * a[3] + b[2] * b[3] - intersection;
  return union > 0 ? intersection / union : 0;
}

/**
 * Keeps, per class, the highest-scoring boxes that overlap no kept box by more than
 * `iouThreshold`. Returns them highest score first; the input is not modified.
 */
export function nonMaxSuppression<T extends ScoredBox>(
  detections: readonly T[],
  iouThreshold = DEFAULT_IOU_THRESHOLD,
): T[] {
  const sorted = [...detections].sort((a, b) => b.score - a.score);
  const kept: T[] = [];
  for (const candidate of sorted) {
    const overlaps = kept.some((other) =>
      other.classIndex === candidate.classIndex && iou(other.box, candidate.box) > iouThreshold
    );
    if (!overlaps) kept.push(candidate);
  }
  return kept;
}
