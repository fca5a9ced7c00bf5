/**
 * The echo guard's modes (gateway/README.md, issue 9) and the VAD thresholds of a device's audio
 * input (audio_input.ts): the normal ones, and the raised ones that apply while a reply plays.
 *
 * - `estimate` (default): the echo path (`echo_path.ts`) predicts the reply's echo and a mic
 *   frame not clearly above it counts as unvoiced; until the estimate has converged the `raise`
 *   thresholds apply on top.
 * - `raise`: the VAD needs more confidence and more frames to call it speech.
 * - `half_duplex`: the microphone is ignored while a reply plays.
 * - `off`: nothing (for devices with echo cancellation).
 *
 * @example
 * ```ts
 * const { normal, guarded } = vadParams("silero", "raise", 15);
 * vad.params = replyPlaying ? guarded : normal;
 * ```
 */
import { OPUS_FRAME_MS } from "../shared/media/opus_codec.ts";
import {
  BLOCK_MS as ECHO_BLOCK_MS,
  MAX_DELAY_MS as ECHO_MAX_DELAY_MS,
  TAIL_BLOCKS as ECHO_TAIL_BLOCKS,
} from "./echo_path.ts";
import type { VadParams, VoiceModel } from "./vad.ts";

/** Silero's usual decision threshold. */
export const SILERO_THRESHOLD = 0.5;
/** Energy confidence is 0.5 exactly at AUDIO_VAD_THRESHOLD (see EnergyModel). */
export const ENERGY_THRESHOLD = 0.5;
/** 100 ms of voiced frames make speech: short enough for a snappy barge-in, long enough to skip clicks. */
export const START_FRAMES = 5;
/** Echo guard `raise`: Silero must be this sure while a reply plays... */
export const GUARD_SILERO_THRESHOLD = 0.85;
/** ...or the energy must be this many times the threshold... */
export const GUARD_ENERGY_FACTOR = 3;
/** ...for this many frames (200 ms). */
export const GUARD_START_FRAMES = 10;

/** How the microphone is treated while a reply plays (see the module doc). */
export type EchoGuard = "estimate" | "raise" | "half_duplex" | "off";

/**
 * After the last reply frame was sent, its echo can still reach the microphone for the longest
 * echo delay plus the room's tail (`echo_path.ts`): mic frames are checked against the echo
 * path that long.
 */
export const ECHO_HANGOVER_MS = ECHO_MAX_DELAY_MS + ECHO_TAIL_BLOCKS * ECHO_BLOCK_MS +
  OPUS_FRAME_MS;

/** The VAD parameters without and with the echo guard (the same object when it raises nothing). */
export interface GuardedVadParams {
  normal: VadParams;
  /** While a reply plays (`raise`, and `estimate` until its echo path converged). */
  guarded: VadParams;
}

/**
 * The VAD parameters for a `model` ("silero" or "energy") under `guard`, ending an utterance
 * after `silenceFrames` unvoiced 20 ms frames (AUDIO_SILENCE_FRAMES).
 */
export function vadParams(
  model: VoiceModel["name"],
  guard: EchoGuard,
  silenceFrames: number,
): GuardedVadParams {
  const silero = model === "silero";
  const normal: VadParams = {
    threshold: silero ? SILERO_THRESHOLD : ENERGY_THRESHOLD,
    startFrames: START_FRAMES,
    stopFrames: silenceFrames,
  };
  const guarded: VadParams = guard === "raise" || guard === "estimate"
    ? {
      threshold: silero
        ? GUARD_SILERO_THRESHOLD
        : Math.min(1, ENERGY_THRESHOLD * GUARD_ENERGY_FACTOR),
      startFrames: GUARD_START_FRAMES,
      stopFrames: silenceFrames,
    }
    : normal;
  return { normal, guarded };
}
