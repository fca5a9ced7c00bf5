/**
 * The spec's YOLO (10.1 "YOLO ▶ Detections") as an ONNX file in the standard YOLOv8 export layout
 * on onnxruntime-node: input [1, 3, 640, 640] RGB scaled to 0–1, letterboxed with grey 114;
 * output [1, 84, N]: for each of N anchors (8400 at 640) cx, cy, w, h in input pixels, then the
 * 80 COCO class probabilities, laid out channel-major (all N cx first). No NMS in the graph:
 * nms.ts does it. For users who download a YOLOv8 export; scripts/lib/yolo_model.ts makes one
 * with random weights to measure the cost.
 */
import * as ort from "onnxruntime-node";
import type { Detector } from "./detector.ts";
import type { ScoredBox } from "./nms.ts";

/** YOLOv8's default export size. */
export const YOLO_INPUT_SIZE = 640;
/** Ultralytics' letterbox grey (LetterBox(color=(114, 114, 114))). */
const YOLO_PAD = 114;
/** Box values before the class scores: cx, cy, w, h. */
const BOX_VALUES = 4;
/** Candidates kept for NMS, best first: a bound on NMS's quadratic cost whatever the weights. */
const MAX_CANDIDATES = 300;

/**
 * Loads a YOLOv8 ONNX export from `path` with one intra-op thread (the server's other work keeps
 * the second core).
 * @throws {Error} the file is missing, not ONNX, or its input/output shapes are not YOLOv8's.
 */
export async function loadYolo(path: string): Promise<Detector> {
  const session = await ort.InferenceSession.create(path, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  }).catch((error) => {
    throw new Error(`YOLO model ${path} could not be loaded: ${(error as Error).message}`);
  });
  const [input] = session.inputMetadata;
  const [output] = session.outputMetadata;
  const problem = yoloSignatureProblem(session.inputMetadata, session.outputMetadata);
  if (problem !== undefined) {
    await session.release();
    throw new Error(`YOLO model ${path} is not a YOLOv8 export: ${problem}`);
  }
  return new Yolo(session, input.name, output.name);
}

/** What is wrong with a model's signature for a 640² YOLOv8 export, or undefined when nothing. */
function yoloSignatureProblem(
  inputs: readonly ort.InferenceSession.ValueMetadata[],
  outputs: readonly ort.InferenceSession.ValueMetadata[],
): string | undefined {
  if (inputs.length !== 1 || outputs.length !== 1) {
    return `${inputs.length} inputs and ${outputs.length} outputs, expected one of each`;
  }
  const [input] = inputs;
  const [output] = outputs;
  const expected = [1, 3, YOLO_INPUT_SIZE, YOLO_INPUT_SIZE];
  // A dynamic axis is a string (or -1); only fixed sizes can be wrong.
  const fixed = (shape: readonly unknown[], i: number) =>
    typeof shape[i] === "number" && shape[i] !== -1;
  if (
    !input.isTensor || input.shape.length !== 4 ||
    expected.some((size, i) => fixed(input.shape, i) && input.shape[i] !== size)
  ) {
    return `input ${input.name} is ${
      input.isTensor ? `[${input.shape}]` : "not a tensor"
    }, expected [${expected}]`;
  }
  if (
    !output.isTensor || output.shape.length !== 3 ||
    (fixed(output.shape, 1) && (output.shape[1] as number) <= BOX_VALUES)
  ) {
    return `output ${output.name} is ${
      output.isTensor ? `[${output.shape}]` : "not a tensor"
    }, expected [1, 4 + classes, anchors]`;
  }
  return undefined;
}

class Yolo implements Detector {
  readonly name = "yolo";
  readonly inputSize = YOLO_INPUT_SIZE;
  readonly padValue = YOLO_PAD;
  /** Reused planar input: R plane, G plane, B plane, 0–1. */
  readonly #planes = new Float32Array(3 * YOLO_INPUT_SIZE * YOLO_INPUT_SIZE);

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly inputName: string,
    private readonly outputName: string,
  ) {}

  async detect(rgb: Uint8Array, minConfidence: number): Promise<ScoredBox[]> {
    const area = YOLO_INPUT_SIZE * YOLO_INPUT_SIZE;
    const planes = this.#planes;
    for (let i = 0, p = 0; p < area; p++, i += 3) {
      planes[p] = rgb[i] / 255;
      planes[area + p] = rgb[i + 1] / 255;
      planes[2 * area + p] = rgb[i + 2] / 255;
    }
    const feeds = {
      [this.inputName]: new ort.Tensor("float32", planes, [1, 3, YOLO_INPUT_SIZE, YOLO_INPUT_SIZE]),
    };
    const result = await this.session.run(feeds);
    const output = result[this.outputName];
    try {
      return decodeYoloOutput(output.data as Float32Array, output.dims, minConfidence);
    } finally {
      output.dispose();
    }
  }

  close(): Promise<void> {
    return this.session.release();
  }
}

/**
 * Turns a YOLOv8 output [1, 4 + classes, N] into boxes [x, y, width, height] in input pixels,
 * each anchor's best class if its probability reaches `minConfidence`; at most the
 * {@link MAX_CANDIDATES} best.
 * @throws {Error} when `dims` is not [1, 4 + classes, N].
 */
export function decodeYoloOutput(
  data: Float32Array,
  dims: readonly number[],
  minConfidence: number,
): ScoredBox[] {
  const [batch, channels, anchors] = dims;
  if (
    dims.length !== 3 || batch !== 1 || channels <= BOX_VALUES || data.length !== channels * anchors
  ) {
    throw new Error(`YOLO output has shape [${dims}], expected [1, 4 + classes, anchors]`);
  }
  const classes = channels - BOX_VALUES;
  const found: ScoredBox[] = [];
  for (let a = 0; a < anchors; a++) {
    let best = 0;
    let classIndex = -1;
    for (let c = 0; c < classes; c++) {
      const score = data[(BOX_VALUES + c) * anchors + a];
      if (score > best) {
        best = score;
        classIndex = c;
      }
    }
    if (classIndex < 0 || best < minConfidence) continue;
    const w = data[2 * anchors + a];
    const h = data[3 * anchors + a];
    const x = data[a] - w / 2;
    const y = data[anchors + a] - h / 2;
    found.push({ classIndex, score: best, box: [x, y, w, h] });
  }
  found.sort((a, b) => b.score - a.score);
  return found.length > MAX_CANDIDATES ? found.slice(0, MAX_CANDIDATES) : found;
}
