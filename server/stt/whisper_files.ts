/**
 * The files and graph names of a Whisper export (the Hugging Face / optimum layout whisper.ts
 * loads): which files must be present, the sizes in config.json, the decoder's cache input and
 * output names, and whether it takes `cache_position`. Pure checks, each failure a
 * {@linkcode WhisperModelError} naming the file and what is wrong.
 */
import type * as ort from "onnxruntime-node";
import { join } from "node:path";
import { N_MELS, WINDOW_FRAMES } from "./log_mel.ts";
import { WhisperModelError } from "./model_error.ts";

/** Where the optimum export puts the encoder, relative to the model directory. */
export const ENCODER_FILE = "onnx/encoder_model.onnx";
/** The merged decoder (first step and cached steps in one graph, switched by use_cache_branch). */
export const DECODER_FILE = "onnx/decoder_model_merged.onnx";
export const CONFIG_FILE = "config.json";
/** Either file holds the vocabulary. */
export const TOKENIZER_FILES = ["tokenizer.json", "vocab.json"];

/** File names a caller may override (quantized variants). */
export interface ModelFileNames {
  encoderFile?: string;
  decoderFile?: string;
}

/** Whether `modelDir` holds everything `loadWhisper` (whisper.ts) needs. */
export async function whisperModelPresent(
  modelDir: string,
  options: ModelFileNames = {},
): Promise<boolean> {
  return (await missingFiles(modelDir, options)).length === 0;
}

export async function missingFiles(
  modelDir: string,
  options: ModelFileNames,
): Promise<string[]> {
  const missing: string[] = [];
  for (
    const file of [
      options.encoderFile ?? ENCODER_FILE,
      options.decoderFile ?? DECODER_FILE,
      CONFIG_FILE,
    ]
  ) {
    if (!(await isFile(join(modelDir, file)))) missing.push(file);
  }
  const tokenizerPresent = await Promise.all(TOKENIZER_FILES.map((f) => isFile(join(modelDir, f))));
  if (!tokenizerPresent.some(Boolean)) missing.push(TOKENIZER_FILES.join(" or "));
  return missing;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** The sizes read from config.json. */
export interface ModelConfig {
  /** d_model */
  width: number;
  layers: number;
  heads: number;
  headDim: number;
  mels: number;
  /** Encoder frames of a full window: 2 × max_source_positions. */
  windowFrames: number;
}

/** Reads the sizes from `modelDir`/config.json. */
export async function readConfig(modelDir: string): Promise<ModelConfig> {
  const path = join(modelDir, CONFIG_FILE);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    throw new WhisperModelError(`${path} could not be read as JSON: ${(error as Error).message}`);
  }
  const positive = (field: string, fallback?: number): number => {
    const value = json[field] ?? fallback;
    if (!Number.isInteger(value) || (value as number) < 1) {
      throw new WhisperModelError(
        `${path} ${field} is ${JSON.stringify(value)}, expected a positive integer`,
      );
    }
    return value as number;
  };
  const width = positive("d_model");
  const heads = positive("decoder_attention_heads");
  if (width % heads !== 0) {
    throw new WhisperModelError(
      `${path} d_model ${width} is not divisible by decoder_attention_heads ${heads}`,
    );
  }
  return {
    layers: positive("decoder_layers"),
    heads,
    width,
    headDim: width / heads,
    mels: positive("num_mel_bins", N_MELS),
    windowFrames: 2 * positive("max_source_positions", WINDOW_FRAMES / 2),
  };
}

/** Checks the session exposes every name the decoding loop feeds or reads. */
export function requireNames(
  file: string,
  kind: string,
  present: readonly string[],
  wanted: string[],
) {
  const missing = wanted.filter((name) => !present.includes(name));
  if (missing.length > 0) {
    throw new WhisperModelError(
      `${file} lacks ${kind} ${missing.join(", ")} (has ${present.join(", ")}); expected the ` +
        "optimum/onnx-community Whisper export layout",
    );
  }
}

/** The decoder's key/value cache inputs and outputs, per layer and kind. */
export interface CacheNames {
  pastDecoder: string[];
  pastEncoder: string[];
  presentDecoder: string[];
  presentEncoder: string[];
}

/** The cache names of a decoder with `layers` layers. */
export function cacheNames(layers: number): CacheNames {
  const names: CacheNames = {
    pastDecoder: [],
    pastEncoder: [],
    presentDecoder: [],
    presentEncoder: [],
  };
  for (let l = 0; l < layers; l++) {
    for (const kind of ["key", "value"]) {
      names.pastDecoder.push(`past_key_values.${l}.decoder.${kind}`);
      names.pastEncoder.push(`past_key_values.${l}.encoder.${kind}`);
      names.presentDecoder.push(`present.${l}.decoder.${kind}`);
      names.presentEncoder.push(`present.${l}.encoder.${kind}`);
    }
  }
  return names;
}

/** The optional decoder input of optimum 1.22–1.23 exports: the absolute positions of input_ids. */
export const CACHE_POSITION = "cache_position";

/**
 * Rank of the decoder's `cache_position` input (1: [decoder_sequence_length], as optimum declares
 * it; 2: [batch, length]), or 0 when the graph has no such input.
 */
export function cachePositionRank(decoder: ort.InferenceSession): number {
  if (!decoder.inputNames.includes(CACHE_POSITION)) return 0;
  const metadata = decoder.inputMetadata?.find((m) => m.name === CACHE_POSITION);
  const rank = metadata?.isTensor ? metadata.shape.length : 0;
  return rank === 2 ? 2 : 1;
}
