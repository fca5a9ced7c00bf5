/**
 * The gateway's AI link with one server: the real AI server (`PIPELINE=echo`, a child process,
 * tests/helpers/echo_server.ts) behind a recording relay (tests/helpers/ai_tap.ts) that says what
 * reached the server and can slow or cut the link. Servers that misbehave as ours never does (a
 * hung peer, garbage on the wire, no pongs) are raw TCP sockets written here.
 */
import assert from "node:assert/strict";
import { float32ToPcm } from "../shared/audio.ts";
import { delay } from "../shared/async.ts";
import { isValidId } from "../shared/ids.ts";
import { encodeV2, FrameDecoder } from "../shared/frame_codec.ts";
import { createLogger } from "../shared/log.ts";
import { type AiTap, startAiTap } from "../tests/helpers/ai_tap.ts";
import { type EchoServer, startEchoServer } from "../tests/helpers/echo_server.ts";
import { MAX_QUEUED_BYTES } from "./ai_connection.ts";
import { AiServers, type AiServersOptions } from "./ai_servers.ts";
import type { TurnFailure, TurnHandlers } from "./ai_turn.ts";

const log = createLogger("test.ai", { level: "error" });
/** 1 s at 16 kHz. */
const pcm = float32ToPcm(new Float32Array(16000).fill(0.1));
/** Bytes of one reply chunk of the echo: 500 ms (server/pipeline.ts REPLY_CHUNK_MS) at 16 kHz. */
const ECHO_CHUNK_BYTES = 16000;

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) throw new Error("condition not met in time");
    await delay(5);
  }
}

function recorder() {
  const r = {
    audio: [] as { bytes: number; rate: number }[],
    ended: false,
    stages: undefined as Record<string, number> | undefined,
    failed: undefined as TurnFailure | undefined,
    handlers: undefined as unknown as TurnHandlers,
  };
  r.handlers = {
    audio: (pcm, rate) => r.audio.push({ bytes: pcm.length, rate }),
    end: (stages) => {
      r.ended = true;
      r.stages = stages;
    },
    fail: (reason) => void (r.failed = reason),
  };
  return r;
}

/** A started link to `port` (the tap or the server) that authenticates with `secret`. */
function client(port: number, options: Partial<AiServersOptions> & { secret?: string } = {}) {
  const { secret, ...rest } = options;
  const ai = new AiServers({
    servers: [{ host: "127.0.0.1", port }],
    protocol: "v2",
    log,
    access: { secret },
    ...rest,
  });
  ai.start();
  return ai;
}

/** The tap's turns with `id` (a replayed turn shows once per time it was sent). */
const sent = (tap: AiTap, id: string) => tap.turns.filter((t) => t.id === id);

/** Runs `fn` with a real echo server and a tap in front of it; cleans both up. */
async function withEchoServer(
  fn: (server: EchoServer, tap: AiTap) => Promise<void>,
): Promise<void> {
  const server = await startEchoServer();
  const tap = await startAiTap(server.port);
  try {
    await fn(server, tap);
  } finally {
    await tap.close();
    await server.close();
  }
}

Deno.test("AiServers against the real server: turns, echoed replies, cancel, timeout, v1", async (t) => {
  await withEchoServer(async (server, tap) => {
    const { secret } = server;
    /** A step with a link through the tap, connected; the tap carries all bytes again after. */
    const linkStep = (
      name: string,
      options: Parameters<typeof client>[1],
      fn: (ai: AiServers) => Promise<void>,
    ) =>
      t.step(name, async () => {
        const ai = client(tap.port, options);
        try {
          await until(() => ai.connected);
          await fn(ai);
        } finally {
          ai.close();
          tap.limitReplies(undefined);
        }
      });

    await linkStep("v2: a turn streams start, 100 ms chunks and end; the reply streams back", {
      secret,
    }, async (ai) => {
      const r = recorder();
      const turn = ai.startTurn("kitchen", 16000, r.handlers);
      turn.audio(pcm);
      turn.end(Date.now() - 300);
      await until(() => r.ended);
      const [received] = sent(tap, turn.id);
      assert.equal(received.device, "kitchen");
      assert.equal(received.rate, 16000);
      assert.deepEqual(received.seqs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.equal(received.audioBytes, pcm.length);
      // The echo: the whole utterance back, in the server's 500 ms chunks, at the turn's rate.
      assert.deepEqual(r.audio, [
        { bytes: ECHO_CHUNK_BYTES, rate: 16000 },
        { bytes: ECHO_CHUNK_BYTES, rate: 16000 },
      ]);
      assert.equal(typeof r.stages?.echo_ms, "number", "the server's stages reach the turn");
      assert.equal(ai.pendingTurns, 0);
      assert.ok(tap.gatewayCapabilities.includes("speculate"), "the gateway announces it");
      assert.notEqual(ai.startTurn("kitchen", 16000, recorder().handlers).id, turn.id);
    });

    await linkStep("v2: cancel tells the server how much was played and drops late audio", {
      secret,
    }, async (ai) => {
      // A slow link back: the reply's two chunks arrive about half a second apart.
      tap.limitReplies(2 * ECHO_CHUNK_BYTES);
      const r = recorder();
      const turn = ai.startTurn("kitchen", 16000, r.handlers);
      turn.audio(pcm);
      turn.end(Date.now());
      await until(() => r.audio.length > 0);
      turn.cancel(420);
      await until(() => sent(tap, turn.id)[0].cancelledPlayedMs === 420);
      const count = r.audio.length;
      await delay(1000); // the second chunk has arrived meanwhile
      assert.equal(r.audio.length, count, "no audio after the cancel");
      assert.equal(r.ended, false);
    });

    await linkStep("a reply that does not come times the turn out (spec 4.4) and frees it", {
      secret,
      responseTimeoutMs: 200,
    }, async (ai) => {
      tap.limitReplies(0); // the server answers, but nothing reaches the gateway
      const r = recorder();
      const turn = ai.startTurn("kitchen", 16000, r.handlers);
      turn.end(Date.now());
      await until(() => r.failed !== undefined);
      assert.equal(r.failed, "timeout");
      assert.equal(ai.pendingTurns, 0);
      await until(() => sent(tap, turn.id)[0].cancelledPlayedMs === 0);
    });

    await linkStep("a device's turn still open when its next starts ends quietly (superseded)", {
      secret,
    }, async (ai) => {
      const dropped = recorder();
      const first = ai.startTurn("kitchen", 16000, dropped.handlers);
      first.audio(pcm.subarray(0, 3200));
      const answered = recorder();
      const second = ai.startTurn("kitchen", 16000, answered.handlers);
      second.audio(pcm.subarray(0, 3200));
      second.end(Date.now());
      await until(() => first.done && answered.ended);
      assert.equal(dropped.failed, undefined, "superseded is not reported as a failure");
      assert.equal(dropped.ended, false);
      assert.match(sent(tap, first.id)[0].error ?? "", /^superseded/);
    });

    await linkStep(
      "v1: the utterance goes whole in one spec 4.2 frame; an empty one is answered empty",
      { protocol: "v1" },
      async (ai) => {
        const r = recorder();
        const turn = ai.startTurn("kitchen", 48000, r.handlers);
        turn.audio(pcm.subarray(0, 9600));
        turn.audio(pcm.subarray(0, 9600));
        turn.end(Date.now());
        await until(() => r.ended);
        const [received] = sent(tap, turn.id);
        assert.equal(received.protocol, 1);
        assert.equal(received.rate, 48000);
        assert.equal(received.audioBytes, 19200);
        // Spec 6.1's server answers at 48 kHz: the echo comes back whole in one frame.
        assert.deepEqual(r.audio, [{ bytes: 19200, rate: 48000 }]);
        const silent = recorder();
        const second = ai.startTurn("kitchen", 48000, silent.handlers);
        second.end(Date.now());
        await until(() => silent.ended);
        assert.deepEqual(silent.audio, []);
        assert.equal(sent(tap, second.id)[0].replyBytes, 0);
      },
    );
  });
});

Deno.test("AiServers through real server restarts: the outage hold, replay and backoff", async (t) => {
  await withEchoServer(async (server, tap) => {
    const { secret } = server;
    /** A link that waits `outageHoldMs` for a restarting server, and its connection changes. */
    const restartingLink = (outageHoldMs: number) => {
      const ai = client(tap.port, { secret, outageHoldMs });
      const changes: boolean[] = [];
      ai.onConnection((connected) => changes.push(connected));
      return { ai, changes };
    };

    await t.step(
      "a turn cut off by a restart before its reply is sent again, whole, and answered",
      async () => {
        const { ai, changes } = restartingLink(30_000);
        try {
          await until(() => ai.connected);
          const r = recorder();
          const turn = ai.startTurn("kitchen", 16000, r.handlers);
          turn.audio(pcm.subarray(0, 9600)); // 300 ms: three chunks reach the first server
          await until(() => sent(tap, turn.id)[0]?.seqs.length === 3);
          await server.stop();
          await until(() => !ai.connected);
          turn.audio(pcm.subarray(0, 6400)); // said while the server restarts
          turn.end(Date.now());
          assert.equal(r.failed, undefined, "the turn waits for the server");
          await server.start();
          await until(() => r.ended || r.failed !== undefined, 30_000);
          assert.equal(r.failed, undefined);
          const replayed = sent(tap, turn.id).at(-1)!;
          assert.equal(replayed.audioBytes, 9600 + 6400, "the whole utterance, once");
          assert.equal(r.audio.reduce((sum, a) => sum + a.bytes, 0), 9600 + 6400, "echoed whole");
          assert.deepEqual(changes, [true, false, true]);
        } finally {
          ai.close();
        }
      },
    );

    await t.step("a turn is not sent again once its reply began, nor more than once", async () => {
      const { ai } = restartingLink(30_000);
      try {
        await until(() => ai.connected);
        tap.limitReplies(ECHO_CHUNK_BYTES); // the reply trickles in
        const replying = recorder();
        const first = ai.startTurn("kitchen", 16000, replying.handlers);
        first.audio(pcm);
        first.end(Date.now());
        await until(() => replying.audio.length > 0);
        tap.cut(); // the link dies mid-reply
        await until(() => replying.failed !== undefined);
        assert.equal(replying.failed, "disconnected", "half a reply is not asked for again");

        // A link that dies on every turn before its answer: the turn is replayed once, then fails.
        tap.limitReplies(undefined);
        await until(() => ai.connected);
        tap.cutOnEnd(true);
        const poison = recorder();
        const second = ai.startTurn("kitchen", 16000, poison.handlers);
        second.audio(pcm.subarray(0, 3200));
        second.end(Date.now());
        await until(() => poison.failed !== undefined);
        assert.equal(sent(tap, second.id)[1]?.audioBytes, 3200, "replayed whole");
        assert.equal(poison.failed, "disconnected");
        assert.equal(sent(tap, second.id).length, 2, "sent twice, not more");
      } finally {
        ai.close();
        tap.limitReplies(undefined);
        tap.cutOnEnd(false);
      }
    });

    await t.step("a turn started while the server is away waits for it", async () => {
      const { ai } = restartingLink(30_000);
      try {
        await until(() => ai.connected);
        await server.stop();
        await until(() => !ai.connected);
        const early = recorder();
        const turn = ai.startTurn("kitchen", 16000, early.handlers);
        turn.audio(pcm.subarray(0, 3200));
        turn.end(Date.now());
        await server.start();
        await until(() => early.ended || early.failed !== undefined, 30_000);
        assert.equal(early.failed, undefined);
        assert.equal(sent(tap, turn.id).length, 1);
      } finally {
        ai.close();
      }
    });

    await t.step("after an outage longer than the hold, waiting and new turns fail", async () => {
      await server.stop();
      // Away since before the link started: a turn waits only the hold, then fails.
      const { ai } = restartingLink(300);
      try {
        const held = recorder();
        ai.startTurn("kitchen", 16000, held.handlers).audio(pcm.subarray(0, 3200));
        await until(() => held.failed !== undefined);
        assert.equal(held.failed, "unavailable");
        const late = recorder();
        ai.startTurn("kitchen", 16000, late.handlers);
        await delay(0);
        assert.equal(late.failed, "unavailable", "no wait once the outage outlasted the hold");
        assert.equal(ai.pendingTurns, 0);
      } finally {
        ai.close();
      }
    });

    await t.step("the link reconnects with backoff to a server that comes back later", async () => {
      await server.start();
      const { ai, changes } = restartingLink(200);
      try {
        await until(() => ai.connected);
        await server.stop();
        await until(() => !ai.connected);
        await server.start(); // a process start: the server is away for a second or more
        await until(() => ai.connected, 30_000);
        assert.deepEqual(changes, [true, false, true]);
        assert.ok(ai.connections >= 2);
      } finally {
        ai.close();
      }
    });
  });
});

Deno.test("a continuation started while the link is down names its turn on the same server once it is back", async () => {
  await withEchoServer(async (server, tap) => {
    const ai = client(tap.port, { secret: server.secret, outageHoldMs: 10_000 });
    try {
      await until(() => ai.connected);
      const first = recorder();
      const earlier = ai.startTurn("kitchen", 16000, first.handlers);
      earlier.audio(pcm);
      earlier.end(Date.now());
      await until(() => first.ended); // answered, not committed: the server holds it
      tap.refuse(true);
      tap.cut();
      await until(() => !ai.connected);
      const second = recorder();
      const turn = ai.startTurn("kitchen", 16000, second.handlers, { continues: earlier });
      earlier.supersede(turn.continued);
      turn.audio(pcm);
      turn.end(Date.now());
      tap.refuse(false);
      await until(() => second.ended, 30_000);
      const [received] = sent(tap, turn.id);
      assert.equal(received.continues, earlier.id, "named, not sent whole");
      assert.equal(received.audioBytes, pcm.length, "only its own audio went out");
      assert.equal(received.error, undefined);
      // The server took the waiting turn over: the echo answers the merged request, both parts.
      assert.equal(second.audio.reduce((n, a) => n + a.bytes, 0), 2 * pcm.length);
      assert.equal(sent(tap, earlier.id).length, 1, "the earlier turn was not sent again");
      assert.equal(second.failed, undefined);
    } finally {
      ai.close();
    }
  });
});

Deno.test("turn ids differ between clients, so a restarted gateway never reuses one", async () => {
  const ids = (ai: AiServers) =>
    Array.from({ length: 3 }, () => ai.startTurn("kitchen", 16000, recorder().handlers).id);
  const options = { servers: [{ host: "127.0.0.1", port: 1 }], protocol: "v2" as const, log };
  const before = ids(new AiServers(options));
  const after = ids(new AiServers(options));
  assert.equal(new Set([...before, ...after]).size, 6, `${before} and ${after} overlap`);
  for (const id of [...before, ...after]) assert.ok(isValidId(id), id);
  await delay(0); // the turns fail `unavailable` in a microtask
});

/** A raw TCP peer run by the test (not our server): `serve` gets each connection it accepts. */
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

/** A v2 hello as a server would send it, to open a misbehaving peer's stream. */
const serverHello = () =>
  encodeV2({
    type: "hello",
    version: 2,
    role: "server",
    capabilities: ["stream", "cancel", "ping"],
    ts: Date.now(),
  });

/** A hung peer: accepts, then never reads nor answers. */
const deafServer = () => tcpServer(() => Promise.resolve());

Deno.test("a server that stops reading is dropped when the write queue is full, then reconnected", async () => {
  const server = deafServer();
  const ai = client(server.port, { protocol: "v1" });
  try {
    await until(() => ai.connected);
    const longest = new Uint8Array(30 * 48000 * 2); // one v1 frame of 30 s at 48 kHz
    const turns: ReturnType<typeof recorder>[] = [];
    // The queue's limit plus what the kernel's socket buffers take in (a few MB on loopback).
    for (let sent = 0; sent < MAX_QUEUED_BYTES + 16e6 && ai.connections === 1;) {
      const r = recorder();
      turns.push(r);
      const turn = ai.startTurn("kitchen", 48000, r.handlers);
      turn.audio(longest);
      turn.end(Date.now());
      sent += longest.length;
      await delay(10);
    }
    // The queued turns are sent again once to the new connection (which overflows too: the
    // peer still does not read), then fail.
    await until(() => turns.every((r) => r.failed !== undefined), 20_000);
    assert.ok(turns.some((r) => r.failed === "disconnected"), "the queued turns failed");
    await until(() => ai.connected);
    assert.ok(ai.connections >= 2);
  } finally {
    ai.close();
    await server.close();
  }
});

Deno.test("v1: a response timeout reopens the connection (in-order answers: the server is stuck)", async () => {
  const server = deafServer();
  const ai = client(server.port, { protocol: "v1", responseTimeoutMs: 150 });
  try {
    await until(() => ai.connected);
    const r = recorder();
    ai.startTurn("kitchen", 16000, r.handlers).end(Date.now());
    await until(() => r.failed !== undefined);
    assert.equal(r.failed, "timeout");
    await until(() => ai.connections === 2 && ai.connected);
  } finally {
    ai.close();
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
  const ai = client(server.port);
  try {
    await until(() => ai.connected);
    const turn = ai.startTurn("kitchen", 48000, recorder().handlers);
    turn.audio(new Uint8Array(MAX_QUEUED_BYTES - 1e6)); // more than the socket buffers take
    queued.resolve();
    const messages = new FrameDecoder({ version: 2 }).push(await received!)
      .map((item) => item.version === 2 ? item.message : undefined);
    const last = messages.at(-1);
    assert.ok(last?.type === "error", `last message: ${last?.type}`);
    assert.equal(last.code, "bad_frame");
    assert.equal(last.turn, undefined, "a connection error");
  } finally {
    ai.close();
    await server.close();
  }
});

Deno.test("v2: a server that stops answering pings is dropped after the pong timeout of its first ping", async () => {
  let timing: Promise<{ pings: number; pingAt: number; closedAt: number }> | undefined;
  const server = tcpServer(async (conn) => {
    if (timing) return; // the reconnection
    timing = (async () => {
      await conn.write(serverHello());
      const decoder = new FrameDecoder({ version: 2 });
      const buffer = new Uint8Array(4096);
      let pings = 0;
      let pingAt = Infinity;
      while (true) {
        const n = await conn.read(buffer).catch(() => null);
        if (n === null) return { pings, pingAt, closedAt: performance.now() };
        for (const item of decoder.push(buffer.subarray(0, n))) {
          if (item.version === 2 && item.message.type === "ping") {
            pings++;
            pingAt = Math.min(pingAt, performance.now());
          }
        }
      }
    })();
    await timing;
  });
  const ai = client(server.port, { pingIntervalMs: 500, pongTimeoutMs: 100 });
  try {
    await until(() => timing !== undefined);
    const { pings, pingAt, closedAt } = await timing!;
    // The first unanswered ping ends the connection: no later ping tick comes first.
    assert.equal(pings, 1, "one ping before the close");
    assert.ok(closedAt - pingAt >= 90, `closed ${closedAt - pingAt} ms after the ping`);
  } finally {
    ai.close();
    await server.close();
  }
});
