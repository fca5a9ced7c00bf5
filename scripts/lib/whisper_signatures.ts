/**
 * The declared interface of Whisper's Hugging Face optimum export (onnx-community/whisper-*):
 * the model sizes, and the encoder's and merged decoder's input and output names, ranks and
 * dtypes, which whisper_graphs.ts and whisper_fixture.ts build their graphs behind. Two export
 * variants exist in the wild:
 *
 * - `encoderAxes`: "fixed" (optimum ≥ 1.18: `input_features` [batch, 80, 3000], only the batch
 *   axis free) or "dynamic" (older exports: the frame axis free too);
 * - `cachePosition`: the decoder takes a `cache_position` int64 [decoder_sequence_length] input
 *   (optimum 1.22–1.23) and reads its text positions from it.
 */
import type { onnx as proto } from "onnx-proto";
import { BOOL, FLOAT, INT64, valueInfo } from "./onnx_graph.ts";

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

/** Which optimum export layout to imitate (see the module doc). */
export interface ExportVariant {
  /** Default "fixed", the layout of current exports. */
  encoderAxes?: "fixed" | "dynamic";
  /** Default false. */
  cachePosition?: boolean;
}

/**
 * The encoder's declared input and output: `input_features` [batch, mels, frames] →
 * `last_hidden_state` [batch, frames / 2, width], with the frame axis fixed to the 30 s window
 * or free, as `variant.encoderAxes` says.
 */
export function encoderSignature(
  dims: { mels: number; audioPositions: number; width: number },
  variant: ExportVariant = {},
): { inputs: proto.IValueInfoProto[]; outputs: proto.IValueInfoProto[] } {
  const fixed = (variant.encoderAxes ?? "fixed") === "fixed";
  return {
    inputs: [
      valueInfo("input_features", FLOAT, [
        "batch_size",
        dims.mels,
        fixed ? 2 * dims.audioPositions : "encoder_sequence_length",
      ]),
    ],
    outputs: [
      valueInfo("last_hidden_state", FLOAT, [
        "batch_size",
        fixed ? dims.audioPositions : "encoder_sequence_length / 2",
        dims.width,
      ]),
    ],
  };
}

/** The inputs and outputs of optimum's merged decoder, for both generated decoders. */
export function decoderSignature(
  dims: { width: number; heads: number; decoderLayers: number; vocab: number },
  variant: ExportVariant = {},
): { inputs: proto.IValueInfoProto[]; outputs: proto.IValueInfoProto[] } {
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
  if (variant.cachePosition) {
    inputs.push(valueInfo("cache_position", INT64, ["decoder_sequence_length"]));
  }
  return { inputs, outputs };
}
