import assert from "node:assert/strict";
import { float32ToPcm } from "../shared/audio.ts";
import { delay } from "../shared/async.ts";
import { isValidId } from "../shared/ids.ts";
import { encodeV2, FrameDecoder } from "../shared/frame_codec.ts";
import { createLogger } from "../shared/log.ts";
import {
  type AiServerDoubleOptions,
  startAiServerDouble,
} from "../tests/helpers/ai_server_double.ts";
import { AiServers as AiClient, type AiServersOptions as AiClientOptions } from "./ai_servers.ts";
import { MAX_QUEUED_BYTES } from "./ai_connection.ts";
import type { TurnFailure, TurnHandlers } from "./ai_turn.ts";

const log = createLogger("test.ai", { level: "error" });

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) throw new Error("condition not met in time");
    await delay(5);
  }
}

function recorder() {
  const r = {
    audio: [] as { bytes: number; rate: number }[],
    texts: [] as string[],
    ended: false,
    failed: undefined as TurnFailure | undefined,
    handlers: undefined as unknown as TurnHandlers,
  };
  r.handlers = {
    audio: (pcm, rate) => r.audio.push({ bytes: pcm.length, rate }),
    text: (_kind, text) => r.texts.push(text),
    end: () => void (r.ended = true),
    fail: (reason) => void (r.failed = reason),
  };
  return r;
}

/** A real TCP server run by the test; `serve` gets each connection it accepts. */
function tcpServer(serve: (conn: Deno.TcpConn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.TcpConn[] = [];
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.push(conn);
        served.push(serve(conn).catch(() => {}));
      }
    } catch {
      // The listener was closed.
    }
  })();
  return {
    port: listener.addr.port,
    async close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await accepting;
      await Promise.all(served);
    },
  };
}

/** Every byte `conn` receives until the peer closes it. */
async function readToEnd(conn: Deno.TcpConn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  while (true) {
    const buffer = new Uint8Array(65536);
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    chunks.push(buffer.subarray(0, n));
  }
  const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/** A v2 server's hello, for servers written in a test. */
const serverHello = () =>
  encodeV2({
    type: "hello",
    version: 2,
    role: "server",
    capabilities: ["stream", "cancel", "ping"],
    ts: Date.now(),
  });

/** A hung AI server: accepts, then never reads nor answers. */
const deafServer = () => tcpServer(() => Promise.resolve());

const pcm = float32ToPcm(new Float32Array(16000).fill(0.1)); // 1 s at 16 kHz

/** A double and a client connected to it; `close()` stops both. */
async function connected(
  double: AiServerDoubleOptions,
  client: Partial<AiClientOptions> = {},
) {
  const server = await startAiServerDouble(double);
  const ai = new AiClient({
    servers: [{ host: "127.0.0.1", port: server.port }],
    protocol: double.protocol,
    log,
    ...client,
  });
  ai.start();
  await until(() => ai.connected);
  return {
    server,
    client: ai,
    async close() {
      ai.close();
      await server.close();
    },
  };
}

Deno.test("v2: a turn streams start, 100 ms audio chunks and end; the reply streams back", async () => {
  const { server, client, close } = await connected({
    protocol: "v2",
    reply: () => ({ samples: new Float32Array(4800), rate: 24000, chunkMs: 100 }),
  });
  try {
    const r = recorder();
    const turn = client.startTurn("kitchen", 16000, r.handlers);
    turn.audio(pcm);
    turn.end(Date.now() - 300);
    const received = await server.nextTurn(5000);
    assert.equal(received.device, "kitchen");
    assert.equal(received.turn, turn.id);
    assert.deepEqual(received.seqs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(received.samples().length, 16000);
    await until(() => r.ended);
    assert.deepEqual(r.audio.map((a) => a.rate), [24000, 24000]);
    assert.deepEqual(r.texts, ["hello"]);
    assert.equal(client.pendingTurns, 0);
    assert.notEqual(
      client.startTurn("kitchen", 16000, recorder().handlers).id,
      turn.id,
      "ids are unique",
    );
  } finally {
    await close();
  }
});

Deno.test("v2: cancel tells the server how much was played and drops late audio", async () => {
  const { server, client, close } = await connected({
    protocol: "v2",
    reply: () => ({ samples: new Float32Array(48000), rate: 24000, chunkMs: 100, paceMs: 50 }),
  });
  try {
    const r = recorder();
    const turn = client.startTurn("kitchen", 16000, r.handlers);
    turn.audio(pcm);
    turn.end(Date.now());
    await until(() => r.audio.length > 0);
    turn.cancel(420);
    const cancelled = await server.waitCancel(0, 5000);
    assert.equal(cancelled.cancelled!.played_ms, 420);
    const count = r.audio.length;
    await delay(200);
    assert.equal(r.audio.length, count, "no audio after the cancel");
    assert.equal(r.ended, false);
  } finally {
    await close();
  }
});

Deno.test("a silent server times the turn out (spec 4.4) and frees it", async () => {
  const { server, client, close } = await connected({
    protocol: "v2",
    reply: () => ({ samples: new Float32Array(0), rate: 24000, silent: true }),
  }, { responseTimeoutMs: 200 });
  try {
    const r = recorder();
    const turn = client.startTurn("kitchen", 16000, r.handlers);
    turn.end(Date.now());
    await until(() => r.failed !== undefined, 2000);
    assert.equal(r.failed, "timeout");
    assert.equal(client.pendingTurns, 0);
    await server.waitCancel(0, 2000);
  } finally {
    await close();
  }
});

/** A v2 client on `port` that waits `outageHoldMs` for a restarting server. */
function restartingLink(port: number, outageHoldMs: number) {
  const client = new AiClient({
    servers: [{ host: "127.0.0.1", port }],
    protocol: "v2",
    log,
    outageHoldMs,
  });
  const changes: boolean[] = [];
  client.onConnection((connected) => changes.push(connected));
  client.start();
  return { client, changes };
}

const answer = () => ({ samples: new Float32Array(2400).fill(0.2), rate: 24000 as const });
const silent = () => ({ ...answer(), silent: true });

Deno.test("a turn cut off by a server restart before its reply is sent again, whole, and answered", async () => {
  let server = await startAiServerDouble({ protocol: "v2", reply: answer });
  const port = server.port;
  const { client, changes } = restartingLink(port, 10_000);
  try {
    await until(() => client.connected);
    const r = recorder();
    const turn = client.startTurn("kitchen", 16000, r.handlers);
    turn.audio(pcm.subarray(0, 9600)); // 300 ms: three chunks reach the first server
    await until(() => server.turns[0]?.seqs.length === 3);
    await server.close();
    await until(() => !client.connected);
    turn.audio(pcm.subarray(0, 6400)); // said while the server restarts
    turn.end(Date.now());
    assert.equal(r.failed, undefined, "the turn waits for the server");
    server = await startAiServerDouble({ protocol: "v2", port, reply: answer });
    const replayed = await server.nextTurn(10_000);
    assert.equal(replayed.turn, turn.id);
    assert.equal(replayed.samples().length * 2, 9600 + 6400, "the whole utterance, once");
    await until(() => r.ended);
    assert.deepEqual(r.audio.map((a) => a.bytes), [4800]);
    assert.equal(r.failed, undefined);
    assert.deepEqual(changes, [true, false, true]);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("a turn started while the server is away waits for it; after a longer outage turns fail", async () => {
  let server = await startAiServerDouble({ protocol: "v2", reply: answer });
  const port = server.port;
  // Long enough for a reconnect on a loaded machine, short enough to wait out below.
  const { client } = restartingLink(port, 1500);
  try {
    await until(() => client.connected);
    await server.close();
    await until(() => !client.connected);
    const early = recorder();
    const turn = client.startTurn("kitchen", 16000, early.handlers);
    turn.audio(pcm.subarray(0, 3200));
    turn.end(Date.now());
    server = await startAiServerDouble({ protocol: "v2", port, reply: answer });
    const received = await server.nextTurn(10_000);
    assert.equal(received.turn, turn.id);
    await until(() => early.ended);

    // Away for longer than the hold: a waiting turn fails `unavailable`, a new one at once.
    await server.close();
    await until(() => !client.connected);
    const held = recorder();
    client.startTurn("kitchen", 16000, held.handlers).audio(pcm.subarray(0, 3200));
    await until(() => held.failed !== undefined, 5000);
    assert.equal(held.failed, "unavailable");
    const late = recorder();
    client.startTurn("kitchen", 16000, late.handlers);
    await delay(0);
    assert.equal(late.failed, "unavailable", "no wait once the outage outlasted the hold");
    assert.equal(client.pendingTurns, 0);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("a turn is not sent again once its reply began, nor more than once", async () => {
  let server = await startAiServerDouble({
    protocol: "v2",
    reply: () => ({ ...answer(), paceMs: 2000, chunkMs: 20 }),
  });
  const port = server.port;
  const { client } = restartingLink(port, 10_000);
  try {
    await until(() => client.connected);
    const replying = recorder();
    const first = client.startTurn("kitchen", 16000, replying.handlers);
    first.end(Date.now());
    await until(() => replying.audio.length > 0);
    await server.close();
    await until(() => replying.failed !== undefined);
    assert.equal(replying.failed, "disconnected", "half a reply is not asked for again");

    // A server that dies on every turn: the turn is replayed once, then fails.
    server = await startAiServerDouble({ protocol: "v2", port, reply: silent });
    await until(() => client.connected, 10_000);
    const poison = recorder();
    const second = client.startTurn("kitchen", 16000, poison.handlers);
    second.audio(pcm.subarray(0, 3200));
    second.end(Date.now());
    await server.nextTurn(5000, 0);
    await server.close();
    server = await startAiServerDouble({ protocol: "v2", port, reply: silent });
    const again = await server.nextTurn(10_000, 0);
    assert.equal(again.turn, second.id);
    await server.close();
    await until(() => poison.failed !== undefined, 5000);
    assert.equal(poison.failed, "disconnected");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("the client reconnects with backoff to a server that comes back later", async () => {
  let server = await startAiServerDouble({ protocol: "v2" });
  const port = server.port;
  const { client, changes } = restartingLink(port, 200);
  try {
    await until(() => client.connected);
    await server.close();
    await until(() => !client.connected);
    await delay(1000);
    server = await startAiServerDouble({ protocol: "v2", port });
    await until(() => client.connected, 10_000);
    assert.deepEqual(changes, [true, false, true]);
    assert.ok(client.connections >= 2);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("v1: the utterance goes whole in one spec 4.2 frame; an empty response ends the turn", async () => {
  let empty = false;
  const { server, client, close } = await connected({
    protocol: "v1",
    reply: () => (empty ? undefined : { samples: new Float32Array(960), rate: 48000 }),
  });
  try {
    const r = recorder();
    const turn = client.startTurn("kitchen", 48000, r.handlers);
    turn.audio(pcm.subarray(0, 9600));
    turn.audio(pcm.subarray(0, 9600));
    turn.end(Date.now());
    const received = await server.nextTurn(5000);
    assert.equal(received.protocol, 1);
    assert.equal(received.rate, 48000);
    assert.equal(received.turn, turn.id);
    assert.equal(received.samples().length, 9600);
    await until(() => r.ended);
    assert.deepEqual(r.audio, [{ bytes: 1920, rate: 48000 }]);
    empty = true;
    const silent = recorder();
    const second = client.startTurn("kitchen", 48000, silent.handlers);
    second.end(Date.now());
    await until(() => silent.ended);
    assert.deepEqual(silent.audio, []);
  } finally {
    await close();
  }
});

Deno.test("v2: pause sends the audio so far, holds what follows until resume, drops it at end", async () => {
  const link = await connected({
    protocol: "v2",
    capabilities: ["stream", "cancel", "text", "ping", "stages", "speculate"],
  });
  try {
    assert.ok(link.server.gatewayCapabilities.includes("speculate"), "the gateway announces it");
    const tenth = pcm.subarray(0, 3200); // 100 ms
    const resumed = link.client.startTurn("kitchen", 16000, recorder().handlers);
    resumed.audio(pcm.subarray(0, 1000)); // less than a chunk: flushed by the pause
    resumed.pause();
    resumed.pause(); // once per silence stretch
    resumed.audio(tenth); // held
    resumed.resume();
    resumed.audio(tenth);
    resumed.end(Date.now());
    const first = await link.server.nextTurn(5000);
    assert.deepEqual(first.pauses.map((p) => p.bytes), [1000], "one pause, after 1000 bytes");
    assert.equal(first.samples().length * 2, 1000 + 3200 + 3200, "held audio sent on resume");

    const ended = link.client.startTurn("kitchen", 16000, recorder().handlers);
    ended.audio(tenth);
    ended.pause();
    ended.audio(tenth); // silence after the pause, then the end: never sent
    ended.end(Date.now());
    const second = await link.server.nextTurn(5000);
    assert.deepEqual(second.pauses.map((p) => p.bytes), [3200]);
    assert.equal(second.samples().length * 2, 3200, "nothing after the pause");
  } finally {
    await link.close();
  }
});

Deno.test("v2: no pause to a server without speculate; its audio streams on", async () => {
  const link = await connected({ protocol: "v2" });
  try {
    const turn = link.client.startTurn("kitchen", 16000, recorder().handlers);
    turn.audio(pcm.subarray(0, 3200));
    turn.pause();
    turn.audio(pcm.subarray(0, 3200));
    turn.end(Date.now());
    const received = await link.server.nextTurn(5000);
    assert.deepEqual(received.pauses, []);
    assert.equal(received.samples().length * 2, 6400, "all audio, as before");
  } finally {
    await link.close();
  }
});

Deno.test("turn ids differ between clients, so a restarted gateway never reuses one", async () => {
  const ids = (client: AiClient) =>
    Array.from({ length: 3 }, () => client.startTurn("kitchen", 16000, recorder().handlers).id);
  const options = { servers: [{ host: "127.0.0.1", port: 1 }], protocol: "v2" as const, log };
  const before = ids(new AiClient(options));
  const after = ids(new AiClient(options));
  assert.equal(new Set([...before, ...after]).size, 6, `${before} and ${after} overlap`);
  for (const id of [...before, ...after]) assert.ok(isValidId(id), id);
  await delay(0); // the turns fail `unavailable` in a microtask
});

Deno.test("a server that stops reading is dropped when the write queue is full, then reconnected", async () => {
  const server = deafServer();
  const client = new AiClient({
    servers: [{ host: "127.0.0.1", port: server.port }],
    protocol: "v1",
    log,
  });
  client.start();
  try {
    await until(() => client.connected);
    const longest = new Uint8Array(30 * 48000 * 2); // one v1 frame of 30 s at 48 kHz
    const turns: ReturnType<typeof recorder>[] = [];
    // The queue's limit plus what the kernel's socket buffers take in (a few MB on loopback).
    for (let sent = 0; sent < MAX_QUEUED_BYTES + 16e6 && client.connections === 1;) {
      const r = recorder();
      turns.push(r);
      const turn = client.startTurn("kitchen", 48000, r.handlers);
      turn.audio(longest);
      turn.end(Date.now());
      sent += longest.length;
      await delay(10);
    }
    // The queued turns are sent again once to the new connection (which overflows too: the
    // server still does not read), then fail.
    await until(() => turns.every((r) => r.failed !== undefined), 20_000);
    assert.ok(turns.some((r) => r.failed === "disconnected"), "the queued turns failed");
    await until(() => client.connected);
    assert.ok(client.connections >= 2);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("v1: a response timeout reopens the connection (in-order answers: the server is stuck)", async () => {
  const server = deafServer();
  const client = new AiClient({
    servers: [{ host: "127.0.0.1", port: server.port }],
    protocol: "v1",
    log,
    responseTimeoutMs: 150,
  });
  client.start();
  try {
    await until(() => client.connected);
    const r = recorder();
    client.startTurn("kitchen", 16000, r.handlers).end(Date.now());
    await until(() => r.failed !== undefined);
    assert.equal(r.failed, "timeout");
    await until(() => client.connections === 2 && client.connected);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("v2: an undecodable server frame is answered with a bad_frame error before the close", async () => {
  const queued = Promise.withResolvers<void>();
  let received: Promise<Uint8Array> | undefined;
  const server = tcpServer(async (conn) => {
    if (received) return; // the reconnection
    received = (async () => {
      await conn.write(serverHello());
      // Not reading until the gateway has audio queued: its error goes out behind it.
      await queued.promise;
      await conn.write(new TextEncoder().encode("this is not a v2 frame\n"));
      return await readToEnd(conn);
    })();
    await received;
  });
  const client = new AiClient({
    servers: [{ host: "127.0.0.1", port: server.port }],
    protocol: "v2",
    log,
  });
  client.start();
  try {
    await until(() => client.connected);
    const turn = client.startTurn("kitchen", 48000, recorder().handlers);
    turn.audio(new Uint8Array(MAX_QUEUED_BYTES - 1e6)); // more than the socket buffers take
    queued.resolve();
    const messages = new FrameDecoder({ version: 2 }).push(await received!)
      .map((item) => item.version === 2 ? item.message : undefined);
    const last = messages.at(-1);
    assert.ok(last?.type === "error", `last message: ${last?.type}`);
    assert.equal(last.code, "bad_frame");
    assert.equal(last.turn, undefined, "a connection error");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("v2: a server that stops answering pings is dropped within the pong timeout of the ping", async () => {
  let timing: Promise<{ pingAt: number; closedAt: number }> | undefined;
  const server = tcpServer(async (conn) => {
    if (timing) return; // the reconnection
    timing = (async () => {
      await conn.write(serverHello());
      const decoder = new FrameDecoder({ version: 2 });
      const buffer = new Uint8Array(4096);
      let pingAt = Infinity;
      while (true) {
        const n = await conn.read(buffer).catch(() => null);
        if (n === null) return { pingAt, closedAt: performance.now() };
        for (const item of decoder.push(buffer.subarray(0, n))) {
          if (item.version === 2 && item.message.type === "ping") {
            pingAt = Math.min(pingAt, performance.now());
          }
        }
      }
    })();
    await timing;
  });
  const client = new AiClient({
    servers: [{ host: "127.0.0.1", port: server.port }],
    protocol: "v2",
    log,
    pingIntervalMs: 500,
    pongTimeoutMs: 100,
  });
  client.start();
  try {
    await until(() => timing !== undefined);
    const { pingAt, closedAt } = await timing!;
    // The next ping tick (500 ms later) is too late: the pong timeout has its own timer.
    assert.ok(closedAt - pingAt >= 90 && closedAt - pingAt < 400, `${closedAt - pingAt} ms`);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("v2: queued state re-arms the response timeout; superseded ends a turn quietly", async () => {
  const states: string[] = [];
  const server = tcpServer(async (conn) => {
    await conn.write(encodeV2({
      type: "hello",
      version: 2,
      role: "server",
      capabilities: ["stream", "cancel", "queue", "continue"],
      ts: Date.now(),
    }));
    const decoder = new FrameDecoder({ version: 2 });
    const buffer = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) return;
      for (const item of decoder.push(buffer.subarray(0, n))) {
        if (item.version !== 2 || item.message.type !== "end") continue;
        const turn = item.message.turn;
        if (states.length === 0) {
          // Waits three response timeouts, saying so every 40 ms, then answers.
          for (let i = 0; i < 6; i++) {
            states.push("queued");
            await conn.write(
              encodeV2({ type: "state", turn, state: "queued", position: 0, ts: Date.now() }),
            );
            await delay(40);
          }
          await conn.write(encodeV2({ type: "end", turn, ts: Date.now() }));
        } else {
          await conn.write(encodeV2({
            type: "error",
            turn,
            code: "superseded",
            message: "superseded",
            ts: Date.now(),
          }));
        }
      }
    }
  });
  const client = new AiClient({
    servers: [{ host: "127.0.0.1", port: server.port }],
    protocol: "v2",
    log,
    responseTimeoutMs: 80,
  });
  client.start();
  try {
    await until(() => client.connected);
    const waited = recorder();
    const seen: string[] = [];
    const turn = client.startTurn("kitchen", 16000, {
      ...waited.handlers,
      state: (state, position) => seen.push(`${state} ${position}`),
    });
    turn.audio(pcm);
    turn.end(Date.now());
    await until(() => waited.ended || waited.failed !== undefined);
    assert.equal(waited.failed, undefined, "no timeout while the server says the turn waits");
    assert.equal(seen.length, 6);
    assert.equal(seen[0], "queued 0");
    const dropped = recorder();
    const second = client.startTurn("kitchen", 16000, dropped.handlers);
    second.end(Date.now());
    await until(() => second.done);
    assert.equal(dropped.failed, undefined, "superseded is not reported as a failure");
    assert.equal(dropped.ended, false);
  } finally {
    client.close();
    await server.close();
  }
});
