/**
 * Speculative work on a v2 `pause` (docs/protocol.md "Ending a turn sooner or later"): when the
 * user goes quiet inside a turn, STT starts on the audio so far, abortably, and only while the
 * inference queue is idle (spec 16.2: inference is sequential; speculation uses spare CPU, never
 * a turn's). More audio discards the speculation; an `end` right after uses its transcript
 * instead of transcribing again. With `eot`, its transcript is judged and the gateway hears how
 * long a silence should end the turn. With `continue` (side effects staged until `commit`), a
 * transcript judged `complete` also starts the reply ahead of the end (docs/turn_taking.md
 * section 1, "Speculative reply"): the pipeline runs staged into a sink that holds its output;
 * an `end` with no audio after the pause releases it to the gateway at once, resumed speech or
 * a cancel aborts it (nothing sent, no staged effect applied). The turn table of `v2_turns.ts`
 * calls these on `pause`, `audio` and `end`.
 */
import { concatBytes } from "../shared/audio.ts";
import type { EotMessage } from "../shared/frame_codec.ts";
import type { InferenceQueue } from "./inference_queue.ts";
import type { Pipeline, ReplySink, SpeculativeStt, TurnResult } from "./pipeline.ts";
import { eotMessage, type HeldReply, type Speculation, type Turn } from "./v2_turn.ts";

/** Options of {@link speculate}. */
export interface SpeculateOptions {
  /** Both hellos announced `eot`: the transcript's end-of-turn decision goes out as this. */
  hint?: (message: EotMessage) => void;
  /**
   * Side effects are staged until `commit` (both announced `continue`): a `complete` transcript
   * starts the reply ahead of the end, held until the turn ends.
   */
  replyAhead?: boolean;
}

/**
 * Starts STT on `turn`'s audio so far, unless nothing new came since the last speculation, the
 * turn is no longer receiving, the pipeline has no STT to start early, or the queue is busy.
 * With `hint`, its transcript is answered with an `eot` message, and with `replyAhead` a
 * `complete` one starts the held reply (if the queue is still idle), unless speech resumed or the
 * turn ended meanwhile (the hint would be about a silence that is over).
 */
export function speculate(
  turn: Turn,
  { pipeline, queue }: { pipeline: Pipeline; queue: InferenceQueue },
  { hint, replyAhead = false }: SpeculateOptions = {},
): void {
  if (turn.phase !== "receiving" || turn.bytes === 0 || !pipeline.speculate) return;
  if (turn.speculation?.bytes === turn.bytes) return;
  discardSpeculation(turn);
  if (!queue.idle) return;
  turn.chunks = [concatBytes(turn.chunks)];
  const pcm = turn.chunks[0];
  const controller = new AbortController();
  // Registered with the queue (any other turn's run aborts it) while its STT or reply runs.
  let holds = 0;
  let unregister = () => {};
  let adopted = false;
  const hold = () => {
    if (holds++ === 0 && !adopted) unregister = queue.speculating(controller);
  };
  const release = () => {
    if (--holds === 0) unregister();
  };
  hold();
  const signal = AbortSignal.any([turn.controller.signal, controller.signal]);
  const result = pipeline.speculate(pcm, turn.rate, { signal });
  if (result === undefined) {
    release();
    return;
  }
  // Awaited by the turn if it ends now; a discarded one's rejection is expected.
  result.catch(() => {}).finally(release);
  const speculation: Speculation = {
    controller,
    bytes: turn.bytes,
    result,
    adopt: () => {
      adopted = true;
      unregister();
    },
  };
  turn.speculation = speculation;
  if ((hint === undefined && !replyAhead) || pipeline.endOfTurn === undefined) return;
  result.then((heard) => pipeline.endOfTurn!(heard.heard.text, pcm, turn.rate))
    .then((decision) => {
      if (turn.speculation !== speculation || turn.phase !== "receiving") return;
      hint?.(eotMessage(turn.id, decision));
      // Finals first: a reply ahead starts only while no turn wants the CPU.
      if (!replyAhead || decision.completion !== "complete" || !queue.idle) return;
      hold();
      speculation.reply = replyAheadOf(turn, pcm, { pipeline, result, signal });
      speculation.reply.result.catch(() => {}).finally(release);
    }).catch(() => {}); // a discarded speculation has nothing to hint
}

/** Runs the pipeline staged on `pcm` with the speculative transcript, its output held. */
function replyAheadOf(
  turn: Turn,
  pcm: Uint8Array,
  { pipeline, result, signal }: {
    pipeline: Pipeline;
    result: Promise<SpeculativeStt>;
    signal: AbortSignal;
  },
): HeldReply {
  const held: ((sink: ReplySink) => void)[] = [];
  let live: ReplySink | undefined;
  const pass = (call: (sink: ReplySink) => void) => live ? call(live) : held.push(call);
  const sink: ReplySink = {
    transcript: (text) => pass((to) => to.transcript(text)),
    reply: (text) => pass((to) => to.reply(text)),
    audio: (chunk, rate) => pass((to) => to.audio(chunk, rate)),
  };
  const utterance = {
    device: turn.device,
    turn: turn.id,
    pcm,
    rate: turn.rate,
    endedAt: Date.now(),
  };
  const run: Promise<TurnResult> = pipeline.run(utterance, sink, {
    signal,
    outputRate: turn.rate,
    speculation: result,
    staged: true,
  });
  return {
    result: run,
    release: (to) => {
      live = to;
      for (const call of held.splice(0)) call(to);
    },
  };
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
export function usableSpeculation(turn: Turn): Speculation | undefined {
  const speculation = turn.speculation;
  return speculation?.bytes === turn.bytes && !speculation.controller.signal.aborted
    ? speculation
    : undefined;
}
