import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { encodeModel, FLOAT, GraphBuilder, prng, uniform, valueInfo } from "./onnx_graph.ts";

const LABEL = { producer: "onnx_graph_test", version: 1, docString: "test graph" };

Deno.test("GraphBuilder: a built graph runs in onnxruntime and computes what it says", async () => {
  // y = layerNorm(x·W + b) with W = identity·2, b = 1, then GELU: checked against plain math.
  const g = new GraphBuilder("");
  const w = g.weight("w", [3, 3], Float32Array.of(2, 0, 0, 0, 2, 0, 0, 0, 2));
  const b = g.weight("b", [3], Float32Array.of(1, 1, 1));
  const linear = g.linear("x", w, b);
  g.op("Identity", [linear], {}, "linear");
  g.op("Identity", [g.gelu(linear)], {}, "gelu");
  const session = await ort.InferenceSession.create(
    encodeModel(
      g.graph("test", [valueInfo("x", FLOAT, [1, 3])], [
        valueInfo("linear", FLOAT, [1, 3]),
        valueInfo("gelu", FLOAT, [1, 3]),
      ]),
      LABEL,
    ),
  );
  const out = await session.run({
    x: new ort.Tensor("float32", Float32Array.of(-1, 0, 2), [1, 3]),
  });
  assert.deepEqual(Array.from(out.linear.data as Float32Array), [-1, 1, 5]);
  // GELU(-1) ≈ -0.158655, GELU(1) ≈ 0.841345, GELU(5) ≈ 4.9999986 (erf form).
  const gelu = Array.from(out.gelu.data as Float32Array);
  for (const [got, expected] of gelu.map((v, i) => [v, [-0.158655, 0.841345, 4.9999986][i]])) {
    assert.ok(Math.abs(got - expected) < 1e-5, `${got} vs ${expected}`);
  }
});

Deno.test("GraphBuilder: generated names are unique within a builder and carry its prefix", () => {
  const g = new GraphBuilder("branch_");
  const a = g.op("Relu", ["x"]);
  const b = g.op("Relu", ["x"]);
  assert.notEqual(a, b);
  assert.ok(a.startsWith("branch_") && b.startsWith("branch_"));
  assert.notEqual(g.ints("shape", [1]), g.ints("shape", [1]));
});

Deno.test("prng: the same seed gives the same weights, another seed others", () => {
  const first = uniform(prng(42), 16, 0.5);
  assert.deepEqual(first, uniform(prng(42), 16, 0.5));
  assert.notDeepEqual(first, uniform(prng(43), 16, 0.5));
  assert.ok(first.every((v) => Math.abs(v) < 0.5));
});
