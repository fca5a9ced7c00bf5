/**
 * Generates the Whisper-shaped ONNX models the project can build without downloading weights
 * (none are reachable here; see shared/ENVIRONMENT.md):
 *
 * - `whisper-fixture/`: a tiny model with exactly the input/output names, ranks and dtypes of the
 *   onnx-community/whisper-* export (encoder_model.onnx + decoder_model_merged.onnx with its
 *   `use_cache_branch` If), whose weights are constructed so that greedy decoding of any
 *   non-silent audio yields " what time is it" <|endoftext|>, while silence gets a high
 *   <|nospeech|> probability and low-confidence junk (Whisper's no-speech rule then empties it).
 *   The next token depends on the position the decoder reads from the key/value cache's content,
 *   so the tests prove the cache is carried correctly. Test use only.
 * - `whisper-tiny-random/`: whisper-tiny's architecture and sizes (d_model 384, 4 + 4 layers, 6
 *   heads, vocab 51864, 1500 encoder positions) with seeded random weights: real convolutions,
 *   attention, MLPs and layer norms, so its FLOPs match the real model. Its text is meaningless;
 *   it exists to benchmark STT honestly.
 *
 * Run standalone: `deno run -A scripts/make_whisper_models.ts [modelsDir]` (default `models`).
 */

import onnxProto from "onnx-proto";
import type { onnx as proto } from "onnx-proto";
import { join } from "node:path";
import { byteLevelToken } from "../server/stt/tokenizer.ts";

const { onnx } = onnxProto;

/** Bumped whenever the generated files change, so stale copies are regenerated. */
export const GENERATOR_VERSION = 7;
/** Name of the stamp file that marks a directory as generated (and by which version). */
const STAMP_FILE = "naila_generated.json";

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;
const BOOL = onnx.TensorProto.DataType.BOOL;
/** ONNX IR version 8 / opset 17: what optimum's Whisper exports use (LayerNormalization needs 17). */
const IR_VERSION = 8;
const OPSET = 17;
/** Layer-norm epsilon of Whisper (HF WhisperConfig layer_norm_eps default). */
const LAYER_NORM_EPSILON = 1e-5;
/** Additive mask for future positions; large enough that softmax gives them exactly 0. */
const MASKED = -1e9;

// ---------------------------------------------------------------------------------------------
// A small ONNX graph builder

type AttributeValue =
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

function valueInfo(
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

/** Nodes and initializers of one graph (or If branch), with generated unique value names. */
class GraphBuilder {
  readonly nodes: proto.INodeProto[] = [];
  readonly initializers: proto.ITensorProto[] = [];
  #counter = 0;

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

  weight(hint: string, dims: number[], data: Float32Array): string {
    const name = `${this.prefix}${hint}`;
    this.initializers.push(floatTensor(name, dims, data));
    return name;
  }

  ints(hint: string, values: number[], dims: number[] = [values.length]): string {
    const name = `${this.prefix}${hint}_${this.#counter++}`;
    this.initializers.push({ name, dims, dataType: INT64, int64Data: values });
    return name;
  }

  scalar(hint: string, value: number): string {
    return this.weight(`${hint}_${this.#counter++}`, [], new Float32Array([value]));
  }

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

  // Whisper building blocks ------------------------------------------------------------------

  linear(x: string, w: string, b?: string): string {
    const y = this.op("MatMul", [x, w]);
    return b === undefined ? y : this.op("Add", [y, b]);
  }

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

function encodeModel(graph: proto.IGraphProto, docString: string): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: "", version: OPSET }],
    producerName: "naila scripts/make_whisper_models.ts",
    producerVersion: String(GENERATOR_VERSION),
    docString,
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

// ---------------------------------------------------------------------------------------------
// Deterministic weights

/** mulberry32: a tiny seeded PRNG, so the same seed always gives the same model. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in (−scale, scale). */
function uniform(random: () => number, length: number, scale: number): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = (2 * random() - 1) * scale;
  return out;
}

// ---------------------------------------------------------------------------------------------
// The real architecture (whisper-tiny-random)

/** Sizes of a Whisper model (HF WhisperConfig field names in the comments). */
export interface WhisperDims {
  /** d_model */
  width: number;
  /** encoder_attention_heads = decoder_attention_heads */
  heads: number;
  /** encoder_layers */
  encoderLayers: number;
  /** decoder_layers */
  decoderLayers: number;
  /** encoder_ffn_dim = decoder_ffn_dim */
  ffnWidth: number;
  /** vocab_size */
  vocab: number;
  /** num_mel_bins */
  mels: number;
  /** max_source_positions: encoder positions for a 30 s window (3000 frames / 2). */
  audioPositions: number;
  /** max_target_positions */
  textPositions: number;
}

/** whisper-tiny(.en)'s sizes (openai/whisper-tiny.en config.json). */
export const WHISPER_TINY_DIMS: WhisperDims = {
  width: 384,
  heads: 6,
  encoderLayers: 4,
  decoderLayers: 4,
  ffnWidth: 1536,
  vocab: 51864,
  mels: 80,
  audioPositions: 1500,
  textPositions: 448,
};

/**
 * Whisper's encoder: two convolutions (the second with stride 2), positional embeddings,
 * pre-norm transformer layers, a final layer norm. Like the standard export, it adds all 1500
 * positional embeddings and so only accepts 3000-frame inputs (server/stt/encoder_window.ts
 * rewrites that at load time when a shorter window is asked for).
 */
function realEncoder(dims: WhisperDims, random: () => number) {
  const g = new GraphBuilder("");
  const { width, heads, mels, ffnWidth } = dims;
  const headDim = width / heads;
  const w = (name: string, shape: number[], fanIn: number) =>
    g.weight(name, shape, uniform(random, shape.reduce((a, b) => a * b), Math.sqrt(3 / fanIn)));
  const ones = (name: string) => g.weight(name, [width], new Float32Array(width).fill(1));
  const zeros = (name: string, n = width) => g.weight(name, [n], new Float32Array(n));

  let x = g.op("Conv", [
    "input_features",
    w("conv1.weight", [width, mels, 3], mels * 3),
    zeros("conv1.bias"),
  ], {
    kernel_shape: [3],
    pads: [1, 1],
  });
  x = g.gelu(x);
  x = g.op("Conv", [x, w("conv2.weight", [width, width, 3], width * 3), zeros("conv2.bias")], {
    kernel_shape: [3],
    pads: [1, 1],
    strides: [2],
  });
  x = g.op("Transpose", [g.gelu(x)], { perm: [0, 2, 1] });
  const positions = g.weight(
    "embed_positions.weight",
    [dims.audioPositions, width],
    sinusoids(dims.audioPositions, width),
  );
  x = g.op("Add", [x, positions]);
  for (let l = 0; l < dims.encoderLayers; l++) {
    const p = `layers.${l}.`;
    let h = g.layerNorm(x, ones(`${p}ln1.weight`), zeros(`${p}ln1.bias`));
    const { q, k, v } = selfAttentionInputs(g, h, p, { w, zeros }, dims);
    const attended = g.mergeHeads(g.attention(q, k, v, headDim), width);
    x = g.op("Add", [
      x,
      g.linear(attended, w(`${p}o.weight`, [width, width], width), zeros(`${p}o.bias`)),
    ]);
    h = g.layerNorm(x, ones(`${p}ln2.weight`), zeros(`${p}ln2.bias`));
    const up = g.gelu(
      g.linear(h, w(`${p}fc1.weight`, [width, ffnWidth], width), zeros(`${p}fc1.bias`, ffnWidth)),
    );
    x = g.op("Add", [
      x,
      g.linear(up, w(`${p}fc2.weight`, [ffnWidth, width], ffnWidth), zeros(`${p}fc2.bias`)),
    ]);
  }
  g.layerNorm(x, ones("ln_post.weight"), zeros("ln_post.bias"));
  g.nodes.at(-1)!.output = ["last_hidden_state"];
  return g.graph(
    "whisper_encoder",
    [valueInfo("input_features", FLOAT, ["batch_size", dims.mels, "encoder_sequence_length"])],
    [valueInfo("last_hidden_state", FLOAT, ["batch_size", "encoder_sequence_length / 2", width])],
  );
}

/** How a model function creates (or reuses) its named weights. */
interface WeightFactory {
  w(name: string, shape: number[], fanIn: number): string;
  zeros(name: string, n?: number): string;
}

/**
 * Whisper's self-attention inputs from the normed hidden state `h`: q and v with biases, k
 * without (as in openai/whisper), each split into heads.
 */
function selfAttentionInputs(
  b: GraphBuilder,
  h: string,
  prefix: string,
  weights: WeightFactory,
  dims: { width: number; heads: number },
): { q: string; k: string; v: string } {
  const { width, heads } = dims;
  const project = (name: string, bias: boolean) =>
    b.splitHeads(
      b.linear(
        h,
        weights.w(`${prefix}${name}.weight`, [width, width], width),
        bias ? weights.zeros(`${prefix}${name}.bias`) : undefined,
      ),
      heads,
      width / heads,
    );
  return { q: project("q", true), k: project("k", false), v: project("v", true) };
}

/** Whisper's fixed sinusoidal encoder positions (openai/whisper model.py `sinusoids`). */
function sinusoids(length: number, channels: number): Float32Array {
  const out = new Float32Array(length * channels);
  const half = channels / 2;
  const increment = Math.log(10000) / (half - 1);
  for (let t = 0; t < length; t++) {
    for (let c = 0; c < half; c++) {
      const angle = t * Math.exp(-increment * c);
      out[t * channels + c] = Math.sin(angle);
      out[t * channels + half + c] = Math.cos(angle);
    }
  }
  return out;
}

/** The decoder-side inputs and outputs of the merged export, shared by both generated models. */
function decoderSignature(
  dims: { width: number; heads: number; decoderLayers: number; vocab: number },
) {
  const headDim = dims.width / dims.heads;
  const inputs = [
    valueInfo("input_ids", INT64, ["batch_size", "decoder_sequence_length"]),
    valueInfo("encoder_hidden_states", FLOAT, [
      "batch_size",
      "encoder_sequence_length / 2",
      dims.width,
    ]),
  ];
  const outputs = [
    valueInfo("logits", FLOAT, ["batch_size", "decoder_sequence_length", dims.vocab]),
  ];
  for (let l = 0; l < dims.decoderLayers; l++) {
    for (const kind of ["key", "value"]) {
      inputs.push(
        valueInfo(`past_key_values.${l}.decoder.${kind}`, FLOAT, [
          "batch_size",
          dims.heads,
          "past_decoder_sequence_length",
          headDim,
        ]),
      );
      outputs.push(
        valueInfo(`present.${l}.decoder.${kind}`, FLOAT, [
          "batch_size",
          dims.heads,
          "past_decoder_sequence_length + 1",
          headDim,
        ]),
      );
    }
    for (const kind of ["key", "value"]) {
      inputs.push(
        valueInfo(`past_key_values.${l}.encoder.${kind}`, FLOAT, [
          "batch_size",
          dims.heads,
          "encoder_sequence_length_out",
          headDim,
        ]),
      );
      outputs.push(
        valueInfo(`present.${l}.encoder.${kind}`, FLOAT, [
          "batch_size",
          dims.heads,
          "encoder_sequence_length_out",
          headDim,
        ]),
      );
    }
  }
  inputs.push(valueInfo("use_cache_branch", BOOL, [1]));
  return { inputs, outputs };
}

/**
 * The cross-attention keys/values as the merged export handles them: with `use_cache_branch`
 * they come from `past_key_values.*.encoder.*` and `present.*.encoder.*` are empty (optimum's
 * merge emits zero-size constants there; clients keep the first step's values), otherwise they
 * are computed from `encoder_hidden_states`.
 */
function crossKeyValues(
  g: GraphBuilder,
  layers: number,
  project: (branch: GraphBuilder, layer: number) => { key: string; value: string },
): { key: string; value: string }[] {
  const then = new GraphBuilder("cached_");
  const otherwise = new GraphBuilder("fresh_");
  const attention: string[] = [], present: string[] = [];
  const thenAttention: string[] = [], thenPresent: string[] = [];
  const elseAttention: string[] = [], elsePresent: string[] = [];
  const empty = { dims: [0, 0, 0, 0], dataType: FLOAT, rawData: new Uint8Array(0) };
  for (let l = 0; l < layers; l++) {
    const fresh = project(otherwise, l);
    for (const kind of ["key", "value"] as const) {
      thenAttention.push(then.op("Identity", [`past_key_values.${l}.encoder.${kind}`]));
      thenPresent.push(then.op("Constant", [], { value: { tensor: empty } }));
      elseAttention.push(otherwise.op("Identity", [fresh[kind]]));
      elsePresent.push(otherwise.op("Identity", [fresh[kind]]));
      attention.push(`cross_${l}_${kind}`);
      present.push(`present.${l}.encoder.${kind}`);
    }
  }
  const infos = (names: string[]) => names.map((name) => valueInfo(name, FLOAT));
  g.opMulti("If", ["use_cache_branch"], [...attention, ...present], {
    then_branch: { graph: then.graph("use_cache", [], infos([...thenAttention, ...thenPresent])) },
    else_branch: {
      graph: otherwise.graph("compute_cross_kv", [], infos([...elseAttention, ...elsePresent])),
    },
  });
  return Array.from({ length: layers }, (_, l) => ({
    key: `cross_${l}_key`,
    value: `cross_${l}_value`,
  }));
}

/**
 * Whisper's decoder as optimum merges it: an If on `use_cache_branch` whose branches are the
 * whole decoder — the cached branch reads the cross-attention keys/values from
 * `past_key_values.*.encoder.*` and returns empty `present.*.encoder.*` (optimum's merge emits
 * zero-size constants there), the other computes them from `encoder_hidden_states`. Both branches
 * share the outer graph's weights.
 */
function realDecoder(dims: WhisperDims, random: () => number, silentTokens: number[]) {
  const g = new GraphBuilder("");
  const { width, heads, ffnWidth, vocab } = dims;
  const headDim = width / heads;
  const created = new Map<string, string>();
  const shared = (name: string, make: () => string) => {
    if (!created.has(name)) created.set(name, make());
    return created.get(name)!;
  };
  const w = (name: string, shape: number[], fanIn: number) =>
    shared(
      name,
      () =>
        g.weight(name, shape, uniform(random, shape.reduce((a, b) => a * b), Math.sqrt(3 / fanIn))),
    );
  const ones = (name: string) =>
    shared(name, () => g.weight(name, [width], new Float32Array(width).fill(1)));
  const zeros = (name: string, n = width) =>
    shared(name, () => g.weight(name, [n], new Float32Array(n)));

  const embedding = uniform(random, vocab * width, 0.05);
  // Zero rows give these tokens a logit of exactly 0 while the other 51 000 random logits reach
  // well above it, so the benchmark never stops early on <|endoftext|> or <|nocaptions|>.
  for (const token of silentTokens) embedding.fill(0, token * width, (token + 1) * width);
  const tokens = g.weight("embed_tokens.weight", [vocab, width], embedding);
  // The output projection is tied to the token embedding (proj_out = embed_tokens ᵀ); the
  // transpose of a constant is folded when the session is created.
  const projection = g.op("Transpose", [tokens], { perm: [1, 0] });
  const textPositions = w("embed_positions.weight", [dims.textPositions, width], width);

  const length = g.element(g.op("Shape", ["input_ids"]), 1);
  const past = g.element(g.op("Shape", ["past_key_values.0.decoder.key"]), 2);
  const total = g.op("Add", [past, length]);
  const one = g.ints("one", [1], []);
  const positions = g.op("Range", [past, total, one]);
  const embedded = g.op("Add", [
    g.op("Gather", [tokens, "input_ids"], { axis: 0 }),
    g.op("Gather", [textPositions, positions], { axis: 0 }),
  ]);
  // Causal mask [S, P+S]: query i (absolute position P+i) may not see keys after it.
  const rows = g.op("Unsqueeze", [
    g.op("Add", [g.op("Range", [g.ints("zero", [0], []), length, one]), past]),
    g.ints("axes", [1]),
  ]);
  const cols = g.op("Unsqueeze", [
    g.op("Range", [g.ints("zero", [0], []), total, one]),
    g.ints("axes", [0]),
  ]);
  const mask = g.op("Where", [
    g.op("Greater", [cols, rows]),
    g.scalar("masked", MASKED),
    g.scalar("zero_f", 0),
  ]);

  /** The layer stack; returns the names of logits and present.*.decoder.* in `b`. */
  const layers = (b: GraphBuilder, cross: (l: number) => { key: string; value: string }) => {
    let x = embedded;
    const present: string[] = [];
    for (let l = 0; l < dims.decoderLayers; l++) {
      const p = `layers.${l}.`;
      let h = b.layerNorm(x, ones(`${p}ln1.weight`), zeros(`${p}ln1.bias`));
      const { q, k, v } = selfAttentionInputs(b, h, p, { w, zeros }, dims);
      const keys = b.op("Concat", [`past_key_values.${l}.decoder.key`, k], { axis: 2 });
      const values = b.op("Concat", [`past_key_values.${l}.decoder.value`, v], { axis: 2 });
      present.push(keys, values);
      let attended = b.mergeHeads(b.attention(q, keys, values, headDim, mask), width);
      x = b.op("Add", [
        x,
        b.linear(attended, w(`${p}o.weight`, [width, width], width), zeros(`${p}o.bias`)),
      ]);

      h = b.layerNorm(x, ones(`${p}ln2.weight`), zeros(`${p}ln2.bias`));
      const cq = b.splitHeads(
        b.linear(h, w(`${p}cross.q.weight`, [width, width], width), zeros(`${p}cross.q.bias`)),
        heads,
        headDim,
      );
      attended = b.mergeHeads(b.attention(cq, cross(l).key, cross(l).value, headDim), width);
      x = b.op("Add", [
        x,
        b.linear(
          attended,
          w(`${p}cross.o.weight`, [width, width], width),
          zeros(`${p}cross.o.bias`),
        ),
      ]);

      h = b.layerNorm(x, ones(`${p}ln3.weight`), zeros(`${p}ln3.bias`));
      const up = b.gelu(
        b.linear(h, w(`${p}fc1.weight`, [width, ffnWidth], width), zeros(`${p}fc1.bias`, ffnWidth)),
      );
      x = b.op("Add", [
        x,
        b.linear(up, w(`${p}fc2.weight`, [ffnWidth, width], ffnWidth), zeros(`${p}fc2.bias`)),
      ]);
    }
    x = b.layerNorm(x, ones("ln_final.weight"), zeros("ln_final.bias"));
    return { logits: b.op("MatMul", [x, projection]), present };
  };

  const cached = new GraphBuilder("cached_");
  const cachedOut = layers(cached, (l) => ({
    key: `past_key_values.${l}.encoder.key`,
    value: `past_key_values.${l}.encoder.value`,
  }));
  const empty = { dims: [0, 0, 0, 0], dataType: FLOAT, rawData: new Uint8Array(0) };
  const cachedEncoder = Array.from(
    { length: 2 * dims.decoderLayers },
    () => cached.op("Constant", [], { value: { tensor: empty } }),
  );

  const fresh = new GraphBuilder("fresh_");
  const crossKv = Array.from({ length: dims.decoderLayers }, (_, l) => {
    const p = `layers.${l}.cross.`;
    const key = fresh.splitHeads(
      fresh.linear("encoder_hidden_states", w(`${p}k.weight`, [width, width], width)),
      heads,
      headDim,
    );
    const value = fresh.splitHeads(
      fresh.linear(
        "encoder_hidden_states",
        w(`${p}v.weight`, [width, width], width),
        zeros(`${p}v.bias`),
      ),
      heads,
      headDim,
    );
    return { key, value };
  });
  const freshOut = layers(fresh, (l) => crossKv[l]);
  const freshEncoder = crossKv.flatMap(({ key, value }) => [
    fresh.op("Identity", [key]),
    fresh.op("Identity", [value]),
  ]);

  const { inputs, outputs } = decoderSignature(dims);
  const infos = (names: string[]) => names.map((name) => valueInfo(name, FLOAT));
  const presentNames = (kind: string) =>
    Array.from({ length: dims.decoderLayers }, (_, l) => [
      `present.${l}.${kind}.key`,
      `present.${l}.${kind}.value`,
    ]).flat();
  g.opMulti("If", ["use_cache_branch"], [
    "logits",
    ...presentNames("decoder"),
    ...presentNames("encoder"),
  ], {
    then_branch: {
      graph: cached.graph(
        "decoder_with_past",
        [],
        infos([cachedOut.logits, ...cachedOut.present, ...cachedEncoder]),
      ),
    },
    else_branch: {
      graph: fresh.graph(
        "decoder",
        [],
        infos([freshOut.logits, ...freshOut.present, ...freshEncoder]),
      ),
    },
  });
  return g.graph("whisper_decoder_merged", inputs, outputs);
}

// ---------------------------------------------------------------------------------------------
// Tokenizer files

interface Vocabulary {
  vocab: Record<string, number>;
  added: Record<string, number>;
}

/** Whisper's special tokens after <|endoftext|>, in the English-only (.en) layout. */
function englishOnlySpecials(languages: number, timestamps: number): string[] {
  const names = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>"];
  for (let i = 1; i < languages; i++) names.push(`<|lang${i}|>`);
  names.push(
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
  );
  for (let i = 0; i < timestamps; i++) names.push(`<|${(i * 0.02).toFixed(2)}|>`);
  return names;
}

async function writeTokenizerFiles(
  dir: string,
  vocabulary: Vocabulary,
  generationConfig: Record<string, unknown>,
): Promise<void> {
  await Deno.writeTextFile(join(dir, "vocab.json"), JSON.stringify(vocabulary.vocab));
  await Deno.writeTextFile(join(dir, "added_tokens.json"), JSON.stringify(vocabulary.added));
  await Deno.writeTextFile(
    join(dir, "generation_config.json"),
    JSON.stringify(generationConfig, null, 2),
  );
}

function config(dims: WhisperDims, extra: Record<string, unknown> = {}) {
  return {
    model_type: "whisper",
    d_model: dims.width,
    encoder_layers: dims.encoderLayers,
    decoder_layers: dims.decoderLayers,
    encoder_attention_heads: dims.heads,
    decoder_attention_heads: dims.heads,
    encoder_ffn_dim: dims.ffnWidth,
    decoder_ffn_dim: dims.ffnWidth,
    vocab_size: dims.vocab,
    num_mel_bins: dims.mels,
    max_source_positions: dims.audioPositions,
    max_target_positions: dims.textPositions,
    ...extra,
  };
}

// ---------------------------------------------------------------------------------------------
// whisper-tiny-random

/** Options of {@linkcode makeWhisperRandom}. */
export interface RandomWhisperOptions {
  dims: WhisperDims;
  /** Language tokens after <|startoftranscript|> (99 in Whisper). */
  languages: number;
  /** Timestamp tokens <|0.00|>… (1501 in Whisper). */
  timestamps: number;
  seed: number;
  suppressTokens: number[];
  beginSuppressTokens: number[];
  label: string;
}

/**
 * Writes a model with Whisper's real architecture at the given sizes and seeded random weights,
 * an English-only (.en) vocabulary of byte tokens and filler words, and its tokenizer files.
 * <|endoftext|> and <|nocaptions|> never win, so decoding always runs to maxTokens.
 */
export async function makeWhisperRandom(dir: string, options: RandomWhisperOptions): Promise<void> {
  const { dims } = options;
  const specials = englishOnlySpecials(options.languages, options.timestamps);
  const vocabulary: Vocabulary = { vocab: {}, added: {} };
  const firstSpecial = dims.vocab - specials.length;
  if (firstSpecial < 256) {
    throw new Error(
      `vocab ${dims.vocab} leaves ${firstSpecial} text tokens, expected at least the 256 bytes`,
    );
  }
  for (let id = 0; id < firstSpecial; id++) {
    // 256 single bytes first (GPT-2's base alphabet), then filler words; the text is meaningless.
    vocabulary.vocab[id < 256 ? byteChar(id) : byteLevelToken(` w${id}`)] = id;
  }
  specials.forEach((name, i) => (vocabulary.added[name] = firstSpecial + i));
  const random = prng(options.seed);
  const silent = [vocabulary.added["<|endoftext|>"], vocabulary.added["<|nocaptions|>"]];
  await writeModelDir(dir, {
    encoder: encodeModel(realEncoder(dims, random), options.label),
    decoder: encodeModel(realDecoder(dims, random, silent), options.label),
    config: config(dims),
    vocabulary,
    generationConfig: {
      decoder_start_token_id: vocabulary.added["<|startoftranscript|>"],
      eos_token_id: vocabulary.added["<|endoftext|>"],
      is_multilingual: false,
      max_length: dims.textPositions,
      no_timestamps_token_id: vocabulary.added["<|notimestamps|>"],
      begin_suppress_tokens: options.beginSuppressTokens,
      suppress_tokens: options.suppressTokens,
    },
    label: options.label,
  });
}

/** Writes the full-size, random-weight whisper-tiny-shaped model into `dir` (~150 MB). */
export async function makeWhisperTinyRandom(dir: string): Promise<void> {
  await makeWhisperRandom(dir, {
    dims: WHISPER_TINY_DIMS,
    // whisper-tiny.en's layout: <|endoftext|> is 50256, the vocabulary 51864.
    languages: 99,
    timestamps: 1501,
    seed: 0x5eed_7171,
    // whisper-tiny.en's settings (the suppress list is Whisper's non-speech symbols).
    suppressTokens: TINY_EN_SUPPRESS_TOKENS,
    beginSuppressTokens: [220, 50256],
    label: RANDOM_LABEL,
  });
}

const RANDOM_LABEL =
  "whisper-tiny-shaped model with RANDOM weights, generated by scripts/make_whisper_models.ts for " +
  "benchmarking only: its transcripts are meaningless.";

/** Whisper's suppressed non-speech symbols (as in openai/whisper-tiny.en generation_config). */
// deno-fmt-ignore
const TINY_EN_SUPPRESS_TOKENS = [
  1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93, 357, 366,
  438, 532, 685, 705, 796, 930, 1058, 1220, 1267, 1279, 1303, 1343, 1377, 1391, 1635, 1782, 1875,
  2162, 2361, 2488, 3467, 4008, 4211, 4600, 4808, 5299, 5855, 6329, 7203, 9609, 9959, 10563, 10786,
  11420, 11709, 11907, 13163, 13697, 13700, 14808, 15306, 16410, 16791, 17992, 19203, 19510, 20724,
  22305, 22935, 27007, 30109, 30420, 33409, 34949, 40283, 40493, 40549, 47282, 49146, 50257, 50357,
  50358, 50359, 50360, 50361,
];

function byteChar(byte: number): string {
  // byteLevelToken works on text; a lone byte ≥ 0x80 is not valid UTF-8, so map it directly.
  return byte < 0x80 ? byteLevelToken(String.fromCharCode(byte)) : BYTE_CHARS[byte];
}

const BYTE_CHARS: string[] = (() => {
  const chars: string[] = [];
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) ||
      (b >= 0xae && b <= 0xff);
    chars.push(String.fromCodePoint(printable ? b : 256 + shifted++));
  }
  return chars;
})();

// ---------------------------------------------------------------------------------------------
// whisper-fixture

/** What the fixture decodes any non-silent audio to. */
export const FIXTURE_TRANSCRIPT = " what time is it";

/** The fixture's sizes: Whisper-shaped ranks, toy widths. */
const FIXTURE_DIMS = { width: 8, heads: 2, decoderLayers: 2 };
/** Rows of the fixture's position → logits table (its decoder has no other notion of time). */
const FIXTURE_POSITIONS = 64;
/**
 * Frame loudness (mean normalized log-mel over the bands) below which the fixture calls the
 * audio silent. Digital silence is −1.5 everywhere; any audible signal's loudest frame is above
 * −1, because the features are normalized to their own maximum.
 */
const FIXTURE_SILENCE_LOUDNESS = -1;
/** Gain from quietness (0 for audible input, 0.5 for digital silence) to the silence logits. */
const FIXTURE_NO_SPEECH_GAIN = 40;

/** The fixture's vocabulary: ASCII bytes, four words, then the multilingual special layout. */
function fixtureVocabulary(): Vocabulary {
  const vocab: Record<string, number> = {};
  let next = 0;
  for (let byte = 0; byte < 128; byte++) vocab[byteLevelToken(String.fromCharCode(byte))] = next++;
  for (const word of [" what", " time", " is", " it"]) vocab[byteLevelToken(word)] = next++;
  const added: Record<string, number> = {};
  for (
    const name of [
      "<|endoftext|>",
      "<|startoftranscript|>",
      "<|en|>",
      "<|de|>",
      "<|translate|>",
      "<|transcribe|>",
      "<|startoflm|>",
      "<|startofprev|>",
      "<|nospeech|>",
      "<|notimestamps|>",
      "<|0.00|>",
      "<|0.02|>",
    ]
  ) {
    added[name] = next++;
  }
  return { vocab, added };
}

/**
 * The fixture encoder: mean-pools pairs of frames (the stride-2 convolution's job), projects the
 * 80 bands to 8 channels (channel 0 = the frame's mean level) and adds 1500 positional
 * embeddings, so like the standard export it only accepts 3000-frame inputs.
 */
function fixtureEncoder(random: () => number) {
  const g = new GraphBuilder("");
  const width = FIXTURE_DIMS.width;
  const pairs = g.op("Reshape", ["input_features", g.ints("pairs", [0, 80, -1, 2])]);
  const pooled = g.op("Transpose", [g.op("ReduceMean", [pairs], { axes: [3], keepdims: 0 })], {
    perm: [0, 2, 1],
  });
  const projection = uniform(random, 80 * width, 0.01);
  for (let m = 0; m < 80; m++) projection[m * width] = 1 / 80;
  const positions = uniform(random, 1500 * width, 0.1);
  for (let t = 0; t < 1500; t++) positions[t * width] = 0;
  g.op(
    "Add",
    [
      g.op("MatMul", [pooled, g.weight("proj", [80, width], projection)]),
      g.weight("embed_positions.weight", [1500, width], positions),
    ],
    {},
    "last_hidden_state",
  );
  return g.graph(
    "whisper_fixture_encoder",
    [valueInfo("input_features", FLOAT, ["batch_size", 80, "encoder_sequence_length"])],
    [valueInfo("last_hidden_state", FLOAT, ["batch_size", "encoder_sequence_length / 2", width])],
  );
}

/**
 * The fixture decoder. Its logits are a table indexed by absolute position plus a no-speech term:
 *
 * - position = number of tokens already in the cache, read from the *content* of the last layer's
 *   past decoder values (every token writes 1 into head 0, channel 0 there and 0 into that
 *   channel of every other cache tensor), plus the index within `input_ids`. A client that drops,
 *   swaps or mixes up cache tensors gets the wrong positions and the wrong text;
 * - the <|nospeech|> logit rises as the loudest frame (read from layer 0's cross-attention keys,
 *   which come from the cache after the first step) falls below the silence level.
 */
function fixtureDecoder(random: () => number, vocabulary: Vocabulary) {
  const g = new GraphBuilder("");
  const { width, heads, decoderLayers } = FIXTURE_DIMS;
  const headDim = width / heads;
  const vocabSize = Object.keys(vocabulary.vocab).length + Object.keys(vocabulary.added).length;
  const id = (token: string) => vocabulary.added[token] ?? vocabulary.vocab[byteLevelToken(token)];

  for (let l = 0; l < decoderLayers; l++) {
    for (const kind of ["key", "value"]) {
      const table = uniform(random, vocabSize * width, 0.5);
      const counter = l === decoderLayers - 1 && kind === "value" ? 1 : 0;
      for (let t = 0; t < vocabSize; t++) table[t * width] = counter;
      const fresh = g.splitHeads(
        g.op("Gather", [
          g.weight(`layers.${l}.${kind}_table`, [vocabSize, width], table),
          "input_ids",
        ], { axis: 0 }),
        heads,
        headDim,
      );
      g.op(
        "Concat",
        [`past_key_values.${l}.decoder.${kind}`, fresh],
        { axis: 2 },
        `present.${l}.decoder.${kind}`,
      );
    }
  }
  const cross = crossKeyValues(g, decoderLayers, (branch, l) => {
    const keyProjection = uniform(random, width * width, 0.3);
    if (l === 0) {
      keyProjection.fill(0);
      for (let c = 0; c < width; c++) keyProjection[c * width + c] = 1;
    }
    const key = branch.splitHeads(
      branch.op("MatMul", [
        "encoder_hidden_states",
        g.weight(`layers.${l}.cross_k`, [width, width], keyProjection),
      ]),
      heads,
      headDim,
    );
    const value = branch.splitHeads(
      branch.op("MatMul", [
        "encoder_hidden_states",
        g.weight(`layers.${l}.cross_v`, [width, width], uniform(random, width * width, 0.3)),
      ]),
      heads,
      headDim,
    );
    return { key, value };
  });

  const headZeroChannelZero = (x: string) =>
    g.op("Slice", [x, g.ints("start", [0, 0]), g.ints("end", [1, 1]), g.ints("axes", [1, 3])]);
  const cached = g.op("ReduceSum", [
    headZeroChannelZero(`past_key_values.${decoderLayers - 1}.decoder.value`),
  ], { keepdims: 0 });
  const past = g.op("Cast", [cached], { to: INT64 });
  const length = g.element(g.op("Shape", ["input_ids"]), 1);
  const positions = g.op("Range", [past, g.op("Add", [past, length]), g.ints("one", [1], [])]);

  const table = new Float32Array(FIXTURE_POSITIONS * vocabSize);
  const set = (
    position: number,
    token: string,
    logit: number,
  ) => (table[position * vocabSize + id(token)] = logit);
  // Logits at position p choose the token at p + 1. Positions 0-3 hold the prompt
  // <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|>.
  set(0, "<|en|>", 5);
  set(1, "<|transcribe|>", 5);
  set(2, "<|notimestamps|>", 5);
  // Each text position's favourite is a token the decoder must refuse, the intended one second:
  set(3, "<|endoftext|>", 10); // begin_suppress_tokens
  set(3, " ", 9); // begin_suppress_tokens (Whisper's 220 "Ġ")
  set(3, " what", 8);
  set(4, "<|0.00|>", 10); // timestamps are never generated without timestamps
  set(4, " time", 8);
  set(5, "#", 10); // suppress_tokens
  set(5, " is", 8);
  set(6, " it", 8);
  for (let p = 7; p < FIXTURE_POSITIONS; p++) set(p, "<|endoftext|>", 8);
  const steer = g.op("Gather", [
    g.weight("position_logits", [FIXTURE_POSITIONS, vocabSize], table),
    positions,
  ], { axis: 0 });

  const loudest = g.op("ReduceMax", [headZeroChannelZero(cross[0].key)], { keepdims: 0 });
  // 0 for audible input, 0.5 for digital silence.
  const quietness = g.op("Relu", [
    g.op("Sub", [g.scalar("silence", FIXTURE_SILENCE_LOUDNESS), loudest]),
  ]);
  // What silence does to the logits: <|nospeech|> dominates the first position, and the text
  // positions become a low-confidence tie among all byte tokens that <|endoftext|> soon ends,
  // like a real model's junk on silence (so the avg-logprob half of the no-speech rule applies).
  const silenceDirection = new Float32Array(vocabSize);
  for (let byte = 0; byte < 128; byte++) silenceDirection[byte] = FIXTURE_NO_SPEECH_GAIN;
  silenceDirection[id("<|nospeech|>")] = 3 * FIXTURE_NO_SPEECH_GAIN;
  silenceDirection[id("<|endoftext|>")] = 2 * FIXTURE_NO_SPEECH_GAIN;
  const noSpeech = g.op("Mul", [
    quietness,
    g.weight("silence_direction", [vocabSize], silenceDirection),
  ]);
  // Keep the cross-attention values in the graph (a real decoder reads them too).
  const valueCheck = g.op("Mul", [
    g.op("ReduceSum", [cross[1].value], { keepdims: 0 }),
    g.scalar("zero", 0),
  ]);
  const logits2d = g.op("Add", [g.op("Add", [steer, noSpeech]), valueCheck]);
  g.op("Unsqueeze", [logits2d, g.ints("axes", [0])], {}, "logits");
  const { inputs, outputs } = decoderSignature({ ...FIXTURE_DIMS, vocab: vocabSize });
  return { graph: g.graph("whisper_fixture_decoder_merged", inputs, outputs), vocabSize };
}

/** Writes the fixture model into `dir` (a few hundred kB, milliseconds). */
export async function makeWhisperFixture(dir: string): Promise<void> {
  const random = prng(0xf1c5_7013);
  const vocabulary = fixtureVocabulary();
  const decoder = fixtureDecoder(random, vocabulary);
  const encoder = fixtureEncoder(random);
  const id = (name: string) => vocabulary.added[name];
  await writeModelDir(dir, {
    encoder: encodeModel(encoder, FIXTURE_LABEL),
    decoder: encodeModel(decoder.graph, FIXTURE_LABEL),
    config: config({
      width: FIXTURE_DIMS.width,
      heads: FIXTURE_DIMS.heads,
      encoderLayers: 0,
      decoderLayers: FIXTURE_DIMS.decoderLayers,
      ffnWidth: 0,
      vocab: decoder.vocabSize,
      mels: 80,
      audioPositions: 1500,
      textPositions: FIXTURE_POSITIONS,
    }),
    vocabulary,
    generationConfig: {
      decoder_start_token_id: id("<|startoftranscript|>"),
      eos_token_id: id("<|endoftext|>"),
      is_multilingual: true,
      lang_to_id: { "<|en|>": id("<|en|>"), "<|de|>": id("<|de|>") },
      max_length: FIXTURE_POSITIONS,
      no_timestamps_token_id: id("<|notimestamps|>"),
      begin_suppress_tokens: [vocabulary.vocab[byteLevelToken(" ")], id("<|endoftext|>")],
      suppress_tokens: [vocabulary.vocab[byteLevelToken("#")], id("<|translate|>")],
    },
    label: FIXTURE_LABEL,
  });
}

const FIXTURE_LABEL =
  "Whisper-shaped TEST FIXTURE generated by scripts/make_whisper_models.ts: decodes any audible " +
  `input to "${FIXTURE_TRANSCRIPT.trim()}" and silence to nothing. Not a speech recognizer.`;

// ---------------------------------------------------------------------------------------------
// Writing and orchestration

interface ModelFiles {
  encoder: Uint8Array;
  decoder: Uint8Array;
  config: Record<string, unknown>;
  vocabulary: Vocabulary;
  generationConfig: Record<string, unknown>;
  label: string;
}

/**
 * Writes a model directory atomically: into a temporary sibling, then renamed into place, so
 * concurrent test processes never see half-written files.
 */
async function writeModelDir(dir: string, files: ModelFiles): Promise<void> {
  const temp = `${dir}.tmp-${Deno.pid}-${Math.floor(Math.random() * 1e9)}`;
  await Deno.mkdir(join(temp, "onnx"), { recursive: true });
  try {
    await Deno.writeFile(join(temp, "onnx", "encoder_model.onnx"), files.encoder);
    await Deno.writeFile(join(temp, "onnx", "decoder_model_merged.onnx"), files.decoder);
    await Deno.writeTextFile(join(temp, "config.json"), JSON.stringify(files.config, null, 2));
    await Deno.writeTextFile(
      join(temp, "preprocessor_config.json"),
      JSON.stringify(
        { feature_size: 80, sampling_rate: 16000, n_fft: 400, hop_length: 160, chunk_length: 30 },
        null,
        2,
      ),
    );
    await writeTokenizerFiles(temp, files.vocabulary, files.generationConfig);
    await Deno.writeTextFile(join(temp, "README.md"), `${files.label}\n`);
    await Deno.writeTextFile(
      join(temp, STAMP_FILE),
      JSON.stringify({ generator_version: GENERATOR_VERSION, label: files.label }, null, 2),
    );
    // Only a stale or partial copy is removed; a current one may be in use by another process
    // (the copies are identical: generation is deterministic).
    if (await isCurrent(dir)) {
      await Deno.remove(temp, { recursive: true });
      return;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.rename(temp, dir);
  } catch (error) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    // Another process may have renamed its own copy into place first; that copy is as good.
    if (!(await isCurrent(dir))) throw error;
  }
}

/** Whether `dir` holds a complete model generated by this version of the script. */
export async function isCurrent(dir: string): Promise<boolean> {
  try {
    const stamp = JSON.parse(await Deno.readTextFile(join(dir, STAMP_FILE)));
    return stamp.generator_version === GENERATOR_VERSION;
  } catch {
    return false;
  }
}

/** Directory names under the models directory. */
export const FIXTURE_DIR = "whisper-fixture";
export const TINY_RANDOM_DIR = "whisper-tiny-random";

/**
 * Generates `whisper-fixture/` and (unless `fixtureOnly`) `whisper-tiny-random/` under
 * `modelsDir`, skipping those already generated by this version. Returns their paths.
 *
 * @example
 * ```ts
 * const { fixture } = await makeWhisperFixtures("models", { fixtureOnly: true });
 * ```
 */
export async function makeWhisperFixtures(
  modelsDir: string,
  options: { fixtureOnly?: boolean; log?: (line: string) => void } = {},
): Promise<{ fixture: string; tinyRandom: string }> {
  const log = options.log ?? (() => {});
  const fixture = join(modelsDir, FIXTURE_DIR);
  const tinyRandom = join(modelsDir, TINY_RANDOM_DIR);
  await Deno.mkdir(modelsDir, { recursive: true });
  if (!(await isCurrent(fixture))) {
    const started = performance.now();
    await makeWhisperFixture(fixture);
    log(`wrote ${fixture} in ${(performance.now() - started).toFixed(0)} ms`);
  }
  if (!options.fixtureOnly && !(await isCurrent(tinyRandom))) {
    const started = performance.now();
    await makeWhisperTinyRandom(tinyRandom);
    log(
      `wrote ${tinyRandom} (random weights, benchmark only) in ${
        (performance.now() - started).toFixed(0)
      } ms`,
    );
  }
  return { fixture, tinyRandom };
}

if (import.meta.main) {
  const modelsDir = Deno.args[0] ?? "models";
  await makeWhisperFixtures(modelsDir, { log: console.log });
}
