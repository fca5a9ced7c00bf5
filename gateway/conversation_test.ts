/**
 * Every transition of a turn in {@link Conversation}: the AI link is a small fake of the
 * conversation's own `TurnSource` interface (the cross-process tests use the real client), the
 * playback is the real {@link PlaybackQueue}, ticked by hand instead of by the clock.
 */
import assert from "node:assert/strict";
import { float32ToPcm } from "../shared/audio.ts";
import type { SampleRate } from "../shared/frame_codec.ts";
import { createLogger } from "../shared/log.ts";
import { type DeviceEvent, MAX_TEXT_CHARS } from "../shared/messages.ts";
import type { TurnHandlers } from "./ai_turn.ts";
import { Conversation } from "./conversation.ts";
import type { ConversationTurn, TurnSource } from "./conversation_parts.ts";
import { PlaybackQueue } from "./playback.ts";

const log = createLogger("test.conversation", { level: "error" });
/** 20 ms of reply audio at 48 kHz, as int16 bytes. */
const FRAME_PCM = float32ToPcm(new Float32Array(960).fill(0.25));

/** A turn as the conversation sees it, recording what it is told; `handlers` drive its reply. */
class FakeTurn implements ConversationTurn {
  readonly calls: string[] = [];
  done = false;
  ended = false;
  endWrittenAt: number | undefined;
  constructor(
    readonly id: string,
    readonly handlers: TurnHandlers,
    readonly continues?: string,
  ) {}
  audio(pcm: Uint8Array): void {
    this.calls.push(`audio ${pcm.length}`);
  }
  pause(): void {
    this.calls.push("pause");
  }
  resume(): void {
    this.calls.push("resume");
  }
  end(lastSpeechAt: number): void {
    this.calls.push(`end ${lastSpeechAt}`);
    this.ended = true;
    this.endWrittenAt = Date.now();
  }
  cancel(playedMs: number): void {
    this.calls.push(`cancel ${playedMs}`);
    this.done = true;
  }
  continued = false;
  commit(): void {
    this.calls.push("commit");
  }
  supersede(nextContinued: boolean): void {
    this.calls.push(`supersede ${nextContinued}`);
    this.done = true;
  }
  /** The server's side: reply audio, then the end. */
  reply(frames: number, stages?: Record<string, number>): void {
    for (let i = 0; i < frames; i++) this.handlers.audio?.(FRAME_PCM, 48000);
    this.done = true;
    this.handlers.end(stages);
  }
}

/** A conversation with its playback queue and what it published. */
function setup(
  options: {
    connected?: boolean;
    graceMs?: number;
    continueMaxMs?: number;
    silenceMs?: number;
    incompleteMaxMs?: number;
  } = {},
) {
  const turns: FakeTurn[] = [];
  const ai: TurnSource = {
    connected: options.connected ?? true,
    startTurn(
      _device: string,
      _rate: SampleRate,
      handlers: TurnHandlers,
      options?: { continues?: FakeTurn },
    ) {
      const turn = new FakeTurn(`t${turns.length + 1}`, handlers, options?.continues?.id);
      turns.push(turn);
      return turn;
    },
  };
  const sent: number[] = [];
  const playback = new PlaybackQueue({ send: (frame) => sent.push(frame[0]) });
  const events: DeviceEvent[] = [];
  let wakes = 0;
  const conversation = new Conversation({
    device: "kitchen",
    sessionId: "s1",
    ai,
    sampleRate: 16000,
    playback,
    wake: () => void wakes++,
    publish: (event) => events.push(event),
    log,
    turnTaking: {
      graceMs: options.graceMs,
      continueMaxMs: options.continueMaxMs,
      silenceMs: options.silenceMs,
      incompleteMaxMs: options.incompleteMaxMs,
    },
  });
  /** Ticks the playback queue until it has nothing left. */
  const play = (max = 1000) => {
    for (let i = 0; i < max && playback.tick(); i++);
  };
  return {
    conversation,
    playback,
    turns,
    sent,
    events,
    play,
    wakes: () => wakes,
    states: () => events.filter((e) => e.type === "state").map((e) => e.state),
    of: <T extends DeviceEvent["type"]>(type: T) =>
      events.filter((e) => e.type === type) as Extract<DeviceEvent, { type: T }>[],
  };
}

Deno.test("a turn goes listening → user_speaking → thinking → replying → listening", () => {
  // No continuation grace: the turn is final at its first reply packet (the grace: below).
  const c = setup({ graceMs: 0 });
  assert.equal(c.conversation.state, "listening");
  c.conversation.utteranceStart(1000);
  assert.equal(c.conversation.state, "user_speaking");
  const [turn] = c.turns;
  c.conversation.utteranceAudio(new Float32Array(320));
  c.conversation.utterancePause();
  c.conversation.utteranceResume();
  c.conversation.utteranceEnd("silence", 2000);
  c.conversation.utteranceEnd("silence", 2100); // a second end is ignored
  assert.deepEqual(turn.calls, ["audio 640", "pause", "resume", "end 2000"]);
  assert.equal(c.conversation.state, "thinking");
  turn.handlers.text?.("transcript", "what time is it");
  turn.handlers.text?.("reply", "It is");
  turn.handlers.text?.("reply", "noon.");
  turn.handlers.audio?.(FRAME_PCM, 48000);
  assert.equal(c.conversation.state, "replying");
  assert.ok(c.conversation.replyPlaying, "the echo guard is on while the reply plays");
  assert.equal(c.wakes(), 1, "the playback clock is woken");
  turn.handlers.audio?.(FRAME_PCM, 48000);
  turn.handlers.end({ stt_ms: 12, first_audio_ms: 30 });
  assert.equal(c.of("turn").length, 0, "the turn closes when its audio was played, not before");
  c.play();
  assert.equal(c.sent.length, 2);
  assert.equal(c.conversation.replyPlaying, false);
  assert.deepEqual(c.states(), ["user_speaking", "thinking", "replying", "listening"]);
  const [done] = c.of("turn");
  assert.equal(done.turn, "t1");
  assert.equal(done.played_ms, 40);
  assert.equal(done.transcript, "what time is it");
  assert.equal(done.reply, "It is noon.");
  assert.equal(done.latency_ms?.stt_ms, 12, "the server's stages are reported");
  assert.ok(done.latency_ms!.end_detect_ms >= 0);
  assert.ok(done.latency_ms!.first_reply_packet_ms >= 0);
  assert.ok(done.latency_ms!.transport_ms >= 0);
  assert.equal(c.conversation.stats.turns, 1);
  assert.equal(c.conversation.stats.latencies.length, 1, "latency from the first sent frame");
  assert.equal(c.of("interrupted").length, 0);
});

Deno.test("a reply with no audio ends the turn at once with played_ms 0", () => {
  const c = setup();
  c.conversation.utteranceStart(0);
  c.conversation.utteranceEnd("max_length", 10);
  c.turns[0].reply(0);
  assert.deepEqual(c.states(), ["user_speaking", "thinking", "listening"]);
  assert.equal(c.of("turn")[0].played_ms, 0);
  assert.equal(c.sent.length, 0);
});

Deno.test("barge-in while the reply is awaited past the continuation window cancels with played_ms 0", async () => {
  const c = setup({ continueMaxMs: 0 });
  c.conversation.utteranceStart(0);
  c.conversation.utteranceEnd("silence", 10);
  await new Promise((resolve) => setTimeout(resolve, 5));
  c.conversation.utteranceStart(Date.now());
  const [first, second] = c.turns;
  assert.deepEqual(first.calls.at(-1), "cancel 0");
  const [interrupted] = c.of("interrupted");
  assert.equal(interrupted.turn, first.id);
  assert.equal(interrupted.played_ms, 0);
  assert.equal(c.conversation.stats.interruptions, 1);
  assert.equal(c.conversation.state, "user_speaking");
  assert.ok(second, "the new utterance opened a new turn");
  assert.deepEqual(c.states(), ["user_speaking", "thinking", "user_speaking"]);
});

Deno.test("barge-in over a playing reply after the grace flushes it at once and reports what was heard", () => {
  const c = setup({ graceMs: 0 });
  c.conversation.utteranceStart(0);
  c.conversation.utteranceEnd("silence", 10);
  const [turn] = c.turns;
  turn.reply(10);
  c.playback.tick();
  c.playback.tick();
  c.playback.tick();
  c.conversation.utteranceStart(100);
  assert.equal(c.playback.playing, false, "nothing more of the reply is queued");
  assert.equal(c.conversation.replyPlaying, false);
  assert.deepEqual(turn.calls.slice(-2), ["commit", "cancel 60"]);
  assert.equal(c.of("interrupted")[0].played_ms, 60);
  c.play();
  assert.equal(c.sent.length, 3, "not one frame after the barge-in");
  assert.equal(c.of("turn").length, 0, "an interrupted turn is no completed turn");
});

Deno.test("late audio of a cancelled turn is dropped", async () => {
  const c = setup({ continueMaxMs: 0 });
  c.conversation.utteranceStart(0);
  c.conversation.utteranceEnd("silence", 10);
  const [old] = c.turns;
  await new Promise((resolve) => setTimeout(resolve, 5));
  c.conversation.utteranceStart(Date.now()); // barge-in
  old.handlers.audio?.(FRAME_PCM, 48000);
  old.handlers.text?.("reply", "late");
  old.handlers.end();
  old.handlers.fail("timeout", "late");
  assert.equal(c.playback.playing, false);
  assert.equal(c.conversation.state, "user_speaking");
  assert.equal(c.of("turn").length + c.of("timeout").length + c.of("error").length, 0);
});

Deno.test("speech after a finished turn is a new turn, not a barge-in", () => {
  const c = setup();
  c.conversation.utteranceStart(0);
  c.conversation.utteranceEnd("silence", 10);
  c.turns[0].reply(1);
  c.play();
  c.conversation.utteranceStart(50);
  assert.equal(c.of("interrupted").length, 0);
  assert.equal(c.turns[0].calls.filter((call) => call.startsWith("cancel")).length, 0);
  assert.equal(c.turns.length, 2);
});

Deno.test("a timeout is reported on the events topic and the device listens again", () => {
  const c = setup();
  c.conversation.utteranceStart(0);
  c.conversation.utteranceEnd("silence", 10);
  c.turns[0].handlers.fail("timeout", "no response from the AI server within 10000 ms");
  const [timeout] = c.of("timeout");
  assert.equal(timeout.turn, "t1");
  assert.match(timeout.message ?? "", /no response/);
  assert.equal(c.conversation.stats.timeouts, 1);
  assert.equal(c.conversation.state, "listening");
  c.conversation.utteranceStart(20);
  assert.equal(c.of("interrupted").length, 0, "a failed turn is not interrupted");
});

Deno.test("a server error or a server gone is an error event naming the reason", () => {
  for (const reason of ["server_error", "disconnected", "unavailable"] as const) {
    const c = setup();
    c.conversation.utteranceStart(0);
    c.conversation.utteranceEnd("silence", 10);
    c.turns[0].handlers.fail(reason, "it went away");
    const [error] = c.of("error");
    assert.equal(error.message, `${reason}: it went away`);
    assert.equal(c.conversation.stats.errors, 1);
    assert.deepEqual(c.states(), ["user_speaking", "thinking", "listening"]);
  }
});

Deno.test("a turn that fails mid-reply plays what came, then closes", () => {
  const c = setup();
  c.conversation.utteranceStart(0);
  c.conversation.utteranceEnd("silence", 10);
  const [turn] = c.turns;
  turn.handlers.audio?.(FRAME_PCM, 48000);
  turn.handlers.fail("disconnected", "connection lost");
  assert.equal(c.of("error").length, 1);
  assert.equal(c.conversation.state, "replying", "what came still plays");
  c.play();
  assert.equal(c.sent.length, 1);
  assert.equal(c.of("turn")[0].played_ms, 20);
  assert.equal(c.conversation.state, "listening");
});

Deno.test("a turn that fails before the utterance ended returns to listening", () => {
  const c = setup();
  c.conversation.utteranceStart(0);
  const [turn] = c.turns;
  turn.done = true;
  turn.handlers.fail("unavailable", "the AI server is not connected");
  c.conversation.utteranceAudio(new Float32Array(1)); // the input goes on; nobody is listening
  c.conversation.utteranceEnd("silence", 10);
  assert.equal(c.conversation.state, "listening");
  assert.deepEqual(turn.calls, [], "nothing more goes to a failed turn");
});

Deno.test("a drain of another turn stops the echo guard but completes nothing", () => {
  const c = setup();
  c.conversation.utteranceStart(0);
  c.conversation.drained("other", 20);
  assert.equal(c.conversation.replyPlaying, false);
  assert.equal(c.conversation.state, "user_speaking");
  assert.equal(c.of("turn").length, 0);
});

Deno.test("close flushes playback and cancels the open turn with what was played", () => {
  const c = setup();
  c.conversation.utteranceStart(0);
  c.conversation.utteranceEnd("silence", 10);
  for (let i = 0; i < 5; i++) c.turns[0].handlers.audio?.(FRAME_PCM, 48000); // still streaming
  c.playback.tick();
  c.conversation.close();
  c.conversation.close();
  assert.deepEqual(c.turns[0].calls.filter((call) => call.startsWith("cancel")), ["cancel 20"]);
  assert.equal(c.playback.playing, false);
  c.conversation.utteranceStart(50);
  assert.equal(c.turns.length, 1, "a closed conversation opens no turn");
});

Deno.test("close cancels a turn still awaited; a finished one is left alone", () => {
  const awaited = setup();
  awaited.conversation.utteranceStart(0);
  awaited.conversation.close();
  assert.deepEqual(awaited.turns[0].calls, ["cancel 0"]);
  const finished = setup();
  finished.conversation.utteranceStart(0);
  finished.conversation.utteranceEnd("silence", 10);
  finished.turns[0].reply(0);
  finished.conversation.close();
  assert.deepEqual(finished.turns[0].calls, ["end 10", "commit"], "committed once, not cancelled");
});

Deno.test("announce opens an empty turn only when idle and connected", () => {
  const c = setup();
  assert.equal(c.conversation.announce(), true);
  assert.deepEqual(c.turns[0].calls.map((call) => call.split(" ")[0]), ["end"]);
  assert.equal(c.conversation.state, "thinking");
  assert.equal(c.conversation.announce(), false, "a turn is in progress");
  c.turns[0].reply(1);
  c.play();
  assert.equal(c.conversation.state, "listening");
  assert.equal(c.of("turn")[0].played_ms, 20);
  assert.deepEqual(c.turns[0].calls.slice(-1), ["commit"], "final once its reply played");
  assert.equal(setup({ connected: false }).conversation.announce(), false, "server away");
  const closed = setup();
  closed.conversation.close();
  assert.equal(closed.conversation.announce(), false);
});

Deno.test("the reply text is cut at MAX_TEXT_CHARS in the turn event", () => {
  const c = setup();
  c.conversation.utteranceStart(0);
  c.conversation.utteranceEnd("silence", 10);
  c.turns[0].handlers.text?.("transcript", "x".repeat(MAX_TEXT_CHARS + 10));
  c.turns[0].handlers.text?.("reply", "y".repeat(MAX_TEXT_CHARS + 10));
  c.turns[0].reply(0);
  const [turn] = c.of("turn");
  assert.equal(turn.transcript?.length, MAX_TEXT_CHARS);
  assert.equal(turn.reply?.length, MAX_TEXT_CHARS);
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("speech within the grace continues the request: the reply stops, no barge-in", () => {
  const c = setup({ graceMs: 60_000 });
  const t0 = Date.now();
  c.conversation.utteranceStart(t0 - 1000);
  c.conversation.utteranceEnd("silence", t0 - 300);
  const [first] = c.turns;
  for (let i = 0; i < 10; i++) first.handlers.audio?.(FRAME_PCM, 48000);
  c.playback.tick();
  c.conversation.utteranceStart(Date.now());
  const [, second] = c.turns;
  assert.equal(second.continues, first.id, "the new turn continues the provisional one");
  assert.deepEqual(first.calls.slice(-1), ["supersede false"]);
  assert.ok(!first.calls.some((call) => call.startsWith("cancel") || call === "commit"));
  assert.equal(c.playback.playing, false, "the provisional reply stopped");
  assert.equal(c.of("interrupted").length, 0, "a continuation is no barge-in");
  assert.equal(c.conversation.stats.interruptions, 0);
  assert.equal(c.conversation.stats.continuations, 1);
  assert.equal(c.conversation.state, "user_speaking");
  // Late reply audio of the superseded turn is not played.
  first.handlers.audio?.(FRAME_PCM, 48000);
  assert.equal(c.playback.playing, false);
});

Deno.test("speech while the server still thinks continues the request", () => {
  const c = setup();
  const t0 = Date.now();
  c.conversation.utteranceStart(t0 - 800);
  c.conversation.utteranceEnd("silence", t0 - 300);
  c.conversation.utteranceStart(t0 + 200);
  const [first, second] = c.turns;
  assert.equal(second.continues, first.id);
  assert.equal(c.of("interrupted").length, 0);
  assert.deepEqual(c.states(), ["user_speaking", "thinking", "user_speaking"]);
});

Deno.test("the grace passing commits the turn; speech after it is a barge-in", async () => {
  const c = setup({ graceMs: 30 });
  const t0 = Date.now();
  c.conversation.utteranceStart(t0 - 500);
  c.conversation.utteranceEnd("silence", t0 - 300);
  const [turn] = c.turns;
  for (let i = 0; i < 50; i++) turn.handlers.audio?.(FRAME_PCM, 48000);
  c.playback.tick();
  assert.ok(!turn.calls.includes("commit"), "not final within the grace");
  await sleep(60);
  assert.deepEqual(turn.calls.filter((call) => call === "commit"), ["commit"]);
  c.playback.tick();
  c.conversation.utteranceStart(Date.now());
  assert.deepEqual(turn.calls.at(-1), "cancel 40");
  assert.equal(c.turns[1].continues, undefined, "a barge-in opens a plain turn");
  assert.equal(c.of("interrupted")[0].played_ms, 40);
});

Deno.test("a reply without audio commits at once", () => {
  const c = setup();
  c.conversation.utteranceStart(Date.now());
  c.conversation.utteranceEnd("silence", Date.now());
  c.turns[0].reply(0);
  assert.deepEqual(c.turns[0].calls.slice(-1), ["commit"]);
  assert.equal(c.conversation.state, "listening");
});

Deno.test("eot complete ends the turn before the silence window; resumed speech continues it", async () => {
  const c = setup();
  const t0 = Date.now();
  c.conversation.utteranceStart(t0 - 1000);
  c.conversation.utteranceAudio(new Float32Array(320));
  c.conversation.utterancePause(); // last speech 100 ms ago
  const [turn] = c.turns;
  assert.deepEqual(turn.calls, ["audio 640", "pause"]);
  turn.handlers.eot?.("complete", 120);
  await sleep(60); // 120 ms after the last speech: ended on the hint
  assert.match(turn.calls.at(-1)!, /^end \d+$/, "ended on the hint");
  assert.equal(c.conversation.state, "thinking");
  // The segmenter still runs: its frames are kept as the onset of a resumption.
  c.conversation.utteranceAudio(new Float32Array(320).fill(0.5));
  c.conversation.utteranceEnd("silence", Date.now() - 300); // its own window: ignored
  assert.equal(turn.calls.filter((call) => call.startsWith("end")).length, 1);
  c.conversation.utteranceResume();
  const [, next] = c.turns;
  assert.equal(next.continues, turn.id);
  assert.deepEqual(next.calls, ["audio 640"], "the onset after the early end goes first");
  c.conversation.close();
});

Deno.test("eot incomplete holds the end; speech that comes back stays in the same turn", async () => {
  const c = setup({ silenceMs: 120, incompleteMaxMs: 250 });
  const t0 = Date.now();
  c.conversation.utteranceStart(t0 - 500);
  c.conversation.utterancePause();
  const [turn] = c.turns;
  turn.handlers.eot?.("incomplete", 1200);
  c.conversation.utteranceEnd("silence", t0 - 100);
  assert.ok(!turn.calls.some((call) => call.startsWith("end")), "the hint holds the end");
  c.conversation.utteranceStart(Date.now());
  assert.equal(c.turns.length, 1, "the same turn goes on");
  assert.equal(turn.calls.at(-1), "resume");
  assert.equal(c.conversation.state, "user_speaking");
  // Quiet again, with no hint this time: the window (120 ms) ends it.
  c.conversation.utterancePause();
  c.conversation.utteranceEnd("silence", Date.now() - 100);
  assert.ok(turn.calls.at(-1)!.startsWith("end"));
  // And an incomplete hint with no more speech ends the turn on the clock.
  const d = setup({ silenceMs: 120, incompleteMaxMs: 250 });
  d.conversation.utteranceStart(Date.now() - 500);
  d.conversation.utterancePause();
  d.turns[0].handlers.eot?.("incomplete", 1200);
  d.conversation.utteranceEnd("silence", Date.now() - 100);
  assert.ok(!d.turns[0].calls.some((call) => call.startsWith("end")));
  await sleep(300);
  assert.ok(d.turns[0].calls.at(-1)!.startsWith("end"), JSON.stringify(d.turns[0].calls));
  d.conversation.close();
});

Deno.test("a queued turn shows as waiting, then thinking once it runs", () => {
  const c = setup();
  c.conversation.utteranceStart(Date.now());
  c.conversation.utteranceEnd("silence", Date.now());
  const [turn] = c.turns;
  turn.handlers.state?.("queued", 2, 1800);
  turn.handlers.state?.("queued", 1, 900);
  turn.handlers.state?.("running");
  const waiting = c.of("state").filter((e) => e.state === "waiting");
  assert.deepEqual(
    waiting.map((e) => [e.position, e.wait_ms]),
    [[2, 1800], [1, 900]],
  );
  assert.equal(c.conversation.state, "thinking");
});

Deno.test("an overload apology plays before the busy error closes the turn", () => {
  const c = setup();
  c.conversation.utteranceStart(Date.now());
  c.conversation.utteranceEnd("silence", Date.now());
  const [turn] = c.turns;
  turn.handlers.audio?.(FRAME_PCM, 48000);
  turn.handlers.audio?.(FRAME_PCM, 48000);
  turn.done = true;
  turn.handlers.fail("server_error", "busy: overloaded");
  c.play();
  assert.equal(c.sent.length, 2, "the apology was played");
  assert.equal(c.of("error").length, 1);
  assert.equal(c.conversation.state, "listening");
});

Deno.test("a short reply drained within the grace, then continued: one turn event, the whole one", async () => {
  const c = setup({ graceMs: 60_000 });
  const t0 = Date.now();
  c.conversation.utteranceStart(t0 - 1000);
  c.conversation.utteranceEnd("silence", t0 - 300);
  const [first] = c.turns;
  first.handlers.text?.("transcript", "what time is it");
  first.reply(3);
  c.play();
  assert.equal(c.conversation.state, "listening", "the device listens again");
  assert.equal(c.of("turn").length, 0, "the provisional turn is not closed while continuable");
  // "... in London": within the grace, the request goes on.
  c.conversation.utteranceStart(Date.now());
  const [, second] = c.turns;
  assert.equal(second.continues, first.id);
  second.handlers.text?.("transcript", "what time is it in London");
  c.conversation.utteranceEnd("silence", Date.now());
  second.reply(2);
  c.play();
  assert.deepEqual(c.of("turn").map((e) => e.turn), [], "t2 is still continuable");
  // A turn that is not continued closes once its grace is over.
  const d = setup({ graceMs: 30 });
  d.conversation.utteranceStart(Date.now() - 1000);
  d.conversation.utteranceEnd("silence", Date.now() - 300);
  d.turns[0].reply(2);
  d.play();
  assert.equal(d.of("turn").length, 0);
  await sleep(60);
  assert.deepEqual(d.of("turn").map((e) => e.turn), ["t1"], "closed at its commit");
  assert.equal(d.of("turn")[0].played_ms, 40);
  d.conversation.close();
  c.conversation.close();
  assert.deepEqual(c.of("turn").map((e) => e.turn), ["t2"], "closing commits and closes t2");
});

Deno.test("a stall of the device's packets after a pause does not end the turn on the wall clock", async () => {
  const c = setup();
  c.conversation.utteranceStart(Date.now() - 1000);
  c.conversation.utterancePause();
  // No frame comes for 400 ms (Wi-Fi holds them), longer than the 300 ms window.
  await sleep(400);
  const [turn] = c.turns;
  assert.ok(!turn.calls.some((call) => call.startsWith("end")), turn.calls.join(", "));
  assert.equal(c.conversation.state, "user_speaking");
  // The held packets come: speech goes on in the same turn; the segmenter's window ends it.
  c.conversation.utteranceResume();
  c.conversation.utteranceEnd("silence", Date.now());
  assert.equal(turn.calls.filter((call) => call.startsWith("end")).length, 1);
  assert.equal(c.turns.length, 1, "one turn");
});
