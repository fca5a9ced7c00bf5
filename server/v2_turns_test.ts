import assert from "node:assert/strict";
import { sendTurn, V2Client } from "../scripts/lib/audio_socket_clients.ts";
import { ScriptedPipeline, withServer } from "./audio_socket_testing.ts";
import { EchoPipeline } from "./pipeline.ts";

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
