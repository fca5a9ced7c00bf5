/**
 * Opens a Whisper export for whisper.ts: checks the directory's files (whisper_files.ts), reads
 * its config and tokenizer, opens the encoder (encoder_session.ts, its window fitted) and the
 * merged decoder on onnxruntime-node, and checks both graphs have every input and output the
 * decoding loop uses. Each failure is a {@linkcode WhisperModelError} naming the file and what is
 * wrong, before any audio is transcribed.
 */
import * as ort from "onnxruntime-node";
import { join } from "node:path";
import { openEncoder } from "./encoder_session.ts";
import { WhisperModelError } from "./model_error.ts";
import { WhisperTokenizer } from "./tokenizer.ts";
import {
  type CacheNames,
  cacheNames,
  cachePositionRank,
  DECODER_FILE,
  ENCODER_FILE,
  missingFiles,
  type ModelConfig,
  readConfig,
  requireNames,
} from "./whisper_files.ts";

/** onnxruntime threads: this machine and the Pi 5 class the spec targets have 2–4 cores. */
export const DEFAULT_THREADS = 2;

/** What {@link openWhisperSessions} reads from the options of `loadWhisper` (`WhisperOptions`). */
export interface SessionOptions {
  /**
   * Encoder window: 3000 frames (30 s, the default), a smaller even number, or "fit": the
   * utterance in 1 s steps plus 2.56 s (encoder_session.ts's FIT_MARGIN_FRAMES) (whisper.cpp's
   * `audio_ctx` trick: several times less encoder work for a 3 s utterance, at some cost in
   * accuracy, since Whisper was trained on 30 s windows only). The standard export takes only
   * 3000 frames; for anything else its positional embeddings are sliced at load time
   * (encoder_window.ts), or a WhisperModelError says why not.
   */
  encoderFrames?: number | "fit";
  /** onnxruntime intra-op threads (default {@linkcode DEFAULT_THREADS}). */
  threads?: number;
  /** Alternative file names, e.g. "onnx/decoder_model_merged_quantized.onnx". */
  encoderFile?: string;
  decoderFile?: string;
}

/** A Whisper export, opened and checked. */
export interface WhisperSessions {
  encoder: ort.InferenceSession;
  decoder: ort.InferenceSession;
  /** See {@linkcode cachePositionRank}; 0 = not fed. */
  cachePositionRank: number;
  tokenizer: WhisperTokenizer;
  config: ModelConfig;
  names: CacheNames;
  /** The encoder window the sessions were opened for. */
  encoderFrames: number | "fit";
}

/**
 * Opens the export in `modelDir` (Hugging Face layout with an `onnx/` folder).
 * @throws {WhisperModelError} a file is missing (all missing ones named), config.json is bad,
 * or a graph lacks an input or output the decoding loop uses.
 */
export async function openWhisperSessions(
  modelDir: string,
  options: SessionOptions = {},
): Promise<WhisperSessions> {
  const missing = await missingFiles(modelDir, options);
  if (missing.length > 0) {
    throw new WhisperModelError(
      `Whisper model in ${modelDir} is incomplete: missing ${missing.join(", ")} ` +
        "(download one with `deno task models`)",
    );
  }
  const config = await readConfig(modelDir);
  const tokenizer = await WhisperTokenizer.load(modelDir);
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: options.threads ?? DEFAULT_THREADS,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionMode: "sequential",
  };
  const encoderFile = options.encoderFile ?? ENCODER_FILE;
  const decoderFile = options.decoderFile ?? DECODER_FILE;
  const encoderFrames = options.encoderFrames ?? config.windowFrames;
  const encoder = await openEncoder(
    join(modelDir, encoderFile),
    encoderFrames,
    config,
    sessionOptions,
  );
  const decoder = await ort.InferenceSession.create(join(modelDir, decoderFile), sessionOptions);
  requireNames(encoderFile, "input", encoder.inputNames, ["input_features"]);
  requireNames(encoderFile, "output", encoder.outputNames, ["last_hidden_state"]);
  const names = cacheNames(config.layers);
  requireNames(decoderFile, "input", decoder.inputNames, [
    "input_ids",
    "encoder_hidden_states",
    ...names.pastDecoder,
    ...names.pastEncoder,
    "use_cache_branch",
  ]);
  requireNames(decoderFile, "output", decoder.outputNames, [
    "logits",
    ...names.presentDecoder,
    ...names.presentEncoder,
  ]);
  return {
    encoder,
    decoder,
    cachePositionRank: cachePositionRank(decoder),
    tokenizer,
    config,
    names,
    encoderFrames,
  };
}
