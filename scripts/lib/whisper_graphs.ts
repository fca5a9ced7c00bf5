/**
 * Whisper's encoder and merged decoder as ONNX graphs, with the tensor names, ranks and dtypes
 * of the Hugging Face optimum export (onnx-community/whisper-*; declared in
 * whisper_signatures.ts, with the two export variants found in the wild), at any size and with
 * seeded random weights.
 */

import type { onnx as proto } from "onnx-proto";
import { EMPTY_FLOAT_TENSOR, FLOAT, GraphBuilder, uniform, valueInfo } from "./onnx_graph.ts";
import {
  decoderSignature,
  encoderSignature,
  type ExportVariant,
  type WhisperDims,
} from "./whisper_signatures.ts";

export {
  decoderSignature,
  encoderSignature,
  type ExportVariant,
  WHISPER_TINY_DIMS,
  type WhisperDims,
} from "./whisper_signatures.ts";

/** Additive mask for future positions; large enough that softmax gives them exactly 0. */
const MASKED = -1e9;

/**
 * Whisper's encoder: two convolutions (the second with stride 2), positional embeddings,
 * pre-norm transformer layers, a final layer norm. Like the standard export, it adds all 1500
 * positional embeddings and so only accepts 3000-frame inputs (server/stt/encoder_window.ts
 * rewrites that at load time when a shorter window is asked for).
 */
export function whisperEncoder(
  dims: WhisperDims,
  random: () => number,
  variant: ExportVariant = {},
): proto.IGraphProto {
  const g = new GraphBuilder("");
  const { width, heads, mels } = dims;
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
    const h = g.layerNorm(x, ones(`${p}ln1.weight`), zeros(`${p}ln1.bias`));
    const { q, k, v } = selfAttentionInputs(g, h, p, { w, zeros }, dims);
    const attended = g.mergeHeads(g.attention(q, k, v, headDim), width);
    x = g.op("Add", [
      x,
      g.linear(attended, w(`${p}o.weight`, [width, width], width), zeros(`${p}o.bias`)),
    ]);
    x = feedForward(g, x, p, "ln2", { w, zeros, ones }, dims);
  }
  g.layerNorm(x, ones("ln_post.weight"), zeros("ln_post.bias"));
  g.nodes.at(-1)!.output = ["last_hidden_state"];
  const { inputs, outputs } = encoderSignature(dims, variant);
  return g.graph("whisper_encoder", inputs, outputs);
}

/** How a model function creates (or reuses) its named weights. */
interface WeightFactory {
  w(name: string, shape: number[], fanIn: number): string;
  zeros(name: string, n?: number): string;
}

/**
 * Whisper's feed-forward sublayer with its residual: x + fc2(gelu(fc1(layerNorm(x)))), the
 * layer norm named `norm` (ln2 in the encoder, ln3 in the decoder).
 */
function feedForward(
  b: GraphBuilder,
  x: string,
  prefix: string,
  norm: string,
  weights: WeightFactory & { ones(name: string): string },
  dims: { width: number; ffnWidth: number },
): string {
  const { w, zeros, ones } = weights;
  const { width, ffnWidth } = dims;
  const h = b.layerNorm(x, ones(`${prefix}${norm}.weight`), zeros(`${prefix}${norm}.bias`));
  const up = b.gelu(
    b.linear(
      h,
      w(`${prefix}fc1.weight`, [width, ffnWidth], width),
      zeros(`${prefix}fc1.bias`, ffnWidth),
    ),
  );
  return b.op("Add", [
    x,
    b.linear(up, w(`${prefix}fc2.weight`, [ffnWidth, width], ffnWidth), zeros(`${prefix}fc2.bias`)),
  ]);
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

/**
 * The absolute positions of `input_ids`: the `cache_position` input when the variant has it,
 * else past length (read from the first cached key's shape) + 0…length−1.
 */
export function textPositionsOf(g: GraphBuilder, variant: ExportVariant): string {
  if (variant.cachePosition) return "cache_position";
  const length = g.element(g.op("Shape", ["input_ids"]), 1);
  const past = g.element(g.op("Shape", ["past_key_values.0.decoder.key"]), 2);
  return g.op("Range", [past, g.op("Add", [past, length]), g.ints("one", [1], [])]);
}

/**
 * The cross-attention keys/values as the merged export handles them: with `use_cache_branch`
 * they come from `past_key_values.*.encoder.*` and `present.*.encoder.*` are empty (optimum's
 * merge emits zero-size constants there; clients keep the first step's values), otherwise they
 * are computed from `encoder_hidden_states`.
 */
export function crossKeyValues(
  g: GraphBuilder,
  layers: number,
  project: (branch: GraphBuilder, layer: number) => { key: string; value: string },
): { key: string; value: string }[] {
  const then = new GraphBuilder("cached_");
  const otherwise = new GraphBuilder("fresh_");
  const attention: string[] = [], present: string[] = [];
  const thenAttention: string[] = [], thenPresent: string[] = [];
  const elseAttention: string[] = [], elsePresent: string[] = [];
  for (let l = 0; l < layers; l++) {
    const fresh = project(otherwise, l);
    for (const kind of ["key", "value"] as const) {
      thenAttention.push(then.op("Identity", [`past_key_values.${l}.encoder.${kind}`]));
      thenPresent.push(then.op("Constant", [], { value: { tensor: EMPTY_FLOAT_TENSOR } }));
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
 * share the outer graph's weights. `silentTokens` get a logit of exactly 0.
 */
export function whisperDecoder(
  dims: WhisperDims,
  random: () => number,
  silentTokens: number[],
  variant: ExportVariant = {},
): proto.IGraphProto {
  const g = new GraphBuilder("");
  const { width, heads, vocab } = dims;
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
  const embedded = g.op("Add", [
    g.op("Gather", [tokens, "input_ids"], { axis: 0 }),
    g.op("Gather", [textPositions, textPositionsOf(g, variant)], { axis: 0 }),
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

      x = feedForward(b, x, p, "ln3", { w, zeros, ones }, dims);
    }
    x = b.layerNorm(x, ones("ln_final.weight"), zeros("ln_final.bias"));
    return { logits: b.op("MatMul", [x, projection]), present };
  };

  const cached = new GraphBuilder("cached_");
  const cachedOut = layers(cached, (l) => ({
    key: `past_key_values.${l}.encoder.key`,
    value: `past_key_values.${l}.encoder.value`,
  }));
  const cachedEncoder = Array.from(
    { length: 2 * dims.decoderLayers },
    () => cached.op("Constant", [], { value: { tensor: EMPTY_FLOAT_TENSOR } }),
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

  const { inputs, outputs } = decoderSignature(dims, variant);
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
