/**
 * The encoder's window: how many log-mel frames one run takes (the full 30 s, a fixed shorter
 * count, or "fit": the utterance plus a margin), and the encoder session that accepts it —
 * rewritten at load time by encoder_window.ts when the export only takes 30 s.
 */

import * as ort from "onnxruntime-node";
import { HOP_LENGTH } from "./log_mel.ts";
import { sliceEncoderPositions } from "./encoder_window.ts";
import { WhisperModelError } from "./model_error.ts";

/** The model sizes the encoder window depends on (config.json). */
export interface EncoderDims {
  /** Frames of the full window: 2 × max_source_positions (3000). */
  windowFrames: number;
  /** num_mel_bins */
  mels: number;
  /** d_model */
  width: number;
}

/** "fit" windows grow in 1 s steps, so few distinct encoder shapes are ever run. */
const FIT_STEP_FRAMES = 100;
/**
 * Silence kept after the utterance in a "fit" window: 256 frames = 128 encoder positions
 * (2.56 s). Whisper was trained on 30 s windows that end in padding; whisper.cpp users and
 * FUTO's audio_ctx fine-tunes report repetition loops and invented words on short phrases with
 * small margins and use about 128 positions (see README.md).
 */
export const FIT_MARGIN_FRAMES = 256;
/**
 * Encoder frames of a "fit" window for an utterance of `samples` (16 kHz): the utterance rounded
 * up to whole seconds plus {@linkcode FIT_MARGIN_FRAMES}, at most `windowFrames` (the full 30 s).
 */
export function fitWindowFrames(samples: number, windowFrames: number): number {
  const needed = Math.ceil(samples / HOP_LENGTH / FIT_STEP_FRAMES) * FIT_STEP_FRAMES +
    FIT_MARGIN_FRAMES;
  return Math.min(needed, windowFrames);
}

/**
 * Creates the encoder session. For windows shorter than the model's 30 s, checks the encoder
 * takes them by running the smallest one; the standard export does not, so its positional
 * embeddings are then sliced to the input length (encoder_window.ts) and the check repeated.
 * Throws a {@linkcode WhisperModelError} for an invalid `encoderFrames` or an encoder that cannot
 * be made to take the window.
 */
export async function openEncoder(
  path: string,
  encoderFrames: number | "fit",
  config: EncoderDims,
  sessionOptions: ort.InferenceSession.SessionOptions,
): Promise<ort.InferenceSession> {
  const encoder = await ort.InferenceSession.create(path, sessionOptions);
  if (encoderFrames === config.windowFrames) return encoder;
  const frames = encoderFrames === "fit" ? FIT_STEP_FRAMES + FIT_MARGIN_FRAMES : encoderFrames;
  if (!Number.isInteger(frames) || frames < 2 || frames % 2 !== 0 || frames > config.windowFrames) {
    throw new WhisperModelError(
      `encoderFrames is ${encoderFrames}, expected "fit" or an even integer from 2 to ` +
        `${config.windowFrames}`,
    );
  }
  const probe = new ort.Tensor("float32", new Float32Array(config.mels * frames), [
    1,
    config.mels,
    frames,
  ]);
  const accepts = async (session: ort.InferenceSession) => {
    try {
      // An expected failure: keep onnxruntime from logging it as an error (4 = fatal only).
      await session.run({ input_features: probe }, { logSeverityLevel: 4 });
      return true;
    } catch {
      return false;
    }
  };
  if (await accepts(encoder)) return encoder;
  await encoder.release();
  let sliced: ort.InferenceSession;
  try {
    const model = sliceEncoderPositions(await Deno.readFile(path), {
      positions: config.windowFrames / 2,
      width: config.width,
    });
    sliced = await ort.InferenceSession.create(model, sessionOptions);
  } catch (error) {
    throw new WhisperModelError(
      `${path} does not accept a ${frames}-frame window (encoderFrames ${encoderFrames}) and ` +
        `could not be made to: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  if (!(await accepts(sliced))) {
    throw new WhisperModelError(
      `${path} does not accept a ${frames}-frame window (encoderFrames ${encoderFrames}), even ` +
        "with its positional embeddings sliced to the input length",
    );
  }
  return sliced;
}
