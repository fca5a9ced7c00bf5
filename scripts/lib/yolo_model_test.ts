import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { randomYoloModel, YOLO_ANCHORS, YOLO_INPUT_SIZE } from "./yolo_model.ts";

Deno.test("randomYoloModel: YOLOv8's export signature, boxes decoded inside the input", async () => {
  const session = await ort.InferenceSession.create(randomYoloModel(), { intraOpNumThreads: 1 });
  try {
    assert.deepEqual([session.inputNames, session.outputNames], [["images"], ["output0"]]);
    const side = YOLO_INPUT_SIZE;
    const pixels = new Float32Array(3 * side * side).map((_, i) => (i % 251) / 251);
    const { output0 } = await session.run({
      images: new ort.Tensor("float32", pixels, [1, 3, side, side]),
    });
    assert.deepEqual(output0.dims, [1, 84, YOLO_ANCHORS]);
    const data = output0.data as Float32Array;
    // DFL distances are 0–15 strides from the anchor: every centre lies near the input square.
    for (let a = 0; a < YOLO_ANCHORS; a += 97) {
      assert.ok(data[a] > -16 * 32 && data[a] < side + 16 * 32, `cx ${data[a]}`);
      assert.ok(data[2 * YOLO_ANCHORS + a] >= 0, "width is never negative");
      const score = data[4 * YOLO_ANCHORS + a];
      assert.ok(score > 0 && score < 1, "class scores are sigmoid probabilities");
    }
  } finally {
    await session.release();
  }
});
