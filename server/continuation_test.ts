/**
 * Continuation, end-of-turn hints and staged side effects (docs/protocol.md "Continuing a turn",
 * "Ending a turn sooner or later") through the real audio socket, the real FullPipeline,
 * assistant (SQLite memory, timer service) and espeak-ng TTS. The only stand-in is the STT, an
 * implementation of the SpeechToText interface that reads phrases out of the audio it gets
 * (each phrase is a run of one constant sample value): so what the server transcribes is what
 * it received, merged or not, without Whisper weights.
 */
import assert from "node:assert/strict";
import { V2Client } from "../scripts/lib/audio_socket_clients.ts";
import type { V2Message } from "../shared/frame_codec.ts";
import { testAssistant } from "./assistant/testing.ts";
import { withServer } from "./audio_socket_testing.ts";
import type { AudioSocketServer } from "./audio_socket.ts";
import { FullPipeline } from "./pipeline.ts";
import type { SpeechToText } from "./stt/types.ts";
import { EspeakTts } from "./tts/espeak.ts";

/** The phrases the test audio can carry; phrase k is int16 samples of value k × STEP. */
const PHRASES = [
  "",
  "turn on the kitchen lights",
  "and set a timer for five minutes",
  "set a timer for",
  "what time is it",
];
const STEP = 1000;
const RATE = 16000;
const CAPABILITIES = ["stream", "cancel", "text", "stages", "speculate", "continue", "eot"];

/** `ms` of audio saying phrase `k` (int16 LE at 16 kHz). */
function phraseAudio(k: number, ms: number): Uint8Array {
  const samples = new Int16Array((RATE * ms) / 1000).fill(k * STEP);
  return new Uint8Array(samples.buffer);
}

/** Reads the phrases out of the audio, in order (see the module doc). */
function phraseStt(): SpeechToText & { heard: string[] } {
  const heard: string[] = [];
  return {
    heard,
    transcribe(samples) {
      const said: string[] = [];
      let last = 0;
      for (const sample of samples) {
        const k = Math.round((sample * 32768) / STEP);
        if (k !== last && k > 0 && k < PHRASES.length) said.push(PHRASES[k]);
        last = k;
      }
      const text = said.join(" ");
      heard.push(text);
      return Promise.resolve({
        text,
        timings: { frontend_ms: 0, encoder_ms: 0, decoder_ms: 0, tokens: 0 },
      });
    },
  };
}

/** A full pipeline with its memory, timers and the device commands it published. */
function setup() {
  const real = testAssistant();
  const stt = phraseStt();
  const pipeline = new FullPipeline({ stt, assistant: real.assistant, tts: new EspeakTts() });
  return { ...real, stt, pipeline };
}

/**
 * Runs `fn` with a fresh {@link setup}, the audio socket on it and a client announcing
 * `capabilities`; `closed` runs once the connection has closed. Cleans everything up.
 */
async function withClient(
  capabilities: string[],
  fn: (client: V2Client, s: ReturnType<typeof setup>) => Promise<void>,
  closed?: (s: ReturnType<typeof setup>) => void,
): Promise<void> {
  const s = setup();
  try {
    await withServer(s.pipeline, async (server) => {
      const client = await V2Client.connect(server.port, capabilities);
      try {
        await fn(client, s);
      } finally {
        client.close();
      }
    });
    closed?.(s);
  } finally {
    s.close();
  }
}

async function send(client: V2Client, message: V2Message) {
  await client.send(message);
}

async function start(client: V2Client, turn: string, continues?: string, device = "kitchen") {
  const message: V2Message = { type: "start", turn, device, rate: RATE, ts: Date.now() };
  if (continues !== undefined) message.continues = continues;
  await send(client, message);
}

async function audio(client: V2Client, turn: string, seq: number, pcm: Uint8Array) {
  await send(client, { type: "audio", turn, seq, rate: RATE, ts: Date.now(), pcm });
}

const textOf = (client: V2Client, turn: string, kind: "transcript" | "reply") =>
  client.messages.filter((m) => m.type === "text" && m.turn === turn && m.kind === kind)
    .map((m) => m.type === "text" ? m.text : "");

Deno.test("continue: the first part's reply is dropped, the merged request is answered once and acts once at commit", async () => {
  await withClient(CAPABILITIES, async (client, s) => {
    const hello = client.messages[0];
    assert.ok(hello.type === "hello" && hello.capabilities.includes("continue"));
    assert.ok(hello.type === "hello" && hello.capabilities.includes("eot"));
    // "turn on the kitchen lights", a pause: the server hints the turn is complete.
    await start(client, "t1");
    await audio(client, "t1", 0, phraseAudio(1, 800));
    await send(client, { type: "pause", turn: "t1", ts: Date.now() });
    const eot = await client.next((m) => m.type === "eot" && m.turn === "t1");
    assert.ok(eot.type === "eot" && eot.completion === "complete" && eot.silence_ms === 120);
    await send(client, { type: "end", turn: "t1", ts: Date.now() });
    await client.next((m) => m.type === "audio" && m.turn === "t1");
    // Its reply started; the user goes on within the grace: t2 continues t1.
    await start(client, "t2", "t1");
    await audio(client, "t2", 0, phraseAudio(2, 1200));
    await send(client, { type: "end", turn: "t2", ts: Date.now() });
    await client.next((m) => m.type === "end" && m.turn === "t2", 20_000);
    assert.deepEqual(textOf(client, "t2", "transcript"), [
      "turn on the kitchen lights and set a timer for five minutes",
    ]);
    assert.match(
      textOf(client, "t2", "reply").join(" "),
      /kitchen lights.*timer for 5 minutes/,
    );
    // Nothing acted yet: the turn is not final.
    assert.equal(s.commands.length, 0);
    assert.equal(s.timers.pending("kitchen").length, 0);
    assert.equal(s.memory.recent("kitchen", 10).length, 0);
    await send(client, { type: "commit", turn: "t2", ts: Date.now() });
    await send(client, { type: "commit", turn: "t2", ts: Date.now() }); // a repeat is ignored
    await send(client, { type: "ping", id: 1, ts: Date.now() });
    await client.next((m) => m.type === "pong");
    assert.deepEqual(s.commands, [
      { command: "set_power", params: { target: "kitchen lights", on: true } },
    ]);
    const timers = s.timers.pending("kitchen");
    assert.equal(timers.length, 1);
    assert.equal(timers[0].dueAt - timers[0].createdAt, 300_000);
    const turns = s.memory.recent("kitchen", 10);
    assert.equal(turns.length, 1);
    assert.equal(turns[0].turn, "t2");
    assert.equal(
      turns[0].transcript,
      "turn on the kitchen lights and set a timer for five minutes",
    );
    // Nothing about t1 after t2 started: no error, no end.
    const t2Start = client.messages.findIndex((m) => m.type === "text" && m.turn === "t2");
    assert.ok(
      !client.messages.slice(t2Start).some((m) =>
        "turn" in m && m.turn === "t1" && m.type !== "audio"
      ),
      JSON.stringify(client.types()),
    );
    assert.ok(!client.messages.some((m) => m.type === "error"), JSON.stringify(client.types()));
  });
});

Deno.test("eot: an unfinished request asks the gateway to wait up to 1200 ms", async () => {
  await withClient(CAPABILITIES, async (client) => {
    await start(client, "t1");
    await audio(client, "t1", 0, phraseAudio(3, 600));
    await send(client, { type: "pause", turn: "t1", ts: Date.now() });
    const eot = await client.next((m) => m.type === "eot");
    assert.ok(eot.type === "eot" && eot.completion === "incomplete", JSON.stringify(eot));
    assert.equal(eot.type === "eot" && eot.silence_ms, 1200);
  });
});

Deno.test("eot is not sent to a gateway that did not announce it", async () => {
  await withClient(["stream", "text", "speculate"], async (client, s) => {
    await start(client, "t1");
    await audio(client, "t1", 0, phraseAudio(4, 400));
    await send(client, { type: "pause", turn: "t1", ts: Date.now() });
    await send(client, { type: "end", turn: "t1", ts: Date.now() });
    await client.next((m) => m.type === "end" && m.turn === "t1", 20_000);
    assert.ok(!client.messages.some((m) => m.type === "eot"));
    // Without `continue` the turn acts at once: its memory row is there without a commit.
    assert.equal(s.memory.recent("kitchen", 10).length, 1);
  });
});

Deno.test("a cancel implies the commit; continuing a committed, unknown or other device's turn is refused", async () => {
  await withClient(CAPABILITIES, async (client, s) => {
    await start(client, "t1");
    await audio(client, "t1", 0, phraseAudio(1, 400));
    await send(client, { type: "end", turn: "t1", ts: Date.now() });
    await client.next((m) => m.type === "end" && m.turn === "t1", 20_000);
    assert.equal(s.commands.length, 0);
    await send(client, { type: "cancel", turn: "t1", ts: Date.now(), played_ms: 300 });
    await start(client, "t2", "t1");
    const refused = await client.next((m) => m.type === "error" && m.turn === "t2");
    assert.equal(refused.type === "error" && refused.code, "unknown_turn");
    assert.equal(s.commands.length, 1, "the barge-in kept what the user heard start");
    const [row] = s.memory.recent("kitchen", 10);
    assert.ok(row.interrupted && row.playedMs === 300);

    await start(client, "t3", undefined, "hall");
    await audio(client, "t3", 0, phraseAudio(4, 400));
    await send(client, { type: "end", turn: "t3", ts: Date.now() });
    await client.next((m) => m.type === "end" && m.turn === "t3", 20_000);
    await start(client, "t4", "t3", "kitchen");
    const other = await client.next((m) => m.type === "error" && m.turn === "t4");
    assert.equal(other.type === "error" && other.code, "bad_continuation");
    // t3 still waits for its commit, and can be continued by its own device.
    await start(client, "t5", "t3", "hall");
    await audio(client, "t5", 0, phraseAudio(4, 200));
    await send(client, { type: "end", turn: "t5", ts: Date.now() });
    await client.next((m) => m.type === "end" && m.turn === "t5", 20_000);
    assert.deepEqual(textOf(client, "t5", "transcript"), ["what time is it"]);
  }, (s) => {
    // The connection closed: the waiting turn (t5) was committed, t3 never was.
    const rows = s.memory.recent("hall", 10);
    assert.deepEqual(rows.map((r) => r.turn), ["t5"]);
  });
});

/**
 * A gateway's turn t1 ("turn on the kitchen lights") is answered, then its link drops before any
 * commit; returns once the server has seen the connection close.
 */
async function answerThenDrop(server: AudioSocketServer): Promise<void> {
  const first = await V2Client.connect(server.port, CAPABILITIES);
  await start(first, "t1");
  await audio(first, "t1", 0, phraseAudio(1, 800));
  await send(first, { type: "end", turn: "t1", ts: Date.now() });
  await first.next((m) => m.type === "end" && m.turn === "t1", 20_000);
  first.close();
  for (let polls = 0; server.connections > 0 && polls < 500; polls++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(server.connections, 0, "the server saw the link drop");
}

/**
 * {@link answerThenDrop} on a first connection, then `fn` on a second one (the gateway
 * reconnected), then `after` once the server has shut down (orphans committed). Cleans up.
 */
async function afterLinkDrop(
  fn: (second: V2Client, s: ReturnType<typeof setup>) => Promise<void>,
  after: (s: ReturnType<typeof setup>) => void,
): Promise<void> {
  const s = setup();
  try {
    await withServer(s.pipeline, async (server) => {
      await answerThenDrop(server);
      const second = await V2Client.connect(server.port, CAPABILITIES);
      try {
        await fn(second, s);
        await send(second, { type: "ping", id: 1, ts: Date.now() });
        await second.next((m) => m.type === "pong");
        assert.ok(!second.messages.some((m) => m.type === "error"), JSON.stringify(second.types()));
      } finally {
        second.close();
      }
    });
    after(s);
  } finally {
    s.close();
  }
}

Deno.test("a link drop before the continuation: the reconnected gateway continues the turn, which acts once", async () => {
  await afterLinkDrop(async (second, s) => {
    assert.equal(s.commands.length, 0, "the answered first part is not applied at the drop");
    await start(second, "t2", "t1");
    await audio(second, "t2", 0, phraseAudio(2, 1200));
    await send(second, { type: "end", turn: "t2", ts: Date.now() });
    await second.next((m) => m.type === "end" && m.turn === "t2", 20_000);
    assert.deepEqual(textOf(second, "t2", "transcript"), [
      "turn on the kitchen lights and set a timer for five minutes",
    ]);
    await send(second, { type: "commit", turn: "t2", ts: Date.now() });
  }, (s) => {
    // After the server's close too: the lights went on once, one timer, one memory row.
    assert.deepEqual(s.commands, [
      { command: "set_power", params: { target: "kitchen lights", on: true } },
    ]);
    assert.equal(s.timers.pending("kitchen").length, 1);
    assert.deepEqual(s.memory.recent("kitchen", 10).map((r) => r.turn), ["t2"]);
  });
});

Deno.test("an answered turn left by a dropped link is applied when nobody continues it", async () => {
  // The server shuts down before the orphan's timeout: its effects still apply, once.
  await afterLinkDrop(() => Promise.resolve(), (s) => {
    assert.equal(s.commands.length, 1);
    assert.deepEqual(s.memory.recent("kitchen", 10).map((r) => r.turn), ["t1"]);
  });
});

Deno.test("after a link drop, the reconnected gateway's commit then barge-in records what was heard", async () => {
  await afterLinkDrop(async (second) => {
    await send(second, { type: "commit", turn: "t1", ts: Date.now() });
    await send(second, { type: "cancel", turn: "t1", ts: Date.now(), played_ms: 300 });
  }, (s) => {
    assert.equal(s.commands.length, 1);
    const [row] = s.memory.recent("kitchen", 10);
    assert.ok(row.turn === "t1" && row.interrupted && row.playedMs === 300, JSON.stringify(row));
  });
});

Deno.test("a turn replayed after a link drop under its own id is answered again and acts once", async () => {
  // The reply of t1 never reached the gateway: it sends the turn again on a new connection.
  await afterLinkDrop(async (second) => {
    await start(second, "t1");
    await audio(second, "t1", 0, phraseAudio(1, 800));
    await send(second, { type: "end", turn: "t1", ts: Date.now() });
    await second.next((m) => m.type === "end" && m.turn === "t1", 20_000);
    await send(second, { type: "commit", turn: "t1", ts: Date.now() });
  }, (s) => {
    assert.equal(s.commands.length, 1, "the lights went on once");
    assert.deepEqual(s.memory.recent("kitchen", 10).map((r) => r.turn), ["t1"]);
  });
});
