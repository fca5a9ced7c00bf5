import assert from "node:assert/strict";
import { encodeV2, FrameDecoder, type V2Message } from "../shared/frame_codec.ts";
import { type TurnOutput, V1_PROTOCOL, V2_PROTOCOL } from "./ai_protocol.ts";

const turn = { id: "t1", device: "kitchen", rate: 16000 as const };

/** Everything a writer sent, decoded by the real frame codec. */
function output(version: 1 | 2, capabilities: string[] = ["cancel", "speculate"]) {
  const bytes: Uint8Array[] = [];
  const out: TurnOutput = {
    send: (b) => bytes.push(b.slice()),
    serverCan: (capability) => capabilities.includes(capability),
  };
  const decoder = new FrameDecoder({ version });
  if (version === 2) decoder.push(V2_PROTOCOL.hello()!); // a v2 stream opens with a hello
  return {
    out,
    decoded: () => bytes.splice(0).flatMap((b) => decoder.push(b)),
    v2: () =>
      bytes.splice(0).flatMap((b) => decoder.push(b)).map((d) =>
        d.version === 2 ? d.message : undefined
      ) as V2Message[],
  };
}

Deno.test("v2 writer: start, audio in 100 ms chunks with seq, pause, end, cancel", () => {
  const o = output(2);
  const w = V2_PROTOCOL.writer(turn, o.out);
  w.open(5);
  w.audio(new Uint8Array(3200 + 1000)); // one chunk and a bit
  w.pause(); // flushes the bit
  w.end(42);
  w.cancel(123.4);
  const m = o.v2();
  assert.deepEqual(m.map((x) => x.type), ["start", "audio", "audio", "pause", "end", "cancel"]);
  assert.deepEqual(m.map((x) => x.type === "audio" ? [x.seq, x.pcm.length] : []).flat(), [
    0,
    3200,
    1,
    1000,
  ]);
  assert.equal(m[4].type === "end" && m[4].ts, 42);
  assert.equal(m[5].type === "cancel" && m[5].played_ms, 123);
});

Deno.test("v2 writer: no pause or cancel to a server without them", () => {
  const o = output(2, []);
  const w = V2_PROTOCOL.writer(turn, o.out);
  assert.equal(w.pause(), false);
  w.cancel(10);
  assert.deepEqual(o.v2(), []);
});

Deno.test("v2 writer: a replay sends start, everything so far as one chunk, and pause", () => {
  const o = output(2);
  const w = V2_PROTOCOL.writer(turn, o.out);
  w.open(1);
  w.audio(new Uint8Array(6400));
  o.v2();
  w.replay(1, true, true);
  const m = o.v2();
  assert.deepEqual(m.map((x) => x.type), ["start", "audio", "pause"]);
  assert.ok(m[1].type === "audio" && m[1].seq === 0 && m[1].pcm.length === 6400);
  w.audio(new Uint8Array(3200)); // still copied: another replay may come
  w.replay(1, false, false);
  const last = o.v2().filter((x) => x.type === "audio");
  assert.ok(last[1]?.type === "audio" && last[1].pcm.length === 9600, "everything, again");
  w.replay(1, false, false);
  assert.deepEqual(o.v2().map((x) => x.type), ["start"], "the copy went with the last replay");

  const started = output(2);
  const replied = V2_PROTOCOL.writer(turn, started.out);
  replied.audio(new Uint8Array(3200));
  replied.replyStarted();
  replied.audio(new Uint8Array(3200));
  replied.replay(1, false, false);
  const again = started.v2().filter((x) => x.type === "audio");
  assert.equal(again.length, 2, "no copy once the reply started: nothing to replay");
});

Deno.test("v1 writer: nothing until the end, then the whole utterance as one frame", () => {
  const o = output(1);
  const w = V1_PROTOCOL.writer(turn, o.out);
  w.open(1);
  w.audio(new Uint8Array(3200).fill(1));
  w.audio(new Uint8Array(1000).fill(2));
  w.flush();
  assert.equal(w.pause(), false);
  w.cancel(5);
  assert.deepEqual(o.decoded(), []);
  w.end(9);
  const [item] = o.decoded();
  assert.ok(item.version === 1);
  assert.equal(item.frame.request, "t1");
  assert.equal(item.frame.pcm.length, 4200);
  assert.equal(item.frame.pcm[4199], 2);
});

Deno.test("routing: v1 response frames become audio then end; v2 messages by kind", () => {
  const audio = V1_PROTOCOL.route({
    version: 1,
    frame: { device: "kitchen", rate: 24000, request: "t1", pcm: new Uint8Array(4) },
  });
  assert.deepEqual(audio.kind === "turn" && audio.replies.map((r) => r.type), ["audio", "end"]);
  const empty = V1_PROTOCOL.route({
    version: 1,
    frame: { device: "kitchen", rate: 24000, request: "t1", pcm: new Uint8Array(0) },
  });
  assert.deepEqual(empty.kind === "turn" && empty.replies.map((r) => r.type), ["end"]);
  const route = (message: V2Message) => V2_PROTOCOL.route({ version: 2, message });
  assert.equal(route({ type: "ping", id: 3, ts: 0 }).kind, "ping");
  assert.equal(route({ type: "error", code: "x", message: "y", ts: 0 }).kind, "error");
  assert.equal(route({ type: "error", turn: "t1", code: "x", message: "y", ts: 0 }).kind, "turn");
  assert.equal(route({ type: "end", turn: "t1", ts: 0 }).kind, "turn");
  assert.equal(route({ type: "pause", turn: "t1", ts: 0 }).kind, "unexpected");
});

Deno.test("v2 writer: a continuation names the earlier turn to a server with continue, commits", () => {
  const o = output(2, ["cancel", "continue"]);
  const continues = { id: "t0", pcm: new Uint8Array(640) };
  const w = V2_PROTOCOL.writer({ ...turn, continues }, o.out);
  w.open(5);
  assert.equal(w.continued, true);
  w.audio(new Uint8Array(3200));
  w.end(42);
  w.commit();
  const m = o.v2();
  assert.deepEqual(m.map((x) => x.type), ["start", "audio", "end", "commit"]);
  assert.ok(m[0].type === "start" && m[0].continues === "t0");
  assert.ok(m[1].type === "audio" && m[1].pcm.length === 3200, "the earlier audio is not resent");
});

Deno.test("v2 writer: without continue the merged request goes out as one plain turn", () => {
  const o = output(2, ["cancel"]);
  const continues = { id: "t0", pcm: new Uint8Array(3200).fill(7) };
  const w = V2_PROTOCOL.writer({ ...turn, continues }, o.out);
  w.open(5);
  assert.equal(w.continued, false);
  w.audio(new Uint8Array(3200));
  w.flush();
  w.commit(); // nothing to a server without continue
  const m = o.v2();
  assert.deepEqual(m.map((x) => x.type), ["start", "audio", "audio"]);
  assert.ok(m[0].type === "start" && m[0].continues === undefined);
  assert.ok(m[1].type === "audio" && m[1].pcm[0] === 7, "the earlier part first");
});

Deno.test("v1 writer: a continuation is one frame with the earlier part first", () => {
  const o = output(1);
  const continues = { id: "t0", pcm: new Uint8Array([1, 0, 2, 0]) };
  const w = V1_PROTOCOL.writer({ ...turn, continues }, o.out);
  w.open(5);
  w.audio(new Uint8Array([3, 0]));
  w.end(42);
  const [frame] = o.decoded();
  assert.ok(frame.version === 1);
  assert.deepEqual([...frame.frame.pcm], [1, 0, 2, 0, 3, 0]);
});

Deno.test("v2 route: eot and state are replies of their turn", () => {
  const decoder = new FrameDecoder({ version: 2 });
  const hello = encodeV2({
    type: "hello",
    version: 2,
    role: "server",
    capabilities: [],
    ts: 1,
  });
  const eot = encodeV2({
    type: "eot",
    turn: "t1",
    completion: "incomplete",
    silence_ms: 1200,
    ts: 2,
  });
  const state = encodeV2({
    type: "state",
    turn: "t1",
    state: "queued",
    position: 2,
    wait_ms: 900,
    ts: 3,
  });
  const [, a, b] = [hello, eot, state].flatMap((bytes) => decoder.push(bytes));
  assert.deepEqual(V2_PROTOCOL.route(a), {
    kind: "turn",
    turn: "t1",
    replies: [{ type: "eot", completion: "incomplete", silenceMs: 1200 }],
  });
  assert.deepEqual(V2_PROTOCOL.route(b), {
    kind: "turn",
    turn: "t1",
    replies: [{ type: "state", state: "queued", position: 2, waitMs: 900 }],
  });
});
