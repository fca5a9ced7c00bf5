import assert from "node:assert/strict";
import {
  parseV1Responses,
  readUntil,
  sendTurn,
  v1Request,
  V2Client,
} from "../tests/helpers/audio_socket_clients.ts";
import { AudioSocketServer, type AudioSocketTimeouts } from "./audio_socket.ts";
import { InferenceQueue } from "./inference_queue.ts";
import {
  EchoPipeline,
  type Pipeline,
  type ReplySink,
  type TurnResult,
  type Utterance,
} from "./pipeline.ts";

const encoder = new TextEncoder();

/** A pipeline under the test's control: waits `delayMs` per stage, then answers 100 ms of tone. */
class ScriptedPipeline implements Pipeline {
  readonly kind = "full";
  runs: string[] = [];
  interrupted: [number, number][] = [];
  constructor(readonly delayMs = 0) {}
  async run(
    utterance: Utterance,
    sink: ReplySink,
    options: { signal: AbortSignal; outputRate: number },
  ): Promise<TurnResult> {
    this.runs.push(utterance.turn);
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    const base = {
      transcript: "hi",
      reply: "Hello.",
      replyAudioMs: 100,
      memoryId: this.runs.length,
    };
    if (options.signal.aborted) return { ...base, cancelled: true, stages: {} };
    sink.transcript("hi");
    sink.reply("Hello.");
    sink.audio(new Uint8Array((options.outputRate / 10) * 2).fill(1), options.outputRate);
    return { ...base, cancelled: false, stages: { stt_ms: 1.5 } };
  }
  markInterrupted(memoryId: number, playedMs: number): void {
    this.interrupted.push([memoryId, playedMs]);
  }
}

async function withServer(
  pipeline: Pipeline,
  fn: (server: AudioSocketServer) => Promise<void>,
  options: {
    capacity?: number;
    timeouts?: Partial<AudioSocketTimeouts>;
    maxConnections?: number;
  } = {},
): Promise<void> {
  const server = AudioSocketServer.listen({
    host: "127.0.0.1",
    port: 0,
    pipeline,
    queue: new InferenceQueue({ capacity: options.capacity ?? 4 }),
    timeouts: options.timeouts,
    maxConnections: options.maxConnections,
  });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

async function sendTestTurn(client: V2Client, turn: string, rate: 16000 | 48000) {
  await sendTurn(client, { turn, rate, pcm: new Uint8Array(3200 * 2), chunkBytes: 3200 });
}

Deno.test("v1: each request gets one 48 kHz response with the same ids, in order", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      const pcm = new Uint8Array(1600 * 2).map((_, i) => i % 251);
      await conn.write(v1Request({ device: "living_room", rate: 16000, request: "req_1", pcm }));
      await conn.write(
        v1Request({
          device: "living_room",
          rate: 48000,
          request: "req_2",
          pcm: new Uint8Array(960),
        }),
      );
      const { bytes } = await readUntil(conn, (b) => parseV1Responses(b).length === 2);
      const [first, second] = parseV1Responses(bytes);
      assert.deepEqual(first.header.filter((_, i) => i !== 1), ["living_room", "48000", "req_1"]);
      assert.equal(Number(first.header[1]), first.body.length);
      assert.equal(first.body.length, pcm.length * 3, "0.1 s at 16 kHz echoed at 48 kHz");
      assert.deepEqual(second.header, ["living_room", "960", "48000", "req_2"]);
    } finally {
      conn.close();
    }
  });
});

Deno.test("v1: an utterance with nothing to say gets an empty body", async () => {
  const silent: Pipeline = {
    kind: "full",
    run: () =>
      Promise.resolve({ cancelled: false, transcript: "", reply: "", stages: {}, replyAudioMs: 0 }),
    markInterrupted: () => {},
  };
  await withServer(silent, async (server) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      await conn.write(
        v1Request({ device: "kitchen", rate: 16000, request: "r9", pcm: new Uint8Array(3200) }),
      );
      const { bytes } = await readUntil(conn, (b) => parseV1Responses(b).length === 1);
      assert.equal(new TextDecoder().decode(bytes), "kitchen|0|48000|r9\n");
    } finally {
      conn.close();
    }
  });
});

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

Deno.test("v2: ping is answered with a pong of the same id", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const client = await V2Client.connect(server.port);
    try {
      await client.send({ type: "ping", id: 7, ts: Date.now() });
      const pong = await client.next((m) => m.type === "pong");
      assert.equal(pong.type === "pong" && pong.id, 7);
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

Deno.test("garbage on one connection closes it and does not disturb another", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const good = await V2Client.connect(server.port);
    const v1Garbage = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const v2Garbage = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      await good.send({ type: "start", turn: "t1", device: "d", rate: 16000, ts: 1 });
      await v1Garbage.write(encoder.encode("this is|not a|frame\n"));
      await v2Garbage.write(encoder.encode('{"type":"hello","version":2}\n'));
      const v1 = await readUntil(v1Garbage, () => false);
      assert.deepEqual(v1, { bytes: new Uint8Array(0), closed: true });
      const v2 = await readUntil(v2Garbage, () => false);
      assert.equal(v2.closed, true);
      const error = new TextDecoder().decode(v2.bytes);
      assert.match(error, /^\{"type":"error","code":"bad_frame","message":"ts undefined is not/);
      // The good connection's turn goes on as if nothing happened.
      await good.send({
        type: "audio",
        turn: "t1",
        seq: 0,
        rate: 16000,
        ts: 2,
        pcm: new Uint8Array(320),
      });
      await good.send({ type: "end", turn: "t1", ts: 3 });
      await good.next((m) => m.type === "end");
    } finally {
      good.close();
      v1Garbage.close();
      v2Garbage.close();
    }
  });
});

Deno.test("300 connections of random and mutated bytes never take the server down", async () => {
  // Seeded so a failure can be replayed: xorshift32.
  let seed = 0x2545f491;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const valid = [
    encoder.encode("kitchen|4|16000|r1\n\x01\x00\x02\x03"),
    encoder.encode(
      '{"type":"hello","version":2,"role":"gateway","capabilities":["text"],"ts":1}\n' +
        '{"type":"start","turn":"t1","device":"d","rate":16000,"ts":2}\n' +
        '{"type":"audio","turn":"t1","seq":0,"rate":16000,"ts":3,"length":4}\n\x01\x00\x02\x03' +
        '{"type":"end","turn":"t1","ts":4}\n',
    ),
  ];
  const sample = (): Uint8Array => {
    const base = valid[Math.floor(random() * valid.length)].slice();
    if (random() < 0.3) return base.map(() => Math.floor(random() * 256));
    for (let i = 0; i < 1 + random() * 4; i++) {
      base[Math.floor(random() * base.length)] = Math.floor(random() * 256);
    }
    return base.subarray(0, Math.max(1, Math.floor(random() * base.length * 1.2)));
  };
  await withServer(new EchoPipeline(), async (server) => {
    for (let batch = 0; batch < 30; batch++) {
      await Promise.all(Array.from({ length: 10 }, async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        try {
          await conn.write(sample()).catch(() => {});
          await readUntil(conn, () => false, 50);
        } finally {
          try {
            conn.close();
          } catch {
            // closed by the read timeout
          }
        }
      }));
    }
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      await conn.write(
        v1Request({ device: "kitchen", rate: 16000, request: "after", pcm: new Uint8Array(640) }),
      );
      const { bytes } = await readUntil(conn, (b) => parseV1Responses(b).length === 1);
      assert.deepEqual(parseV1Responses(bytes)[0].header, ["kitchen", "1920", "48000", "after"]);
    } finally {
      conn.close();
    }
  }, { timeouts: { frameMs: 100, idleMs: 100, turnMs: 100 } });
});

Deno.test("an oversized frame is refused before its payload is read", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      await conn.write(encoder.encode("kitchen|999999999|48000|r1\n"));
      assert.equal((await readUntil(conn, () => false)).closed, true);
    } finally {
      conn.close();
    }
  });
});

Deno.test("a frame that stalls half-way times out (v1 closed, v2 told why)", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const v1 = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const v2 = await V2Client.connect(server.port);
    try {
      await v1.write(encoder.encode("kitchen|1000|16000|r1\n\x01\x02"));
      await v2.conn.write(encoder.encode('{"type":"ping","id":1,'));
      const started = Date.now();
      assert.equal((await readUntil(v1, () => false)).closed, true);
      assert.ok(Date.now() - started < 2000);
      const error = await v2.next((m) => m.type === "error");
      assert.ok(error.type === "error" && error.code === "timeout", JSON.stringify(error));
    } finally {
      v1.close();
      v2.close();
    }
  }, { timeouts: { frameMs: 200 } });
});

Deno.test("a v2 connection that goes silent after its hello is told so and closed", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const client = await V2Client.connect(server.port);
    try {
      const error = await client.next((m) => m.type === "error");
      assert.ok(error.type === "error" && error.code === "timeout" && error.turn === undefined);
      await assert.rejects(client.next(() => false), /connection closed/);
    } finally {
      client.close();
    }
  }, { timeouts: { idleMs: 200 } });
});

Deno.test("connections beyond the limit are closed at once; those within go on", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const first = await V2Client.connect(server.port);
    const second = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      assert.equal((await readUntil(second, () => false)).closed, true);
      await first.send({ type: "ping", id: 3, ts: Date.now() });
      await first.next((m) => m.type === "pong");
      assert.equal(server.connections, 1);
    } finally {
      first.close();
      second.close();
    }
  }, { maxConnections: 1 });
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

Deno.test("at the limit, the oldest connection that never sent a byte makes room for a new one", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const silent = await Promise.all(
      [0, 1, 2].map(() => Deno.connect({ hostname: "127.0.0.1", port: server.port })),
    );
    let client: V2Client | undefined;
    try {
      const started = performance.now();
      while (server.connections < 3) {
        assert.ok(performance.now() - started < 2000, "the silent connections are accepted");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      client = await V2Client.connect(server.port);
      await client.send({ type: "ping", id: 1, ts: Date.now() });
      await client.next((m) => m.type === "pong");
      assert.equal((await readUntil(silent[0], () => false)).closed, true, "the oldest is closed");
      assert.equal(server.connections, 3);
    } finally {
      client?.close();
      for (const conn of silent) {
        try {
          conn.close();
        } catch {
          // Closed by readUntil.
        }
      }
    }
  }, { maxConnections: 3 });
});
