/**
 * Writes a generated Whisper model directory in the Hugging Face layout that
 * server/stt/whisper.ts loads (`onnx/encoder_model.onnx`, `onnx/decoder_model_merged.onnx`,
 * config.json, preprocessor_config.json, vocab.json, added_tokens.json, generation_config.json),
 * atomically, with a stamp file saying which generator version made it.
 */

import { join } from "node:path";
import { encodeModel, type ModelLabel } from "./onnx_graph.ts";
import type { onnx as proto } from "onnx-proto";
import type { WhisperDims } from "./whisper_graphs.ts";

/** Bumped whenever the generated files change, so stale copies are regenerated. */
export const GENERATOR_VERSION = 8;
/** Name of the stamp file that marks a directory as generated (and by which version). */
const STAMP_FILE = "naila_generated.json";
/** What the generated models name as their producer. */
const PRODUCER = "naila scripts/make_whisper_models.ts";
/** Whisper's front end (openai/whisper audio.py): 80 bands, 16 kHz, 25 ms window, 10 ms hop, 30 s. */
const PREPROCESSOR_CONFIG = {
  feature_size: 80,
  sampling_rate: 16000,
  n_fft: 400,
  hop_length: 160,
  chunk_length: 30,
};

/** A byte-level BPE vocabulary (vocab.json) and its added special tokens (added_tokens.json). */
export interface Vocabulary {
  vocab: Record<string, number>;
  added: Record<string, number>;
}

/** The contents of one generated model directory. */
export interface ModelFiles {
  encoder: proto.IGraphProto;
  decoder: proto.IGraphProto;
  config: Record<string, unknown>;
  vocabulary: Vocabulary;
  generationConfig: Record<string, unknown>;
  /** One line saying what the model is; goes into the ONNX doc strings and README.md. */
  label: string;
}

/** config.json of a Whisper model of these sizes (HF WhisperConfig field names). */
export function whisperConfig(
  dims: WhisperDims,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
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

/**
 * Writes a model directory atomically: into a temporary sibling, then renamed into place, so
 * concurrent test processes never see half-written files. A directory already current (same
 * generator version) is left alone: another process may be using it.
 */
export async function writeModelDir(dir: string, files: ModelFiles): Promise<void> {
  const label: ModelLabel = {
    producer: PRODUCER,
    version: GENERATOR_VERSION,
    docString: files.label,
  };
  const temp = `${dir}.tmp-${Deno.pid}-${Math.floor(Math.random() * 1e9)}`;
  await Deno.mkdir(join(temp, "onnx"), { recursive: true });
  const json = (name: string, value: unknown) =>
    Deno.writeTextFile(join(temp, name), JSON.stringify(value, null, 2));
  try {
    await Deno.writeFile(
      join(temp, "onnx", "encoder_model.onnx"),
      encodeModel(files.encoder, label),
    );
    await Deno.writeFile(
      join(temp, "onnx", "decoder_model_merged.onnx"),
      encodeModel(files.decoder, label),
    );
    await json("config.json", files.config);
    await json("preprocessor_config.json", PREPROCESSOR_CONFIG);
    await Deno.writeTextFile(join(temp, "vocab.json"), JSON.stringify(files.vocabulary.vocab));
    await Deno.writeTextFile(
      join(temp, "added_tokens.json"),
      JSON.stringify(files.vocabulary.added),
    );
    await json("generation_config.json", files.generationConfig);
    await Deno.writeTextFile(join(temp, "README.md"), `${files.label}\n`);
    await json(STAMP_FILE, { generator_version: GENERATOR_VERSION, label: files.label });
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

/**
 * `modelsDir/name`, generated there by `make` unless this version of the generator already did;
 * returns its path. Safe to call from concurrent test processes (`make` writes through
 * {@link writeModelDir}).
 */
export async function ensureModelDir(
  modelsDir: string,
  name: string,
  make: (dir: string) => Promise<void>,
): Promise<string> {
  const dir = join(modelsDir, name);
  if (!(await isCurrent(dir))) {
    await Deno.mkdir(modelsDir, { recursive: true });
    await make(dir);
  }
  return dir;
}

/** Whether `dir` holds a complete model generated by this version of the generator. */
export async function isCurrent(dir: string): Promise<boolean> {
  try {
    const stamp = JSON.parse(await Deno.readTextFile(join(dir, STAMP_FILE)));
    return stamp.generator_version === GENERATOR_VERSION;
  } catch {
    return false;
  }
}
