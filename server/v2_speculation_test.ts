import assert from "node:assert/strict";
import type { EotMessage } from "../shared/frame_codec.ts";
import { EndOfTurn } from "./end_of_turn.ts";
import { InferenceQueue } from "./inference_queue.ts";
import { EchoPipeline, type SpeculativeStt } from "./pipeline.ts";
import { discardSpeculation, speculate, usableSpeculation } from "./v2_speculation.ts";
import { eotMessage, newTurn, type Turn } from "./v2_turn.ts";

const RATE = 16000;

/** A receiving turn that already got `chunks` (int16 LE PCM). */
function receivingTurn(...chunks: Uint8Array[]): Turn {
  const turn = newTurn("t1", "kitchen", RATE, { pcm: new Uint8Array(0), links: 0 });
  turn.chunks = chunks;
  turn.bytes = chunks.reduce((sum, c) => sum + c.length, 0);
  return turn;
}

/**
 * The echo pipeline given an early STT that hears "set a timer for" (an unfinished request) and
 * the real text rule of end_of_turn.ts as its judge.
 */
function speculatingPipeline() {
  const started: { bytes: number; signal: AbortSignal }[] = [];
  const judged: string[] = [];
  const pipeline = Object.assign(new EchoPipeline(), {
    speculate: (pcm: Uint8Array, _rate: number, { signal }: { signal: AbortSignal }) => {
      started.push({ bytes: pcm.length, signal });
      const heard = { text: HEARD, timings: EMPTY_TIMINGS };
      return Promise.resolve<SpeculativeStt>({ heard, startedAt: 0, doneAt: 0 });
    },
    endOfTurn: (transcript: string) => {
      judged.push(transcript);
      return new EndOfTurn().decide(transcript);
    },
  });
  return { pipeline, started, judged };
}

const HEARD = "set a timer for";
const EMPTY_TIMINGS = { frontend_ms: 0, encoder_ms: 0, decoder_ms: 0, tokens: 0 };

Deno.test("speculate: STT starts on all the audio so far, once per new audio", async () => {
  const { pipeline, started } = speculatingPipeline();
  const queue = new InferenceQueue();
  const turn = receivingTurn(new Uint8Array(320), new Uint8Array(320));
  speculate(turn, { pipeline, queue });
  assert.deepEqual(started.map((s) => s.bytes), [640]);
  assert.equal(turn.chunks.length, 1, "the chunks are joined into the speculated audio");
  speculate(turn, { pipeline, queue });
  assert.equal(started.length, 1, "no new audio: the same speculation stands");
  assert.equal((await usableSpeculation(turn))?.heard.text, HEARD);
});

Deno.test("speculate: nothing starts without early STT, without audio or after the end", () => {
  const { pipeline, started } = speculatingPipeline();
  const queue = new InferenceQueue();
  speculate(receivingTurn(new Uint8Array(320)), { pipeline: new EchoPipeline(), queue });
  speculate(receivingTurn(), { pipeline, queue });
  const ended = receivingTurn(new Uint8Array(320));
  ended.phase = "queued";
  speculate(ended, { pipeline, queue });
  assert.equal(started.length, 0);
});

Deno.test("speculate: nothing starts while the queue runs a turn", async () => {
  const { pipeline, started } = speculatingPipeline();
  const queue = new InferenceQueue();
  let finish = () => {};
  const running = queue.run("other", () => new Promise<void>((resolve) => finish = resolve));
  const turn = receivingTurn(new Uint8Array(320));
  speculate(turn, { pipeline, queue });
  assert.equal(started.length, 0);
  assert.equal(usableSpeculation(turn), undefined);
  finish();
  await running;
});

Deno.test("usableSpeculation: only one that covers all the audio and was not aborted", () => {
  const { pipeline, started } = speculatingPipeline();
  const queue = new InferenceQueue();
  const turn = receivingTurn(new Uint8Array(320));
  speculate(turn, { pipeline, queue });
  assert.ok(usableSpeculation(turn) !== undefined);
  // More audio came: the speculation no longer covers the utterance.
  turn.bytes += 320;
  assert.equal(usableSpeculation(turn), undefined);
  turn.bytes -= 320;
  // Aborted (another device's final turn goes first).
  turn.speculation!.controller.abort();
  assert.equal(usableSpeculation(turn), undefined);
  discardSpeculation(turn);
  assert.equal(turn.speculation, undefined);
  assert.ok(started[0].signal.aborted);
});

Deno.test("speculate: with a hint, the transcript is judged and answered with an eot", async () => {
  const { pipeline, judged } = speculatingPipeline();
  const queue = new InferenceQueue();
  const hints: EotMessage[] = [];
  const turn = receivingTurn(new Uint8Array(320));
  speculate(turn, { pipeline, queue }, (eot) => hints.push(eot));
  await turn.speculation!.result;
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(judged, [HEARD]);
  assert.equal(hints.length, 1);
  const expected = eotMessage("t1", await new EndOfTurn().decide(HEARD));
  assert.deepEqual({ ...hints[0], ts: 0 }, { ...expected, ts: 0 });
  assert.equal(hints[0].completion, "incomplete");
});

Deno.test("speculate: no hint once speech resumed", async () => {
  const { pipeline, judged } = speculatingPipeline();
  const queue = new InferenceQueue();
  const hints: EotMessage[] = [];
  const turn = receivingTurn(new Uint8Array(320));
  speculate(turn, { pipeline, queue }, (eot) => hints.push(eot));
  const result = turn.speculation!.result;
  discardSpeculation(turn);
  await result;
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(judged.length, 1, "judged, but the silence it was about is over");
  assert.equal(hints.length, 0);
});
