import assert from "node:assert/strict";
import { delay } from "../shared/async.ts";
import { FrameDecoder, type V2Message } from "../shared/frame_codec.ts";
import { V2_PROTOCOL } from "./ai_protocol.ts";
import { Turn, type TurnFailure, type TurnHandlers, type TurnLink } from "./ai_turn.ts";

/** 100 ms of int16 audio at 16 kHz. */
const TENTH = new Uint8Array(3200).fill(1);

/**
 * The turn's own small interface to its link (ai_turn.ts `TurnLink`), recording what the turn
 * wrote, decoded by the real v2 codec; `capabilities` are what the server announced.
 */
function recordingLink(capabilities: string[], responseTimeoutMs = 10_000) {
  const decoder = new FrameDecoder({ version: 2 });
  decoder.push(V2_PROTOCOL.hello()!); // a v2 stream opens with a hello
  const sent: V2Message[] = [];
  const events = { timedOut: 0, finished: 0 };
  const link: TurnLink = {
    responseTimeoutMs,
    send: (bytes) => {
      for (const item of decoder.push(bytes.slice())) {
        if (item.version === 2) sent.push(item.message);
      }
    },
    serverCan: (capability) => capabilities.includes(capability),
    responseTimedOut: () => void events.timedOut++,
    finished: () => void events.finished++,
  };
  return { link, sent, events };
}

function outcome() {
  const r = {
    audio: [] as number[],
    texts: [] as string[],
    states: [] as string[],
    ended: false,
    stages: undefined as Record<string, number> | undefined,
    failed: undefined as TurnFailure | undefined,
  };
  return {
    r,
    handlers: {
      audio: (pcm: Uint8Array) => void r.audio.push(pcm.length),
      text: (_kind: string, text: string) => void r.texts.push(text),
      state: (state: string, position?: number) => void r.states.push(`${state} ${position}`),
      end: (stages?: Record<string, number>) => {
        r.ended = true;
        r.stages = stages;
      },
      fail: (reason: TurnFailure) => void (r.failed = reason),
    },
  };
}

function turn(link: TurnLink, handlers: ReturnType<typeof outcome>["handlers"]): Turn {
  const t = new Turn(link, {
    id: "t1",
    device: "kitchen",
    rate: 16000,
    handlers,
    protocol: V2_PROTOCOL,
  });
  t.open();
  return t;
}

/** Audio bytes sent before each `pause`, and in all. */
function audioAround(sent: V2Message[]): { pauses: number[]; total: number } {
  let total = 0;
  const pauses: number[] = [];
  for (const m of sent) {
    if (m.type === "audio") total += m.pcm.length;
    if (m.type === "pause") pauses.push(total);
  }
  return { pauses, total };
}

Deno.test("pause sends the audio so far, holds what follows until resume, drops it at end", () => {
  const resumed = recordingLink(["stream", "speculate"]);
  const t = turn(resumed.link, outcome().handlers);
  t.audio(new Uint8Array(1000)); // less than a chunk: flushed by the pause
  t.pause();
  t.pause(); // once per silence stretch
  t.audio(TENTH); // held
  t.resume();
  t.audio(TENTH);
  t.end(Date.now());
  assert.deepEqual(audioAround(resumed.sent), { pauses: [1000], total: 1000 + 3200 + 3200 });
  assert.equal(resumed.sent.at(-1)?.type, "end");

  const ended = recordingLink(["stream", "speculate"]);
  const u = turn(ended.link, outcome().handlers);
  u.audio(TENTH);
  u.pause();
  u.audio(TENTH); // silence after the pause, then the end: never sent
  u.end(Date.now());
  assert.deepEqual(audioAround(ended.sent), { pauses: [3200], total: 3200 });
});

Deno.test("no pause to a server without speculate; its audio streams on", () => {
  const { link, sent } = recordingLink(["stream"]);
  const t = turn(link, outcome().handlers);
  t.audio(TENTH);
  t.pause();
  t.audio(TENTH);
  t.end(Date.now());
  assert.deepEqual(audioAround(sent), { pauses: [], total: 6400 });
});

Deno.test("the reply's text, audio and end reach the handlers with the server's stages", () => {
  const { link, events } = recordingLink(["stream"]);
  const { r, handlers } = outcome();
  const t = turn(link, handlers);
  t.end(Date.now());
  t.receive({ type: "text", kind: "transcript", text: "hello" });
  t.receive({ type: "audio", pcm: new Uint8Array(4800), rate: 24000 });
  t.receive({ type: "end", stages: { stt_ms: 1.5 } });
  assert.deepEqual(r.texts, ["hello"]);
  assert.deepEqual(r.audio, [4800]);
  assert.deepEqual(r.stages, { stt_ms: 1.5 });
  assert.equal(events.finished, 1);
});

Deno.test("queued state re-arms the response timeout; superseded ends a turn quietly", async () => {
  const { link, events } = recordingLink(["stream", "queue"], 80);
  const waited = outcome();
  const t = turn(link, waited.handlers);
  t.end(Date.now());
  // Waits three response timeouts, saying so every 40 ms, then answers.
  for (let i = 0; i < 6; i++) {
    t.receive({ type: "state", state: "queued", position: 0 });
    await delay(40);
  }
  t.receive({ type: "end" });
  assert.equal(waited.r.failed, undefined, "no timeout while the server says the turn waits");
  assert.equal(waited.r.states.length, 6);
  assert.equal(waited.r.states[0], "queued 0");

  const dropped = outcome();
  const second = turn(link, dropped.handlers);
  second.end(Date.now());
  second.receive({ type: "error", code: "superseded", message: "superseded" });
  assert.ok(second.done);
  assert.equal(dropped.r.failed, undefined, "superseded is not reported as a failure");
  assert.equal(dropped.r.ended, false);

  const silent = outcome();
  turn(link, silent.handlers).end(Date.now());
  for (let i = 0; i < 200 && silent.r.failed === undefined; i++) await delay(5);
  assert.equal(silent.r.failed, "timeout", "without states the same turn times out");
  assert.equal(events.timedOut, 1);
});

/**
 * Turn t2 of the kitchen continuing t1, whose request audio is `earlier`; `whole` as AiServers
 * decides it (undefined: opened on the earlier turn's server).
 */
function continuation(
  link: TurnLink,
  handlers: TurnHandlers,
  earlier: Uint8Array,
  whole?: boolean,
): Turn {
  return new Turn(link, {
    id: "t2",
    device: "kitchen",
    rate: 16000,
    handlers,
    protocol: V2_PROTOCOL,
    continues: { id: "t1", pcm: earlier, whole },
  });
}

/** A recording link that drops bytes until `goLive()`, as AiServers' does for a held turn. */
function heldLink(capabilities: string[]) {
  const recorded = recordingLink(capabilities);
  let live = false;
  const link: TurnLink = { ...recorded.link, send: (bytes) => live && recorded.link.send(bytes) };
  return { link, sent: recorded.sent, goLive: () => void (live = true) };
}

Deno.test("unknown_turn for a continuation sends the whole request again as one plain turn", () => {
  const { link, sent } = recordingLink(["stream", "speculate", "continue"]);
  const { r, handlers } = outcome();
  const earlier = new Uint8Array(6400).fill(7); // the provisional turn's 200 ms
  const t = continuation(link, handlers, earlier);
  t.open();
  assert.equal(t.continued, true);
  t.audio(TENTH);
  t.pause();
  // The server restarted since t1: it never saw it.
  t.receive({ type: "error", code: "unknown_turn", message: "turn t1 cannot be continued" });
  assert.equal(r.failed, undefined, "not a failure: the request goes again");
  assert.equal(t.continued, false);
  const resent = sent.slice(sent.findLastIndex((m) => m.type === "start"));
  const start = resent[0] as Extract<V2Message, { type: "start" }>;
  assert.equal(start.turn, "t2");
  assert.equal(start.continues, undefined, "a plain turn");
  // The earlier part first, then this turn's audio so far, and the pause it was in.
  assert.deepEqual(resent.map((m) => m.type), ["start", "audio", "audio", "pause"]);
  assert.deepEqual(audioAround(resent), { pauses: [6400 + 3200], total: 6400 + 3200 });
  const seqs = resent.flatMap((m) => m.type === "audio" ? [m.seq] : []);
  assert.deepEqual(seqs, [0, 1], "sequence numbers start again");
  // Errors about what was sent before the resend (its audio, its pause) are stale.
  t.receive({ type: "error", code: "unknown_turn", message: "turn t2 has no start" });
  t.receive({ type: "error", code: "unknown_turn", message: "turn t2 has no start" });
  assert.equal(r.failed, undefined);
  t.resume();
  t.audio(TENTH);
  t.end(Date.now());
  assert.equal(audioAround(sent.slice(sent.lastIndexOf(start))).total, 6400 + 2 * 3200);
  assert.equal(sent.at(-1)?.type, "end");
  t.receive({ type: "audio", pcm: new Uint8Array(4800), rate: 24000 });
  t.receive({ type: "end" });
  assert.ok(r.ended);
  assert.equal(sent.filter((m) => m.type === "start").length, 2, "sent again once");
});

Deno.test("unknown_turn for a plain turn fails it; an ended continuation is ended again", () => {
  const plain = recordingLink(["stream", "continue"]);
  const failed = outcome();
  const t = turn(plain.link, failed.handlers);
  t.end(Date.now());
  t.receive({ type: "error", code: "unknown_turn", message: "turn t1 is not receiving audio" });
  assert.equal(failed.r.failed, "server_error");

  const { link, sent } = recordingLink(["stream", "continue"]);
  const { r, handlers } = outcome();
  const u = new Turn(link, {
    id: "t3",
    device: "kitchen",
    rate: 16000,
    handlers,
    protocol: V2_PROTOCOL,
    continues: { id: "t2", pcm: TENTH },
  });
  u.open();
  u.audio(TENTH);
  u.end(Date.now());
  u.receive({ type: "error", code: "unknown_turn", message: "turn t2 cannot be continued" });
  assert.equal(r.failed, undefined);
  assert.deepEqual(sent.slice(-4).map((m) => m.type), ["start", "audio", "audio", "end"]);
});

Deno.test("a continuation held from its start and placed away from its earlier turn goes whole", () => {
  const { link, sent, goLive } = heldLink(["stream", "continue"]);
  const { r, handlers } = outcome();
  const earlier = new Uint8Array(6400).fill(7); // "set a timer for": the provisional turn's audio
  const t = continuation(link, handlers, earlier, true);
  // Held by the outage hold: suspended, never opened.
  t.suspend();
  assert.equal(t.continued, false, "the caller cancels the earlier turn itself");
  t.audio(TENTH); // "ten minutes", while the server restarts
  t.end(Date.now());
  goLive();
  t.replay();
  assert.deepEqual(sent.map((m) => m.type), ["start", "audio", "audio", "end"]);
  const start = sent[0] as Extract<V2Message, { type: "start" }>;
  assert.equal(start.continues, undefined, "one plain turn: the server may not know t1");
  assert.equal(audioAround(sent).total, 6400 + 3200, "both parts");
  const audio = sent.filter((m) => m.type === "audio");
  assert.deepEqual(audio.map((m) => m.pcm[0]), [7, 1], "the earlier part first");
  t.receive({ type: "end" });
  assert.ok(r.ended);
});

Deno.test("a continuation held from its start, back on its earlier turn's server, names it", () => {
  const { link, sent, goLive } = heldLink(["stream", "continue"]);
  const { r, handlers } = outcome();
  const t = continuation(link, handlers, new Uint8Array(6400).fill(7), false);
  t.suspend();
  t.audio(TENTH);
  t.end(Date.now());
  goLive();
  t.replay();
  const start = sent[0] as Extract<V2Message, { type: "start" }>;
  assert.equal(start.continues, "t1", "the server kept t1 uncommitted for the reconnected gateway");
  assert.equal(audioAround(sent).total, 3200, "only its own audio: the server holds t1's");
  assert.equal(t.continued, true);
  // A server that lost t1 (it restarted) says so: the whole request goes out once.
  sent.length = 0;
  t.receive({ type: "error", code: "unknown_turn", message: "turn t1 cannot be continued" });
  assert.equal((sent[0] as Extract<V2Message, { type: "start" }>).continues, undefined);
  assert.equal(audioAround(sent).total, 6400 + 3200, "both parts");
  t.receive({ type: "end" });
  assert.ok(r.ended);
});

Deno.test("a continuation placed away from its earlier turn's server opens whole", () => {
  const { link, sent } = recordingLink(["stream", "continue"]);
  const t = continuation(link, outcome().handlers, new Uint8Array(6400).fill(7), true);
  t.open();
  assert.equal(t.continued, false, "the earlier turn is cancelled by the caller");
  t.audio(TENTH);
  t.end(Date.now());
  const start = sent[0] as Extract<V2Message, { type: "start" }>;
  assert.equal(start.continues, undefined);
  assert.equal(audioAround(sent).total, 6400 + 3200);
});
