import assert from "node:assert/strict";
import { join } from "node:path";
import { fixedYoloModel, YOLO_ANCHORS, YOLO_CLASSES } from "../../scripts/lib/yolo_model.ts";
import { createAnalyzer } from "./analyzer.ts";
import { COCO_LABELS } from "./coco_labels.ts";
import { jpeg } from "./test_images.ts";
import { decodeYoloOutput, loadYolo } from "./yolo_detector.ts";
import onnxProto from "onnx-proto";

Deno.test("decodeYoloOutput: best class per anchor, centre boxes to corner boxes, threshold", () => {
  // [1, 4 + 2 classes, 3 anchors], channel-major as the export lays it out.
  const data = Float32Array.from([
    ...[100, 200, 300], // cx
    ...[50, 60, 70], // cy
    ...[20, 10, 40], // w
    ...[10, 30, 20], // h
    ...[0.9, 0.1, 0.2], // class 0
    ...[0.3, 0.2, 0.7], // class 1
  ]);
  const boxes = decodeYoloOutput(data, [1, 6, 3], 0.25);
  assert.deepEqual(boxes, [
    { classIndex: 0, score: data[12], box: [90, 45, 20, 10] },
    { classIndex: 1, score: data[17], box: [280, 60, 40, 20] },
  ]); // anchor 1's best is 0.2: below the threshold
});

Deno.test("decodeYoloOutput: refuses an output that is not [1, 4 + classes, anchors]", () => {
  assert.throws(() => decodeYoloOutput(new Float32Array(8), [1, 4, 2], 0.3), /\[1,4,2\]/);
  assert.throws(() => decodeYoloOutput(new Float32Array(12), [2, 6, 1], 0.3), /expected \[1, 4/);
});

/** A [1, 84, 8400] output with the given detections (anchor index → values), zero elsewhere. */
function output(detections: { anchor: number; box: number[]; label: string; score: number }[]) {
  const data = new Float32Array((4 + YOLO_CLASSES) * YOLO_ANCHORS);
  for (const { anchor, box, label, score } of detections) {
    box.forEach((value, i) => data[i * YOLO_ANCHORS + anchor] = value);
    data[(4 + COCO_LABELS.indexOf(label)) * YOLO_ANCHORS + anchor] = score;
  }
  return data;
}

Deno.test("analyzer (YOLO export layout): boxes back in image pixels, duplicates merged, labels", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila-yolo-" });
  try {
    const path = join(dir, "fixed.onnx");
    await Deno.writeFile(
      path,
      fixedYoloModel(output([
        { anchor: 10, box: [320, 320, 100, 100], label: "person", score: 0.9 },
        { anchor: 11, box: [322, 321, 100, 100], label: "person", score: 0.8 }, // a duplicate
        { anchor: 500, box: [100, 200, 40, 40], label: "dog", score: 0.6 },
        { anchor: 900, box: [500, 300, 40, 40], label: "cat", score: 0.2 }, // under 0.3
      ])),
    );
    const analyzer = await createAnalyzer({ detector: "yolo", yoloModelPath: path });
    try {
      assert.equal(analyzer.detectorName, "yolo");
      // 1280×720 into 640²: scale 0.5, 140 rows of padding above: original = (input − pad) / 0.5.
      const context = await analyzer.analyze(await jpeg("astronaut", [1280, 720]));
      assert.deepEqual(context.media, { width: 1280, height: 720, format: "jpeg" });
      assert.deepEqual(context.objects, [
        { label: "person", confidence: 0.9, bbox: [540, 260, 200, 200] },
        { label: "dog", confidence: 0.6, bbox: [160, 80, 80, 80] },
      ]);
      assert.equal(context.description, "I see a person and a dog.");
    } finally {
      await analyzer.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("analyzer (YOLO): a file that is not ONNX is refused with its path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila-yolo-" });
  try {
    const path = join(dir, "broken.onnx");
    await Deno.writeTextFile(path, "not a model");
    await assert.rejects(
      createAnalyzer({ detector: "yolo", yoloModelPath: path }),
      (error: Error) => error.message.includes(path),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** An ONNX model passing `images` [1, 3, side, side] straight through: not a YOLO export. */
function identityModel(side: number): Uint8Array {
  const { onnx } = onnxProto;
  const info = (name: string) => ({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: [1, 3, side, side].map((dimValue) => ({ dimValue })) },
      },
    },
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 17 }],
    graph: {
      name: "identity",
      node: [{ opType: "Identity", input: ["images"], output: ["output0"] }],
      input: [info("images")],
      output: [info("output0")],
    },
  })).finish();
}

Deno.test("loadYolo: an ONNX model that is not a 640² YOLOv8 export is refused, saying why", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila-yolo-" });
  try {
    const path = join(dir, "identity.onnx");
    await Deno.writeFile(path, identityModel(320));
    await assert.rejects(loadYolo(path), /not a YOLOv8 export: input images is \[1,3,320,320\]/);
    await Deno.writeFile(path, identityModel(640));
    await assert.rejects(loadYolo(path), /output output0 is \[1,3,640,640\], expected \[1, 4/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
