import assert from "node:assert/strict";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { EndOfTurn } from "./end_of_turn.ts";
import { loadSmartTurn, SmartTurnModelError, WINDOW_FRAMES, WINDOW_SAMPLES } from "./smart_turn.ts";

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

/**
 * Stand-ins with the real exports' input and output shapes (Smart Turn weights cannot be
 * downloaded here, shared/ENVIRONMENT.md):
 * - `features`: input_features [1, 80, 800] → sigmoid(mean) → [1, 1], like v3's head output;
 * - `raw`: audio [1, 128000] → mean(|x|) → [1, 1], the "front end in the graph" export;
 * - `wrong`: x [1, 10].
 */
function model(kind: "features" | "raw" | "wrong"): Uint8Array {
  const dims = kind === "features"
    ? [1, 80, WINDOW_FRAMES]
    : kind === "raw"
    ? [1, WINDOW_SAMPLES]
    : [1, 10];
  const input = kind === "features" ? "input_features" : kind === "raw" ? "audio" : "x";
  const axes = dims.map((_, i) => i).slice(1);
  const node = (opType: string, inputs: string[], output: string, attribute: object[] = []) => ({
    opType,
    input: inputs,
    output: [output],
    name: output,
    attribute,
  });
  const reduce = node("ReduceMean", [kind === "raw" ? "abs" : input], "mean", [
    { name: "axes", type: 7, ints: axes },
    { name: "keepdims", type: 2, i: 1 },
  ]);
  const nodes = kind === "raw"
    ? [node("Abs", [input], "abs"), reduce, node("Reshape", ["mean", "shape"], "logits")]
    : [reduce, node("Sigmoid", ["mean"], "sig"), node("Reshape", ["sig", "shape"], "logits")];
  const graph = {
    name: `fake_smart_turn_${kind}`,
    input: [{
      name: input,
      type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
    }],
    output: [{ name: "logits", type: { tensorType: { elemType: FLOAT } } }],
    initializer: [{ name: "shape", dims: [2], dataType: INT64, int64Data: [1, 1] }],
    node: nodes,
  };
  const proto = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 17 }],
    graph,
  });
  return onnx.ModelProto.encode(proto).finish();
}

async function withModels(
  fn: (paths: Record<"features" | "raw" | "wrong", string>, dir: string) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "naila_smart_turn_" });
  try {
    const paths = {
      features: join(dir, "features.onnx"),
      raw: join(dir, "raw.onnx"),
      wrong: join(dir, "wrong.onnx"),
    };
    for (const kind of ["features", "raw", "wrong"] as const) {
      await Deno.writeFile(paths[kind], model(kind));
    }
    await fn(paths, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function sine(seconds: number, amplitude: number, hz = 220): Float32Array {
  const out = new Float32Array(Math.round(seconds * 16000));
  for (let i = 0; i < out.length; i++) {
    out[i] = amplitude * Math.sin((2 * Math.PI * hz * i) / 16000);
  }
  return out;
}

Deno.test("an absent model file: undefined, the text rule decides", async () => {
  await withModels(async (_paths, dir) => {
    assert.equal(await loadSmartTurn(join(dir, "smart_turn_v3.onnx")), undefined);
  });
});

Deno.test("a model of the wrong shape is a clear error naming the file", async () => {
  await withModels(async (paths) => {
    await assert.rejects(
      () => loadSmartTurn(paths.wrong),
      (error: Error) =>
        error instanceof SmartTurnModelError && error.message.includes(paths.wrong) &&
        error.message.includes("[1, 80, 800]"),
    );
    const garbage = paths.wrong + ".bad";
    await Deno.writeTextFile(garbage, "not onnx");
    await assert.rejects(() => loadSmartTurn(garbage), /not a loadable ONNX model/);
  });
});

Deno.test("log-mel input: the last 8 s count, and the level does not (zero-mean unit-variance)", async () => {
  await withModels(async (paths) => {
    const turn = (await loadSmartTurn(paths.features))!;
    try {
      const long = sine(9, 0.3);
      long.set(sine(1, 0.05, 90), 0); // the first second differs...
      const tail = long.slice(16000); // ...and is beyond the 8 s window.
      const a = await turn.completeProbability(long);
      const b = await turn.completeProbability(tail);
      assert.ok(a > 0 && a < 1, `p ${a}`);
      assert.equal(a, b);
      const quieter = tail.map((x) => x * 0.25);
      assert.ok(Math.abs((await turn.completeProbability(quieter)) - a) < 1e-5);
      // A shorter turn is padded at the start: a different input, a different answer.
      assert.notEqual(await turn.completeProbability(sine(2, 0.3)), a);
      assert.equal(turn.runs, 4);
    } finally {
      await turn.close();
    }
  });
});

Deno.test("raw-audio input gets the normalized window: mean |x| of a full-length sine is 2√2/π", async () => {
  await withModels(async (paths) => {
    const turn = (await loadSmartTurn(paths.raw))!;
    try {
      const p = await turn.completeProbability(sine(8, 0.1, 250));
      assert.ok(Math.abs(p - (2 * Math.SQRT2) / Math.PI) < 1e-3, `p ${p}`);
    } finally {
      await turn.close();
    }
  });
});

Deno.test("EndOfTurn uses a loaded model for what the text leaves open", async () => {
  await withModels(async (paths) => {
    const turn = (await loadSmartTurn(paths.features))!;
    try {
      const decision = await new EndOfTurn({ model: turn }).decide(
        "the weather tomorrow",
        sine(2, 0.3),
      );
      assert.ok(decision.probability !== undefined);
      assert.match(decision.reason, /^smart_turn p=/);
      assert.equal(decision.completion, decision.probability > 0.5 ? "complete" : "incomplete");
    } finally {
      await turn.close();
    }
  });
});
