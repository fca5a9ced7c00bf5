import assert from "node:assert/strict";
import { testAssistant } from "./assistant/testing.ts";
import { sendTurn, V2Client } from "../scripts/lib/audio_socket_clients.ts";
import { ScriptedPipeline, withServer } from "./audio_socket_testing.ts";
import { EchoPipeline, FullPipeline } from "./pipeline.ts";
import type { DeviceCommand } from "../shared/messages.ts";
import type { ConversationMemory } from "./assistant/memory.ts";
import { EspeakTts } from "./tts/espeak.ts";

async function sendTestTurn(client: V2Client, turn: string, rate: 16000 | 48000) {
  await sendTurn(client, { turn, rate, pcm: new Uint8Array(3200 * 2), chunkBytes: 3200 });
}

Deno.test("v2: a turn streams transcript, reply text, audio chunks and an end with stages", async () => {
  await withServer(new ScriptedPipeline(), async (server) => {
    const client = await V2Client.connect(server.port);
    try {
      await sendTestTurn(client, "t1", 16000);
      const end = await client.next((m) => m.type === "end");
      assert.deepEqual(client.types(), ["hello", "text:t1", "text:t1", "audio:t1", "end:t1"]);
      const [, transcript, reply, audio] = client.messages;
      assert.equal(transcript.type === "text" && transcript.kind, "transcript");
      assert.equal(reply.type === "text" && reply.text, "Hello.");
      assert.ok(audio.type === "audio" && audio.seq === 0 && audio.rate === 16000);
      assert.equal(audio.type === "audio" && audio.pcm.length, 3200);
      assert.ok(end.type === "end" && end.stages?.stt_ms === 1.5 && end.stages.queue_ms >= 0);
    } finally {
      client.close();
    }
  });
});

Deno.test("v2: without the text capability no text is sent; stages always are", async () => {
  await withServer(new ScriptedPipeline(), async (server) => {
    const client = await V2Client.connect(server.port, ["stream"]);
    try {
      await sendTestTurn(client, "t1", 16000);
      const end = await client.next((m) => m.type === "end");
      assert.deepEqual(client.types(), ["hello", "audio:t1", "end:t1"]);
      assert.ok(end.type === "end" && end.stages?.stt_ms === 1.5);
    } finally {
      client.close();
    }
  });
});

Deno.test("v2: a cancelled running turn sends nothing more and records what was heard", async () => {
  const pipeline = new ScriptedPipeline(200);
  await withServer(pipeline, async (server) => {
    const client = await V2Client.connect(server.port);
    try {
      await sendTestTurn(client, "t1", 16000);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await client.send({ type: "cancel", turn: "t1", ts: Date.now(), played_ms: 0 });
      // The next turn is answered; nothing of t1 ever arrives.
      await sendTestTurn(client, "t2", 16000);
      await client.next((m) => m.type === "end" && m.turn === "t2");
      assert.deepEqual(client.types().filter((t) => t.endsWith(":t1")), []);
      assert.deepEqual(pipeline.interrupted, [[1, 0]]);
      // A barge-in after the reply finished is recorded too.
      await client.send({ type: "cancel", turn: "t2", ts: Date.now(), played_ms: 420 });
      await client.send({ type: "ping", id: 1, ts: Date.now() });
      await client.next((m) => m.type === "pong");
      assert.deepEqual(pipeline.interrupted, [[1, 0], [2, 420]]);
    } finally {
      client.close();
    }
  });
});

Deno.test("v2: a cancelled queued turn never runs", async () => {
  const pipeline = new ScriptedPipeline(150);
  await withServer(pipeline, async (server) => {
    const client = await V2Client.connect(server.port);
    try {
      await sendTestTurn(client, "t1", 16000);
      await sendTestTurn(client, "t2", 16000);
      await client.send({ type: "cancel", turn: "t2", ts: Date.now(), played_ms: 0 });
      await client.next((m) => m.type === "end" && m.turn === "t1");
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(pipeline.runs, ["t1"]);
    } finally {
      client.close();
    }
  });
});

Deno.test("v2: a turn beyond the queue's capacity gets a busy error", async () => {
  await withServer(new ScriptedPipeline(200), async (server) => {
    const client = await V2Client.connect(server.port);
    try {
      await sendTestTurn(client, "t1", 16000);
      await new Promise((resolve) => setTimeout(resolve, 20));
      await sendTestTurn(client, "t2", 16000);
      const busy = await client.next((m) => m.type === "error");
      assert.deepEqual({ ...busy, ts: 0 }, {
        type: "error",
        turn: "t2",
        code: "busy",
        message: "inference queue is full (0 turns)",
        ts: 0,
      });
      await client.next((m) => m.type === "end" && m.turn === "t1");
    } finally {
      client.close();
    }
  }, { capacity: 0 });
});

Deno.test("v2: audio or end for an unknown turn is an unknown_turn error", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const client = await V2Client.connect(server.port);
    try {
      await client.send({ type: "end", turn: "nope", ts: Date.now() });
      const error = await client.next((m) => m.type === "error");
      assert.ok(error.type === "error" && error.code === "unknown_turn" && error.turn === "nope");
    } finally {
      client.close();
    }
  });
});

Deno.test("v2: an audio seq gap drops the turn with an error naming both numbers", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const client = await V2Client.connect(server.port);
    try {
      await client.send({ type: "start", turn: "t1", device: "d", rate: 16000, ts: 1 });
      await client.send({
        type: "audio",
        turn: "t1",
        seq: 1,
        rate: 16000,
        ts: 2,
        pcm: new Uint8Array(2),
      });
      const error = await client.next((m) => m.type === "error");
      assert.equal(error.type === "error" && error.message, "audio seq 1 for turn t1, expected 0");
    } finally {
      client.close();
    }
  });
});

Deno.test("a v2 turn that never ends gets a timeout error", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const client = await V2Client.connect(server.port);
    try {
      await client.send({ type: "start", turn: "t1", device: "d", rate: 16000, ts: 1 });
      const error = await client.next((m) => m.type === "error");
      assert.ok(error.type === "error" && error.code === "timeout" && error.turn === "t1");
    } finally {
      client.close();
    }
  }, { timeouts: { turnMs: 150 } });
});

/** A complete command: its `pause` starts the reply ahead (with `continue` and `eot`). */
const AHEAD_COMMAND = "turn on the kitchen lights";
const AHEAD_CAPABILITIES = ["stream", "cancel", "text", "stages", "speculate", "continue", "eot"];

/**
 * The real full pipeline (assistant with SQLite memory and timers, espeak-ng TTS) behind the
 * socket; its STT hears {@link AHEAD_COMMAND} in any audio, and counts its runs and the TTS's.
 */
async function withReplyAhead(
  fn: (
    client: V2Client,
    s: { commands: DeviceCommand[]; memory: ConversationMemory; stt: number[]; tts: string[] },
  ) => Promise<void>,
): Promise<void> {
  const { assistant, memory, commands, close } = testAssistant();
  const s = { commands, memory, stt: [] as number[], tts: [] as string[] };
  const espeak = new EspeakTts();
  const pipeline = new FullPipeline({
    stt: {
      transcribe: (samples) => {
        s.stt.push(samples.length);
        return Promise.resolve({
          text: AHEAD_COMMAND,
          timings: { frontend_ms: 0, encoder_ms: 0, decoder_ms: 0, tokens: 0 },
        });
      },
    },
    assistant,
    tts: {
      name: espeak.name,
      synthesize: (text, options) => {
        s.tts.push(text);
        return espeak.synthesize(text, options);
      },
    },
  });
  try {
    await withServer(pipeline, async (server) => {
      const client = await V2Client.connect(server.port, AHEAD_CAPABILITIES);
      try {
        await fn(client, s);
      } finally {
        client.close();
      }
    });
  } finally {
    close();
  }
}

/** `start`, one chunk of audio, `pause`; resolves with the `eot` hint. */
async function startPaused(client: V2Client, turn: string) {
  await client.send({ type: "start", turn, device: "kitchen", rate: 16000, ts: Date.now() });
  const pcm = new Uint8Array(3200 * 2);
  await client.send({ type: "audio", turn, seq: 0, rate: 16000, ts: Date.now(), pcm });
  await client.send({ type: "pause", turn, ts: Date.now() });
  return await client.next((m) => m.type === "eot" && m.turn === turn);
}

/** Waits (event-loop turns) until `check` holds; fails after many tries instead of hanging. */
async function until(check: () => boolean, what: string) {
  for (let i = 0; i < 2000 && !check(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.ok(check(), `never: ${what}`);
}

/** Round trip: every message sent before it has been handled by the server. */
async function settled(client: V2Client, id: number) {
  await client.send({ type: "ping", id, ts: Date.now() });
  await client.next((m) => m.type === "pong" && m.id === id);
}

Deno.test("v2 reply ahead: made on a complete pause, held, sent on end, applied once at commit", async () => {
  await withReplyAhead(async (client, s) => {
    const eot = await startPaused(client, "t1");
    assert.ok(eot.type === "eot" && eot.completion === "complete");
    await until(() => s.tts.length > 0, "the first sentence synthesized ahead");
    await settled(client, 1);
    assert.deepEqual(client.types(), ["hello", "eot:t1", "pong"], "held: nothing sent yet");
    assert.equal(s.commands.length, 0);
    await client.send({ type: "end", turn: "t1", ts: Date.now() });
    const end = await client.next((m) => m.type === "end" && m.turn === "t1");
    assert.ok(end.type === "end" && end.stages?.reply_ahead === 1);
    assert.deepEqual(client.types().filter((t) => t.endsWith(":t1")).slice(1, 3), [
      "text:t1",
      "text:t1",
    ]);
    assert.ok(client.types().includes("audio:t1"));
    assert.equal(s.stt.length, 1, "transcribed once, at the pause");
    assert.equal(s.tts.length, 1, "synthesized once, ahead");
    assert.equal(s.commands.length, 0, "staged until the commit");
    await client.send({ type: "commit", turn: "t1", ts: Date.now() });
    await client.send({ type: "commit", turn: "t1", ts: Date.now() });
    await settled(client, 2);
    assert.deepEqual(s.commands, [
      { command: "set_power", params: { target: "kitchen lights", on: true } },
    ]);
    assert.equal(s.memory.recent("kitchen", 10).length, 1);
  });
});

Deno.test("v2 reply ahead: speech after the pause discards it; the whole turn is answered once", async () => {
  await withReplyAhead(async (client, s) => {
    await startPaused(client, "t1");
    await until(() => s.tts.length > 0, "the reply ahead synthesized");
    const more = new Uint8Array(3200 * 2);
    await client.send({
      type: "audio",
      turn: "t1",
      seq: 1,
      rate: 16000,
      ts: Date.now(),
      pcm: more,
    });
    await client.send({ type: "end", turn: "t1", ts: Date.now() });
    const end = await client.next((m) => m.type === "end" && m.turn === "t1");
    assert.ok(end.type === "end" && end.stages?.reply_ahead === undefined);
    assert.deepEqual(s.stt, [3200 * 2, 3200 * 4].map((bytes) => bytes / 2), "STT again on all");
    assert.equal(client.types().filter((t) => t === "end:t1").length, 1);
    await client.send({ type: "commit", turn: "t1", ts: Date.now() });
    await settled(client, 1);
    assert.equal(s.commands.length, 1, "one light command, not the discarded reply's too");
    assert.equal(s.memory.recent("kitchen", 10).length, 1);
  });
});

Deno.test("v2 reply ahead: a cancelled turn sends nothing and applies nothing", async () => {
  await withReplyAhead(async (client, s) => {
    await startPaused(client, "t1");
    await until(() => s.tts.length > 0, "the reply ahead synthesized");
    await client.send({ type: "cancel", turn: "t1", ts: Date.now(), played_ms: 0 });
    await settled(client, 1);
    // A late `end` of the cancelled turn is refused, not answered with the held reply.
    await client.send({ type: "end", turn: "t1", ts: Date.now() });
    await settled(client, 2);
    const t1 = client.messages.filter((m) => "turn" in m && m.turn === "t1").map((m) => m.type);
    assert.deepEqual(t1, ["eot", "error"]);
    assert.equal(s.commands.length, 0);
    assert.equal(s.memory.recent("kitchen", 10).length, 0);
  });
});
