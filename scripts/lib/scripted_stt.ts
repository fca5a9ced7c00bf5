/**
 * A speech-to-text that hears what a test or benchmark scripted, whatever was said: for runs of
 * the real server whose point is not recognition (the Whisper fixture knows only a few
 * sentences).
 *
 * @example
 * ```ts
 * const server = await startLoopbackServer({ PIPELINE: "full" }, {
 *   stt: scriptedStt("What time is it?"),
 * });
 * ```
 */
import type { SpeechToText, Transcript } from "../../server/stt/types.ts";

/**
 * Hears `heard` for every utterance; given a list, hears its sentences in order, one per
 * utterance, then "" (nothing intelligible). Timings are all 0: no model runs.
 */
export function scriptedStt(heard: string | readonly string[]): SpeechToText {
  const queue = typeof heard === "string" ? undefined : [...heard];
  return {
    transcribe: (): Promise<Transcript> =>
      Promise.resolve({
        text: queue === undefined ? heard as string : queue.shift() ?? "",
        timings: { frontend_ms: 0, encoder_ms: 0, decoder_ms: 0, tokens: 0 },
      }),
  };
}
