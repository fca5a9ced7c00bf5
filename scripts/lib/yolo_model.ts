/**
 * A YOLOv8n-shaped ONNX detector with seeded random weights, in the layout Ultralytics' ONNX
 * export produces (`yolo export format=onnx`): input `images` [1, 3, 640, 640] (RGB, 0–1),
 * output `output0` [1, 84, 8400] = per anchor cx, cy, w, h in input pixels then 80 class
 * probabilities. The architecture is YOLOv8n's (ultralytics/cfg/models/v8/yolov8.yaml, scale n:
 * depth 0.33, width 0.25): Conv+SiLU stem, C2f stages, SPPF, the PAN neck and the decoupled
 * Detect head with its DFL box decoding, so onnxruntime does the same work (~8.7 GFLOPs) as with
 * real weights — it measures the cost and exercises the decode path; it detects nothing real.
 *
 * Also {@link fixedYoloModel}: a model of the same signature whose output is a given constant, to
 * test the decoding of known detections.
 *
 * Built with onnx_graph.ts's graph builder and seeded PRNG, like the Whisper generators.
 */
import type { onnx as proto } from "onnx-proto";
import { encodeModel, FLOAT, GraphBuilder, prng, uniform, valueInfo } from "./onnx_graph.ts";

/** YOLOv8's input side in pixels. */
export const YOLO_INPUT_SIZE = 640;
/** COCO classes. */
export const YOLO_CLASSES = 80;
/** Anchors of a 640 input: 80² + 40² + 20² at strides 8, 16, 32. */
export const YOLO_ANCHORS = 8400;
/** DFL bins per box side (Detect.reg_max). */
const REG_MAX = 16;
/** Output strides of the P3, P4, P5 levels. */
const STRIDES = [8, 16, 32];

/** YOLOv8's blocks on top of the graph builder; weights drawn from `random`. */
class Graph extends GraphBuilder {
  constructor(readonly random: () => number) {
    super("");
  }

  /** A 1-D int64 initializer (Slice bounds, shapes); returns its unique name. */
  i64(values: number[]): string {
    return this.ints("i", values);
  }

  /** Conv2d with bias (BatchNorm folded in, as the export does), He-uniform random weights. */
  conv(x: string, cIn: number, cOut: number, k: number, stride = 1, biasValue?: number): string {
    const fanIn = cIn * k * k;
    const weight = uniform(this.random, cOut * fanIn, Math.sqrt(3 / fanIn));
    const bias = new Float32Array(cOut).fill(biasValue ?? 0);
    const pad = Math.floor(k / 2);
    const w = this.floats("conv_w", [cOut, cIn, k, k], weight);
    return this.op("Conv", [x, w, this.floats("conv_b", [cOut], bias)], {
      kernel_shape: [k, k],
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
    });
  }

  /** Ultralytics' Conv: conv → SiLU (x·sigmoid(x)). */
  cbs(x: string, cIn: number, cOut: number, k: number, stride = 1): string {
    const y = this.conv(x, cIn, cOut, k, stride);
    return this.op("Mul", [y, this.op("Sigmoid", [y])]);
  }

  /** C2f(c1, c2, n, shortcut): split in two halves, n bottlenecks on the second, concat all. */
  c2f(x: string, cIn: number, cOut: number, n: number, shortcut: boolean): string {
    const c = cOut / 2;
    const y = this.cbs(x, cIn, 2 * c, 1);
    const parts = [
      this.op("Slice", [y, this.i64([0]), this.i64([c]), this.i64([1])]),
      this.op("Slice", [y, this.i64([c]), this.i64([2 * c]), this.i64([1])]),
    ];
    for (let i = 0; i < n; i++) {
      const last = parts.at(-1)!;
      const b = this.cbs(this.cbs(last, c, c, 3), c, c, 3);
      parts.push(shortcut ? this.op("Add", [last, b]) : b);
    }
    return this.cbs(this.op("Concat", parts, { axis: 1 }), (2 + n) * c, cOut, 1);
  }

  /** SPPF(c1, c2, k=5): three chained 5×5 max-pools, concatenated. */
  sppf(x: string, cIn: number, cOut: number): string {
    const c = cIn / 2;
    const y = this.cbs(x, cIn, c, 1);
    const pool = (v: string) =>
      this.op("MaxPool", [v], { kernel_shape: [5, 5], strides: [1, 1], pads: [2, 2, 2, 2] });
    const p1 = pool(y);
    const p2 = pool(p1);
    const p3 = pool(p2);
    return this.cbs(this.op("Concat", [y, p1, p2, p3], { axis: 1 }), 4 * c, cOut, 1);
  }

  upsample(x: string): string {
    const scales = this.floats("scales", [4], new Float32Array([1, 1, 2, 2]));
    return this.op("Resize", [x, "", scales]); // mode "nearest", the default, as Upsample exports
  }
}

/** Anchor centres (grid + 0.5) and strides for the three levels, as Detect.make_anchors. */
function anchors(): { points: Float32Array; strides: Float32Array } {
  const points = new Float32Array(2 * YOLO_ANCHORS);
  const strides = new Float32Array(YOLO_ANCHORS);
  let i = 0;
  for (const stride of STRIDES) {
    const side = YOLO_INPUT_SIZE / stride;
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++, i++) {
        points[i] = x + 0.5;
        points[YOLO_ANCHORS + i] = y + 0.5;
        strides[i] = stride;
      }
    }
  }
  return { points, strides };
}

const INPUT = { name: "images", dims: [1, 3, YOLO_INPUT_SIZE, YOLO_INPUT_SIZE] };
const OUTPUT = { name: "output0", dims: [1, 4 + YOLO_CLASSES, YOLO_ANCHORS] };

/** The graph's nodes as a model with YOLOv8's export signature, `output` as `output0`. */
function encode(nodes: Graph, output: string, docString: string): Uint8Array {
  nodes.op("Identity", [output], {}, OUTPUT.name);
  const graph: proto.IGraphProto = nodes.graph(
    "yolov8",
    [valueInfo(INPUT.name, FLOAT, INPUT.dims)],
    [valueInfo(OUTPUT.name, FLOAT, OUTPUT.dims)],
  );
  return encodeModel(graph, { producer: "naila scripts/lib/yolo_model.ts", version: 1, docString });
}

/**
 * YOLOv8n with random weights (seeded), as ONNX bytes (~13 MB). `classBias` is added to the
 * class logits (default −4: a few random anchors pass a 0.3 threshold, as on a quiet frame).
 */
export function randomYoloModel(seed = 8, classBias = -4): Uint8Array {
  const g = new Graph(prng(seed));
  const c = (n: number) => n / 4; // width multiple 0.25
  let x = g.cbs(INPUT.name, 3, c(64), 3, 2);
  x = g.cbs(x, c(64), c(128), 3, 2);
  x = g.c2f(x, c(128), c(128), 1, true);
  x = g.cbs(x, c(128), c(256), 3, 2);
  const p3 = g.c2f(x, c(256), c(256), 2, true);
  x = g.cbs(p3, c(256), c(512), 3, 2);
  const p4 = g.c2f(x, c(512), c(512), 2, true);
  x = g.cbs(p4, c(512), c(1024), 3, 2);
  x = g.c2f(x, c(1024), c(1024), 1, true);
  const p5 = g.sppf(x, c(1024), c(1024));
  const h12 = g.c2f(
    g.op("Concat", [g.upsample(p5), p4], { axis: 1 }),
    c(1024) + c(512),
    c(512),
    1,
    false,
  );
  const out3 = g.c2f(
    g.op("Concat", [g.upsample(h12), p3], { axis: 1 }),
    c(512) + c(256),
    c(256),
    1,
    false,
  );
  const out4 = g.c2f(
    g.op("Concat", [g.cbs(out3, c(256), c(256), 3, 2), h12], { axis: 1 }),
    c(256) + c(512),
    c(512),
    1,
    false,
  );
  const out5 = g.c2f(
    g.op("Concat", [g.cbs(out4, c(512), c(512), 3, 2), p5], { axis: 1 }),
    c(512) + c(1024),
    c(1024),
    1,
    false,
  );
  // Detect head: per level a box branch (4·REG_MAX) and a class branch (80), flattened.
  const levels = [[out3, c(256)], [out4, c(512)], [out5, c(1024)]] as const;
  const boxWidth = Math.max(16, c(256) / 4, 4 * REG_MAX);
  const classWidth = Math.max(c(256), Math.min(YOLO_CLASSES, 100));
  const flat = levels.map(([feature, channels]) => {
    const box = g.conv(
      g.cbs(g.cbs(feature, channels, boxWidth, 3), boxWidth, boxWidth, 3),
      boxWidth,
      4 * REG_MAX,
      1,
    );
    const cls = g.conv(
      g.cbs(g.cbs(feature, channels, classWidth, 3), classWidth, classWidth, 3),
      classWidth,
      YOLO_CLASSES,
      1,
      1,
      classBias,
    );
    const both = g.op("Concat", [box, cls], { axis: 1 });
    return g.op("Reshape", [both, g.i64([1, 4 * REG_MAX + YOLO_CLASSES, -1])]);
  });
  const all = g.op("Concat", flat, { axis: 2 }); // [1, 144, 8400]
  const boxLogits = g.op("Slice", [all, g.i64([0]), g.i64([4 * REG_MAX]), g.i64([1])]);
  const classLogits = g.op("Slice", [
    all,
    g.i64([4 * REG_MAX]),
    g.i64([4 * REG_MAX + YOLO_CLASSES]),
    g.i64([1]),
  ]);
  // DFL: softmax over 16 bins per side, expectation with weights 0..15 → distances ltrb.
  const bins = g.op("Softmax", [g.op("Reshape", [boxLogits, g.i64([1, 4, REG_MAX, -1])])], {
    axis: 2,
  });
  const expectation = g.floats(
    "bins",
    [1, 1, REG_MAX, 1],
    new Float32Array(REG_MAX).map((_, i) => i),
  );
  const distances = g.op("ReduceSum", [g.op("Mul", [bins, expectation]), g.i64([2])], {
    keepdims: 0,
  }); // [1, 4, 8400]
  const { points, strides } = anchors();
  const anchorPoints = g.floats("anchors", [1, 2, YOLO_ANCHORS], points);
  const lt = g.op("Slice", [distances, g.i64([0]), g.i64([2]), g.i64([1])]);
  const rb = g.op("Slice", [distances, g.i64([2]), g.i64([4]), g.i64([1])]);
  const x1y1 = g.op("Sub", [anchorPoints, lt]);
  const x2y2 = g.op("Add", [anchorPoints, rb]);
  const half = g.scalar("half", 0.5);
  const centre = g.op("Mul", [g.op("Add", [x1y1, x2y2]), half]);
  const size = g.op("Sub", [x2y2, x1y1]);
  const boxes = g.op("Mul", [
    g.op("Concat", [centre, size], { axis: 1 }),
    g.floats("strides", [1, 1, YOLO_ANCHORS], strides),
  ]);
  const output = g.op("Concat", [boxes, g.op("Sigmoid", [classLogits])], { axis: 1 });
  return encode(g, output, `YOLOv8n-shaped, random weights, seed ${seed}`);
}

/**
 * A model with YOLOv8's signature whose output is `output` ([1, 84, 8400] values, anchor-minor
 * as the export lays them out) whatever the image: the input is multiplied by 0 and added, so it
 * stays a real input of the graph.
 */
export function fixedYoloModel(output: Float32Array): Uint8Array {
  if (output.length !== (4 + YOLO_CLASSES) * YOLO_ANCHORS) {
    throw new Error(`fixed output has ${output.length} values, expected 84 × 8400`);
  }
  const g = new Graph(prng(0));
  const constant = g.floats("output", OUTPUT.dims, output);
  const zero = g.op("ReduceSum", [g.op("Mul", [INPUT.name, g.scalar("zero", 0)])], {
    keepdims: 0,
  });
  return encode(g, g.op("Add", [constant, zero]), "YOLOv8 signature, fixed output");
}
