import assert from "node:assert/strict";
import { testAssistant } from "./assistant/testing.ts";
import type { EotMessage } from "../shared/frame_codec.ts";
import { EndOfTurn } from "./end_of_turn.ts";
import { InferenceQueue } from "./inference_queue.ts";
import { EchoPipeline, FullPipeline, type ReplySink, type SpeculativeStt } from "./pipeline.ts";
import { EspeakTts } from "./tts/espeak.ts";
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
  assert.equal((await usableSpeculation(turn)?.result)?.heard.text, HEARD);
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
  speculate(turn, { pipeline, queue }, { hint: (eot) => hints.push(eot) });
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
  speculate(turn, { pipeline, queue }, { hint: (eot) => hints.push(eot) });
  const result = turn.speculation!.result;
  discardSpeculation(turn);
  await result;
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(judged.length, 1, "judged, but the silence it was about is over");
  assert.equal(hints.length, 0);
});

/** A complete command the built-in engine recognizes in full (`eot` `complete`). */
const COMMAND = "turn on the kitchen lights";

/**
 * The full pipeline with the real assistant (SQLite memory, timers) and espeak-ng TTS; its STT
 * hears `COMMAND` whatever the audio (the point here is what happens after STT).
 */
function fullSetup() {
  const { assistant, memory, commands, close } = testAssistant();
  const stt = {
    transcribe: () => Promise.resolve({ text: COMMAND, timings: EMPTY_TIMINGS }),
  };
  const pipeline = new FullPipeline({ stt, assistant, tts: new EspeakTts() });
  return { memory, commands, pipeline, close };
}

/** A sink that records what reached the gateway, in order. */
function recordingSink() {
  const sent: string[] = [];
  const sink: ReplySink = {
    transcript: (text) => sent.push(`transcript ${text}`),
    reply: (text) => sent.push(`reply ${text}`),
    audio: () => sent.push("audio"),
  };
  return { sent, sink };
}

/**
 * Speculates on `turn` with `replyAhead` and waits for its `eot` hint: the reply ahead, if any,
 * is started in the same step as the hint, so after this it is there or it never will be.
 */
async function judged(
  turn: Turn,
  pipeline: Parameters<typeof speculate>[1]["pipeline"],
  queue: InferenceQueue,
  replyAhead = true,
): Promise<EotMessage> {
  const hinted = Promise.withResolvers<EotMessage>();
  speculate(turn, { pipeline, queue }, { hint: hinted.resolve, replyAhead });
  return await hinted.promise;
}

/** Speculates on `turn` and returns the held reply a complete transcript starts. */
async function heldReply(turn: Turn, pipeline: FullPipeline, queue: InferenceQueue) {
  await judged(turn, pipeline, queue);
  const reply = turn.speculation?.reply;
  assert.ok(reply !== undefined, "a complete transcript starts the reply ahead");
  return reply;
}

/** Runs `test` with a {@link fullSetup}, closed afterwards whatever happens. */
async function withFullSetup(test: (s: ReturnType<typeof fullSetup>) => Promise<void>) {
  const s = fullSetup();
  try {
    await test(s);
  } finally {
    s.close();
  }
}

Deno.test("speculate: a complete transcript's reply runs ahead, held until released", async () => {
  await withFullSetup(async (s) => {
    const queue = new InferenceQueue();
    const turn = receivingTurn(new Uint8Array(3200));
    const reply = await heldReply(turn, s.pipeline, queue);
    const result = await reply.result;
    assert.equal(result.cancelled, false);
    assert.equal(result.transcript, COMMAND);
    assert.ok(result.replyAudioMs > 0, "the first sentence was synthesized ahead");
    // Staged: nothing applied or recorded before the commit.
    assert.equal(s.commands.length, 0);
    assert.equal(s.memory.recent("kitchen", 10).length, 0);
    const { sent, sink } = recordingSink();
    reply.release(sink);
    assert.equal(sent[0], `transcript ${COMMAND}`);
    assert.ok(sent[1].startsWith("reply "), "the reply text before its audio");
    assert.ok(sent.includes("audio"));
    const memoryId = result.commit!();
    assert.equal(result.commit!(), memoryId, "a second commit applies nothing again");
    assert.deepEqual(s.commands, [
      { command: "set_power", params: { target: "kitchen lights", on: true } },
    ]);
    assert.equal(s.memory.recent("kitchen", 10).length, 1);
  });
});

Deno.test("speculate: no reply ahead without replyAhead, or for an unfinished request", async () => {
  await withFullSetup(async (s) => {
    const queue = new InferenceQueue();
    const turn = receivingTurn(new Uint8Array(3200));
    assert.equal((await judged(turn, s.pipeline, queue, false)).completion, "complete");
    assert.equal(turn.speculation!.reply, undefined);
    const { pipeline } = speculatingPipeline(); // hears "set a timer for": incomplete
    const unfinished = receivingTurn(new Uint8Array(320));
    assert.equal((await judged(unfinished, pipeline, queue)).completion, "incomplete");
    assert.equal(unfinished.speculation!.reply, undefined);
  });
});

Deno.test("speculate: speech resuming discards the held reply, nothing applied or sent", async () => {
  await withFullSetup(async (s) => {
    const queue = new InferenceQueue();
    const turn = receivingTurn(new Uint8Array(3200));
    const reply = await heldReply(turn, s.pipeline, queue);
    // What `audio` does when speech resumes.
    discardSpeculation(turn);
    const result = await reply.result;
    assert.equal(s.commands.length, 0);
    assert.equal(s.memory.recent("kitchen", 10).length, 0);
    assert.equal(usableSpeculation(turn), undefined, "an end now cannot release it");
    // Discarded while running or after: a discarded reply is never released; its result is
    // cancelled if it was still running, and its commit is never called.
    assert.ok(result.cancelled || result.replyAudioMs > 0);
  });
});

Deno.test("speculate: another turn's run aborts the reply ahead (finals first)", async () => {
  await withFullSetup(async (s) => {
    const queue = new InferenceQueue();
    const turn = receivingTurn(new Uint8Array(3200));
    const reply = await heldReply(turn, s.pipeline, queue);
    await queue.run("other", () => Promise.resolve(), { device: "hall" });
    assert.ok(turn.speculation!.controller.signal.aborted, "the final turn went first");
    assert.equal(usableSpeculation(turn), undefined);
    await reply.result;
    assert.equal(s.commands.length, 0, "nothing applied");
  });
});

Deno.test("speculate: an adopted speculation is the turn's own: other runs leave it", async () => {
  await withFullSetup(async (s) => {
    const queue = new InferenceQueue();
    const turn = receivingTurn(new Uint8Array(3200));
    const reply = await heldReply(turn, s.pipeline, queue);
    usableSpeculation(turn)!.adopt();
    await queue.run("other", () => Promise.resolve(), { device: "hall" });
    assert.equal(turn.speculation!.controller.signal.aborted, false);
    assert.equal((await reply.result).cancelled, false);
  });
});

Deno.test("speculate: a cancelled turn's held reply is aborted and never committed", async () => {
  await withFullSetup(async (s) => {
    const queue = new InferenceQueue();
    const turn = receivingTurn(new Uint8Array(3200));
    const reply = await heldReply(turn, s.pipeline, queue);
    turn.controller.abort(); // `cancel` of a receiving turn
    discardSpeculation(turn);
    await reply.result;
    assert.equal(s.commands.length, 0);
    assert.equal(s.memory.recent("kitchen", 10).length, 0);
  });
});
