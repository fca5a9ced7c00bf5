/**
 * The gateway's AI link with several servers (issue 14, docs/scaling.md): two real AI servers
 * (`PIPELINE=echo` child processes sharing one secret, tests/helpers/echo_server.ts), each behind
 * a recording relay (tests/helpers/ai_tap.ts) that says which turns reached it. Load comes from
 * server statuses handed to the link as signaling would; failover from a real server killed with
 * turns open on it.
 */
import assert from "node:assert/strict";
import { delay } from "../shared/async.ts";
import { createLogger } from "../shared/log.ts";
import type { ServerStatus } from "../shared/messages.ts";
import { startAiTap } from "../tests/helpers/ai_tap.ts";
import { startEchoServer } from "../tests/helpers/echo_server.ts";
import { AiServers } from "./ai_servers.ts";
import type { TurnFailure, TurnHandlers } from "./ai_turn.ts";

const log = createLogger("test.ai_servers", { level: "error" });
const RATE = 16000;
/** 100 ms of int16 audio at 16 kHz. */
const AUDIO = new Uint8Array(3200).fill(1);

async function until(check: () => boolean, ms = 30_000): Promise<void> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) throw new Error("condition not met in time");
    await delay(5);
  }
}

function outcome() {
  const r = {
    ended: false,
    failed: undefined as TurnFailure | undefined,
    handlers: {} as TurnHandlers,
  };
  r.handlers = { end: () => void (r.ended = true), fail: (reason) => void (r.failed = reason) };
  return r;
}

function status(port: number, waitMs: number, queued: number): ServerStatus {
  return {
    online: true,
    timestamp: new Date().toISOString(),
    audio_socket_port: port,
    load: {
      queued_turns: queued,
      queued_audio_s: 0,
      active_devices: queued,
      wait_ms: waitMs,
      turn_ms: 1000,
    },
  };
}

Deno.test("AiServers over two real servers: least loaded first, failover, the outage hold", async (t) => {
  const a = await startEchoServer();
  const b = await startEchoServer({ secretOf: a });
  const ta = await startAiTap(a.port);
  const tb = await startAiTap(b.port);
  // The link knows the servers by the taps' ports; statuses name those ports.
  const servers = new AiServers({
    servers: [{ host: "127.0.0.1", port: ta.port }, { host: "127.0.0.1", port: tb.port }],
    protocol: "v2",
    log,
    outageHoldMs: 30_000,
    access: { secret: a.secret },
  });
  try {
    servers.start();
    await until(() => servers.servers.every((s) => s.live));

    await t.step("each new turn goes to the live server with the lowest wait", async () => {
      servers.serverStatus(status(ta.port, 4000, 4));
      servers.serverStatus(status(tb.port, 0, 0));
      // A status for a server this gateway does not use changes nothing.
      servers.serverStatus(status(1, 0, 0));
      const first = outcome();
      servers.startTurn("kitchen", RATE, first.handlers).end(Date.now());
      await until(() => first.ended);
      assert.equal(tb.turns.length, 1);
      assert.equal(ta.turns.length, 0);
      // Each turn placed on b since its status adds b's turn time (1 s): after four, b's projected
      // wait (4 s) equals a's and the fewest queued turns decide; turns then alternate.
      const open = Array.from({ length: 8 }, (_, i) => {
        const turn = servers.startTurn(`d${i}`, RATE, outcome().handlers);
        turn.audio(AUDIO);
        return turn;
      });
      await until(() => ta.turns.length + tb.turns.length === 9);
      assert.ok(ta.turns.length >= 2, `a got ${ta.turns.length} of 8 turns`);
      assert.ok(tb.turns.length >= 4 + 1, `b got ${tb.turns.length - 1} of 8 turns`);
      for (const turn of open) turn.cancel(0);
    });

    await t.step(
      "a continuation goes to its earlier turn's server after that reply ended, and only there",
      async () => {
        servers.serverStatus(status(ta.port, 0, 0));
        servers.serverStatus(status(tb.port, 60_000, 60));
        const first = outcome();
        const earlier = servers.startTurn("cont", RATE, first.handlers);
        earlier.audio(AUDIO);
        earlier.end(Date.now());
        await until(() => first.ended);
        assert.equal(ta.turnsOf("cont").length, 1);
        // Now b looks idle: a new turn would go there, the continuation must not.
        servers.serverStatus(status(ta.port, 60_000, 60));
        servers.serverStatus(status(tb.port, 0, 0));
        const second = outcome();
        const turn = servers.startTurn("cont", RATE, second.handlers, { continues: earlier });
        assert.equal(turn.continued, true, "a takes the earlier turn over");
        earlier.supersede(turn.continued);
        turn.audio(AUDIO);
        turn.end(Date.now());
        await until(() => second.ended || second.failed !== undefined);
        assert.equal(second.failed, undefined);
        assert.deepEqual(tb.turnsOf("cont"), [], "b never saw the request");
        const [was, now] = ta.turnsOf("cont");
        assert.equal(now.id, turn.id);
        assert.equal(now.error, undefined, "a knew the earlier turn");
        assert.equal(now.audioBytes, AUDIO.length, "only the new part was sent");
        assert.equal(was.cancelledPlayedMs, undefined, "taken over, not cancelled");
        // The echo answers the merged request: both parts, once.
        assert.ok(now.replyMs >= 2 * 100 * 0.9, `reply ${now.replyMs} ms`);
      },
    );

    await t.step(
      "a server killed with turns open has them replayed whole on the other",
      async () => {
        // b looks busy, so every turn goes to a; a hangs (SIGSTOP) and does not answer them.
        servers.serverStatus(status(ta.port, 0, 0));
        servers.serverStatus(status(tb.port, 60_000, 60));
        // A turn answered by a, continued once a is gone (below).
        const first = outcome();
        const earlier = servers.startTurn("gone", RATE, first.handlers);
        earlier.audio(AUDIO);
        earlier.end(Date.now());
        await until(() => first.ended);
        assert.equal(ta.turnsOf("gone").length, 1);
        a.freeze();
        const before = tb.turns.length;
        const outcomes = Array.from({ length: 6 }, (_, i) => {
          const r = outcome();
          const turn = servers.startTurn(`f${i}`, RATE, r.handlers);
          turn.audio(AUDIO);
          turn.end(Date.now());
          return r;
        });
        await until(() =>
          ta.turns.filter((turn) => turn.device.startsWith("f") && turn.ended).length === 6
        );
        assert.equal(tb.turns.length, before);
        await a.stop("SIGKILL");
        await until(() => outcomes.every((r) => r.ended || r.failed !== undefined));
        assert.deepEqual(outcomes.map((r) => r.failed), Array(6).fill(undefined));
        const replayed = tb.turns.slice(before);
        assert.equal(replayed.length, 6);
        // Replayed whole: every turn's audio reached the other server.
        for (const turn of replayed) assert.equal(turn.audioBytes, AUDIO.length);

        // The earlier turn's server is gone: its continuation goes to b as one plain turn with
        // both parts (b never had the earlier turn), not as a `continues` b must refuse.
        const second = outcome();
        const turn = servers.startTurn("gone", RATE, second.handlers, { continues: earlier });
        assert.equal(turn.continued, false, "the caller cancels the earlier turn itself");
        earlier.supersede(turn.continued);
        turn.audio(AUDIO);
        turn.end(Date.now());
        await until(() => second.ended || second.failed !== undefined);
        assert.equal(second.failed, undefined);
        const onB = tb.turnsOf("gone");
        assert.equal(onB.length, 1, "one start: nothing refused and sent again");
        assert.equal(onB[0].id, turn.id);
        assert.equal(onB[0].error, undefined);
        assert.equal(onB[0].audioBytes, 2 * AUDIO.length, "both parts");
      },
    );

    await t.step("with no server live a turn waits, and goes to the first one back", async () => {
      await b.stop();
      await until(() => !servers.connected);
      const r = outcome();
      const turn = servers.startTurn("kitchen", RATE, r.handlers);
      turn.audio(AUDIO);
      turn.end(Date.now());
      assert.equal(servers.pendingTurns, 1);
      const before = tb.turns.length;
      await b.start();
      await until(() => r.ended || r.failed !== undefined);
      assert.equal(r.failed, undefined);
      assert.equal(tb.turns.length, before + 1);
      assert.equal(tb.turns.at(-1)!.id, turn.id);
    });
  } finally {
    servers.close();
    await ta.close();
    await tb.close();
    await a.close();
    await b.close();
  }
});

Deno.test("AiServers refuses an empty server list", () => {
  assert.throws(() => new AiServers({ servers: [], protocol: "v2", log }), /at least one server/);
});
