/**
 * A small ONNX graph builder over npm:onnx-proto: nodes with generated unique value names,
 * initializers, If branches, and the transformer blocks Whisper's graphs are made of (linear,
 * layer norm, exact GELU, multi-head attention). Also a seeded PRNG for deterministic weights.
 * Used by the model generators under scripts/ (no weights can be downloaded here; see
 * shared/ENVIRONMENT.md).
 *
 * @example
 * ```ts
 * const g = new GraphBuilder("");
 * g.op("Relu", ["x"], {}, "y");
 * const bytes = encodeModel(
 *   g.graph("relu", [valueInfo("x", FLOAT, [2])], [valueInfo("y", FLOAT, [2])]),
 *   { producer: "example", version: 1, docString: "y = relu(x)" },
 * );
 * ```
 */

import onnxProto from "onnx-proto";
import type { onnx as proto } from "onnx-proto";

const { onnx } = onnxProto;

/** Element types of ONNX tensors used by the generators. */
export const FLOAT = onnx.TensorProto.DataType.FLOAT;
export const INT64 = onnx.TensorProto.DataType.INT64;
export const BOOL = onnx.TensorProto.DataType.BOOL;
/** ONNX IR version 8 / opset 17: what optimum's Whisper exports use (LayerNormalization needs 17). */
const IR_VERSION = 8;
const OPSET = 17;
/** Layer-norm epsilon of Whisper (HF WhisperConfig layer_norm_eps default). */
const LAYER_NORM_EPSILON = 1e-5;

/** An attribute value: int, ints, float, subgraph or tensor. */
export type AttributeValue =
  | number
  | number[]
  | { float: number }
  | { graph: proto.IGraphProto }
  | { tensor: proto.ITensorProto };

function attribute(name: string, value: AttributeValue): proto.IAttributeProto {
  const type = onnx.AttributeProto.AttributeType;
  if (typeof value === "number") return { name, type: type.INT, i: value };
  if (Array.isArray(value)) return { name, type: type.INTS, ints: value };
  if ("float" in value) return { name, type: type.FLOAT, f: value.float };
  if ("graph" in value) return { name, type: type.GRAPH, g: value.graph };
  return { name, type: type.TENSOR, t: value.tensor };
}

/**
 * A graph input or output: `dims` numbers are fixed sizes, strings named free axes (ONNX
 * dim_param); no `dims` leaves the shape unknown.
 */
export function valueInfo(
  name: string,
  elemType: number,
  dims?: (number | string)[],
): proto.IValueInfoProto {
  const shape = dims === undefined
    ? undefined
    : { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) };
  return { name, type: { tensorType: { elemType, shape } } };
}

function floatTensor(name: string, dims: number[], data: Float32Array): proto.ITensorProto {
  return {
    name,
    dims,
    dataType: FLOAT,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** A zero-size float tensor [0, 0, 0, 0] (what optimum's merged decoder returns for unused outputs). */
export const EMPTY_FLOAT_TENSOR: proto.ITensorProto = {
  dims: [0, 0, 0, 0],
  dataType: FLOAT,
  rawData: new Uint8Array(0),
};

/** Nodes and initializers of one graph (or If branch), with generated unique value names. */
export class GraphBuilder {
  readonly nodes: proto.INodeProto[] = [];
  readonly initializers: proto.ITensorProto[] = [];
  #counter = 0;

  /** `prefix` starts every generated name, so an If branch's names never clash with the outer graph's. */
  constructor(readonly prefix: string) {}

  /** Adds a node with one output and returns the output's name (or `output` when given). */
  op(
    opType: string,
    inputs: string[],
    attributes: Record<string, AttributeValue> = {},
    output?: string,
  ): string {
    const name = output ?? `${this.prefix}${opType}_${this.#counter++}`;
    this.opMulti(opType, inputs, [name], attributes);
    return name;
  }

  /** Adds a node with the given output names. */
  opMulti(
    opType: string,
    inputs: string[],
    outputs: string[],
    attributes: Record<string, AttributeValue> = {},
  ): void {
    this.nodes.push({
      opType,
      input: inputs,
      output: outputs,
      name: `${this.prefix}node_${this.#counter++}`,
      attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
    });
  }

  /** A float initializer named `prefix + hint`; returns its name. */
  weight(hint: string, dims: number[], data: Float32Array): string {
    const name = `${this.prefix}${hint}`;
    this.initializers.push(floatTensor(name, dims, data));
    return name;
  }

  /** An int64 initializer (1-D by default); returns its unique name. */
  ints(hint: string, values: number[], dims: number[] = [values.length]): string {
    const name = `${this.prefix}${hint}_${this.#counter++}`;
    this.initializers.push({ name, dims, dataType: INT64, int64Data: values });
    return name;
  }

  /** A float initializer of a unique name starting with `hint`; returns the name. */
  floats(hint: string, dims: number[], data: Float32Array): string {
    return this.weight(`${hint}_${this.#counter++}`, dims, data);
  }

  /** A float scalar initializer; returns its unique name. */
  scalar(hint: string, value: number): string {
    return this.floats(hint, [], new Float32Array([value]));
  }

  /** The graph of these nodes and initializers with the given inputs and outputs. */
  graph(
    name: string,
    inputs: proto.IValueInfoProto[],
    outputs: proto.IValueInfoProto[],
  ): proto.IGraphProto {
    return {
      name,
      node: this.nodes,
      initializer: this.initializers,
      input: inputs,
      output: outputs,
    };
  }

  // Transformer building blocks --------------------------------------------------------------

  /** x·w (+ b). */
  linear(x: string, w: string, b?: string): string {
    const y = this.op("MatMul", [x, w]);
    return b === undefined ? y : this.op("Add", [y, b]);
  }

  /** Layer normalization over the last axis with Whisper's epsilon. */
  layerNorm(x: string, gamma: string, beta: string): string {
    return this.op("LayerNormalization", [x, gamma, beta], {
      axis: -1,
      epsilon: { float: LAYER_NORM_EPSILON },
    });
  }

  /** Exact (erf) GELU, as PyTorch exports it; onnxruntime fuses it into one Gelu kernel. */
  gelu(x: string): string {
    const scaled = this.op("Mul", [x, this.scalar("inv_sqrt2", Math.SQRT1_2)]);
    const erf = this.op("Erf", [scaled]);
    const onePlus = this.op("Add", [erf, this.scalar("one", 1)]);
    const half = this.op("Mul", [x, this.scalar("half", 0.5)]);
    return this.op("Mul", [half, onePlus]);
  }

  /** [B, T, H·Dh] → [B, H, T, Dh] */
  splitHeads(x: string, heads: number, headDim: number): string {
    const reshaped = this.op("Reshape", [x, this.ints("heads_shape", [0, 0, heads, headDim])]);
    return this.op("Transpose", [reshaped], { perm: [0, 2, 1, 3] });
  }

  /** [B, H, T, Dh] → [B, T, H·Dh] */
  mergeHeads(x: string, width: number): string {
    const transposed = this.op("Transpose", [x], { perm: [0, 2, 1, 3] });
    return this.op("Reshape", [transposed, this.ints("merge_shape", [0, 0, width])]);
  }

  /** softmax(q·kᵀ/√Dh + mask)·v over [B, H, T, Dh] tensors. */
  attention(q: string, k: string, v: string, headDim: number, mask?: string): string {
    const kT = this.op("Transpose", [k], { perm: [0, 1, 3, 2] });
    const scores = this.op("Mul", [
      this.op("MatMul", [q, kT]),
      this.scalar("scale", headDim ** -0.5),
    ]);
    const masked = mask === undefined ? scores : this.op("Add", [scores, mask]);
    const probs = this.op("Softmax", [masked], { axis: -1 });
    return this.op("MatMul", [probs, v]);
  }

  /** Element `index` of a 1-D int64 tensor, as a scalar. */
  element(x: string, index: number): string {
    return this.op("Gather", [x, this.ints("index", [index], [])], { axis: 0 });
  }
}

/** Who made a model: written into its producer fields and doc string. */
export interface ModelLabel {
  producer: string;
  version: number;
  docString: string;
}

/** Serializes `graph` as an ONNX model (IR 8, opset 17). */
export function encodeModel(graph: proto.IGraphProto, label: ModelLabel): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: "", version: OPSET }],
    producerName: label.producer,
    producerVersion: String(label.version),
    docString: label.docString,
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

/** mulberry32: a tiny seeded PRNG, so the same seed always gives the same model. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `length` uniform values in (−scale, scale) drawn from `random`. */
export function uniform(random: () => number, length: number, scale: number): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = (2 * random() - 1) * scale;
  return out;
}
