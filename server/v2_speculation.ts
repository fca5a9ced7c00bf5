/**
 * Speculative STT on a v2 `pause` (docs/protocol.md "Ending a turn sooner or later"): when the
 * user goes quiet inside a turn, STT starts on the audio so far, abortably, and only while the
 * inference queue is idle (spec 16.2: inference is sequential; speculation uses spare CPU, never
 * a turn's). Only STT: the assistant has side effects and runs after `end`. More audio discards
 * the speculation; an `end` right after uses its transcript instead of transcribing again. With
 * `eot`, its transcript is judged and the gateway hears how long a silence should end the turn.
 * The turn table of `v2_turns.ts` calls these on `pause`, `audio` and `end`.
 */
import { concatBytes } from "../shared/audio.ts";
import type { EotMessage } from "../shared/frame_codec.ts";
import type { InferenceQueue } from "./inference_queue.ts";
import type { Pipeline, SpeculativeStt } from "./pipeline.ts";
import { eotMessage, type Turn } from "./v2_turn.ts";

/**
 * Starts STT on `turn`'s audio so far, unless nothing new came since the last speculation, the
 * turn is no longer receiving, the pipeline has no STT to start early, or the queue is busy.
 * With `hint` (both hellos announced `eot`), its transcript is answered with an `eot` message,
 * unless speech resumed or the turn ended meanwhile (the hint would be about a silence that is
 * over).
 */
export function speculate(
  turn: Turn,
  { pipeline, queue }: { pipeline: Pipeline; queue: InferenceQueue },
  hint?: (message: EotMessage) => void,
): void {
  if (turn.phase !== "receiving" || turn.bytes === 0 || !pipeline.speculate) return;
  if (turn.speculation?.bytes === turn.bytes) return;
  discardSpeculation(turn);
  if (!queue.idle) return;
  turn.chunks = [concatBytes(turn.chunks)];
  const pcm = turn.chunks[0];
  const controller = new AbortController();
  const done = queue.speculating(controller);
  const signal = AbortSignal.any([turn.controller.signal, controller.signal]);
  const result = pipeline.speculate(pcm, turn.rate, { signal });
  if (result === undefined) {
    done();
    return;
  }
  // Awaited by the turn if it ends now; a discarded one's rejection is expected.
  result.catch(() => {}).finally(done);
  const speculation = { controller, bytes: turn.bytes, result };
  turn.speculation = speculation;
  if (hint === undefined || pipeline.endOfTurn === undefined) return;
  result.then((heard) => pipeline.endOfTurn!(heard.heard.text, pcm, turn.rate))
    .then((decision) => {
      if (turn.speculation !== speculation || turn.phase !== "receiving") return;
      hint(eotMessage(turn.id, decision));
    }).catch(() => {}); // a discarded speculation has nothing to hint
}

/** Aborts `turn`'s speculation, if any: speech resumed, or the turn is over. */
export function discardSpeculation(turn: Turn): void {
  turn.speculation?.controller.abort();
  turn.speculation = undefined;
}

/**
 * The speculation an ended turn can use instead of transcribing: one that covers all of its
 * audio and was not aborted (e.g. for another device's final turn: finals first).
 */
export function usableSpeculation(turn: Turn): Promise<SpeculativeStt> | undefined {
  const speculation = turn.speculation;
  return speculation?.bytes === turn.bytes && !speculation.controller.signal.aborted
    ? speculation.result
    : undefined;
}
