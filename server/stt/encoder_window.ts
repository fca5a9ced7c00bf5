/**
 * Lets a standard Whisper encoder export run on windows shorter than 30 s.
 *
 * The optimum/onnx-community export adds all `max_source_positions` (1500) positional embeddings
 * to the convolution output — `Add(x, embed_positions[1500, d_model])` — so any input other than
 * 3000 frames fails to broadcast, although every other operation follows the input's length.
 * This rewrite slices the embeddings to the input's length first, exactly what whisper.cpp does
 * with `audio_ctx`: `Add(x, Slice(embed_positions, 0, Shape(x)[1]))`. Since optimum 1.18 the
 * export also declares `input_features` as [batch, 80, 3000] and `last_hidden_state` as
 * [batch, 1500, d_model] (only the batch axis free), which onnxruntime enforces on its inputs; the
 * rewrite frees the frame and position axes too. Outputs for the full 3000-frame window are
 * unchanged.
 *
 * Accuracy caveat: Whisper was trained on 30 s windows only. A shorter window changes what the
 * decoder's cross-attention sees (no trailing padding positions), which whisper.cpp users report
 * as usually fine for short commands but with more dropped or hallucinated words than the full
 * window. It is an opt-in speed trade, not the default.
 */

import onnxProto from "onnx-proto";
import type { onnx as proto } from "onnx-proto";

const { onnx } = onnxProto;

/** Thrown when the graph does not have the single positional-embedding Add this rewrite expects. */
export class EncoderWindowError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EncoderWindowError";
  }
}

/**
 * Returns the encoder model (ONNX bytes) rewritten to accept any even number of frames up to
 * 2 × `positions`. `positions` and `width` are config.json's max_source_positions and d_model.
 * Throws an {@linkcode EncoderWindowError} when the graph lacks the positional-embedding Add or
 * the `input_features` / `last_hidden_state` names.
 */
export function sliceEncoderPositions(
  model: Uint8Array,
  dims: { positions: number; width: number },
): Uint8Array {
  const decoded = onnx.ModelProto.decode(model);
  if (!decoded.graph) throw new EncoderWindowError("encoder model has no graph");
  // Decoding fills every repeated field, so the class types (non-optional arrays) apply.
  const nodes = decoded.graph.node as proto.NodeProto[];
  const initializers = decoded.graph.initializer as proto.TensorProto[];
  const isPositionTable = (tensor: proto.ITensorProto) =>
    tensor.dims?.length === 2 && Number(tensor.dims[0]) === dims.positions &&
    Number(tensor.dims[1]) === dims.width;
  const tables = new Set(initializers.filter(isPositionTable).map((t) => t.name!));
  for (const node of nodes) {
    // A Constant node may hold the table instead of an initializer (older exporters).
    const value = node.opType === "Constant"
      ? node.attribute.find((a) => a.name === "value")?.t
      : undefined;
    if (value && isPositionTable(value)) tables.add(node.output[0]);
  }
  const adds = nodes
    .map((node, index) => ({ node, index }))
    .filter(({ node }) => node.opType === "Add" && node.input.some((input) => tables.has(input)));
  if (adds.length !== 1) {
    throw new EncoderWindowError(
      `expected one Add of a [${dims.positions}, ${dims.width}] positional-embedding table in the ` +
        `encoder, found ${adds.length}`,
    );
  }
  const { node: add, index } = adds[0];
  const tableSide = tables.has(add.input[0]) ? 0 : 1;
  const table = add.input[tableSide];
  const hidden = add.input[1 - tableSide];
  const name = (suffix: string) => `naila_window_${suffix}`;
  const int64 = (suffix: string, values: number[], dimsOf: number[]) => {
    const tensor = onnx.TensorProto.create({
      name: name(suffix),
      dims: dimsOf,
      dataType: onnx.TensorProto.DataType.INT64,
      int64Data: values,
    });
    initializers.push(tensor);
    return tensor.name;
  };
  const node = (opType: string, inputs: string[], output: string) =>
    onnx.NodeProto.create({ opType, input: inputs, output: [output], name: output });
  // Shape(hidden)[1] as a 1-element tensor; Reshape (not Unsqueeze) works in every opset.
  const inserted = [
    node("Shape", [hidden], name("shape")),
    node("Gather", [name("shape"), int64("one", [1], [])], name("length_scalar")),
    node("Reshape", [name("length_scalar"), int64("vector", [1], [1])], name("length")),
    node(
      "Slice",
      [table, int64("start", [0], [1]), name("length"), int64("axis", [0], [1])],
      name("positions"),
    ),
  ];
  add.input[tableSide] = name("positions");
  nodes.splice(index, 0, ...inserted);
  // optimum ≥ 1.18 declares the frame axis fixed ([batch, 80, 3000] → [batch, 1500, d_model]);
  // onnxruntime checks inputs against the declared shape, so free both axes.
  freeAxis(decoded.graph.input as proto.ValueInfoProto[], INPUT_NAME, INPUT_FRAME_AXIS, "frames");
  freeAxis(
    decoded.graph.output as proto.ValueInfoProto[],
    OUTPUT_NAME,
    OUTPUT_POSITION_AXIS,
    "positions",
  );
  // Shapes recorded for intermediate values were inferred from the fixed window; onnxruntime
  // infers them again from the freed input.
  decoded.graph.valueInfo = [];
  return onnx.ModelProto.encode(decoded).finish();
}

/** The encoder's input and output names in the optimum export, and the axes that follow time. */
const INPUT_NAME = "input_features";
const INPUT_FRAME_AXIS = 2;
const OUTPUT_NAME = "last_hidden_state";
const OUTPUT_POSITION_AXIS = 1;

/**
 * Replaces a fixed size of `axis` of the graph value `name` by a named free dimension. A value
 * declared without a shape, or with that axis already free, is left as it is.
 */
function freeAxis(
  values: proto.ValueInfoProto[],
  name: string,
  axis: number,
  dimParam: string,
): void {
  const value = values.find((v) => v.name === name);
  if (value === undefined) {
    throw new EncoderWindowError(
      `encoder has no graph input or output named ${name} (expected the optimum Whisper ` +
        "export's names)",
    );
  }
  const dims = value.type?.tensorType?.shape?.dim;
  if (dims === undefined || dims === null || dims.length <= axis) return;
  dims[axis] = onnx.TensorShapeProto.Dimension.create({ dimParam: `naila_${dimParam}` });
}
