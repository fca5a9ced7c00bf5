import assert from "node:assert/strict";
import { delay } from "../shared/async.ts";
import { createLogger } from "../shared/log.ts";
import type { ServerStatus } from "../shared/messages.ts";
import { type AiServerDouble, startAiServerDouble } from "../tests/helpers/ai_server_double.ts";
import { AiServers } from "./ai_servers.ts";
import type { TurnFailure, TurnHandlers } from "./ai_turn.ts";

const log = createLogger("test.ai_servers", { level: "error" });
const RATE = 16000;
/** 100 ms of int16 silence-ish audio at 16 kHz. */
const AUDIO = new Uint8Array(3200).fill(1);

async function until(check: () => boolean, ms = 10_000): Promise<void> {
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

/** A double answering every turn with 20 ms of audio, or never (`silent`). */
function double(silent = false): Promise<AiServerDouble> {
  return startAiServerDouble({
    protocol: "v2",
    reply: () => ({ samples: new Float32Array(320), rate: RATE, silent }),
  });
}

Deno.test("AiServers sends each new turn to the live server with the lowest wait", async () => {
  const [a, b] = [await double(), await double()];
  const servers = new AiServers({
    servers: [{ host: "127.0.0.1", port: a.port }, { host: "127.0.0.1", port: b.port }],
    protocol: "v2",
    log,
  });
  try {
    servers.start();
    await until(() => servers.servers.every((s) => s.live));
    servers.serverStatus(status(a.port, 4000, 4));
    servers.serverStatus(status(b.port, 0, 0));
    // A status for a server this gateway does not use changes nothing.
    servers.serverStatus(status(1, 0, 0));
    const first = outcome();
    servers.startTurn("kitchen", RATE, first.handlers).end(Date.now());
    await until(() => first.ended);
    assert.equal(b.turns.length, 1);
    assert.equal(a.turns.length, 0);
    // Each turn placed on b since its status adds b's turn time (1 s): after four, b's projected
    // wait (4 s) equals a's and the fewest queued turns decide; turns then alternate.
    const open = Array.from({ length: 8 }, (_, i) => {
      const turn = servers.startTurn(`d${i}`, RATE, outcome().handlers);
      turn.audio(AUDIO);
      return turn;
    });
    await until(() => a.turns.length + b.turns.length === 9);
    assert.ok(a.turns.length >= 2, `a got ${a.turns.length} of 8 turns`);
    assert.ok(b.turns.length >= 4 + 1, `b got ${b.turns.length - 1} of 8 turns`);
    for (const turn of open) turn.cancel(0);
  } finally {
    servers.close();
    await a.close();
    await b.close();
  }
});

Deno.test("AiServers replays the turns of a server that dies on another live server", async () => {
  const silent = await double(true);
  const answering = await double();
  const servers = new AiServers({
    servers: [{ host: "127.0.0.1", port: silent.port }, {
      host: "127.0.0.1",
      port: answering.port,
    }],
    protocol: "v2",
    log,
  });
  try {
    servers.start();
    await until(() => servers.servers.every((s) => s.live));
    // The answering server looks busy, so every turn goes to the silent one first.
    servers.serverStatus(status(answering.port, 60_000, 60));
    const outcomes = Array.from({ length: 6 }, (_, i) => {
      const r = outcome();
      const turn = servers.startTurn(`d${i}`, RATE, r.handlers);
      turn.audio(AUDIO);
      turn.end(Date.now());
      return r;
    });
    await until(() => silent.turns.filter((t) => t.endedAt !== undefined).length === 6);
    assert.equal(answering.turns.length, 0);
    await silent.close();
    await until(() => outcomes.every((r) => r.ended || r.failed !== undefined));
    assert.deepEqual(outcomes.map((r) => r.failed), Array(6).fill(undefined));
    assert.equal(answering.turns.length, 6);
    // Replayed whole: every turn's audio reached the other server.
    for (const turn of answering.turns) assert.equal(turn.samples().length, AUDIO.length / 2);
  } finally {
    servers.close();
    await silent.close();
    await answering.close();
  }
});

Deno.test("AiServers holds turns while no server is live and sends them to the first back", async () => {
  const a = await double();
  const port = a.port;
  await a.close();
  const servers = new AiServers({
    servers: [{ host: "127.0.0.1", port }, { host: "127.0.0.1", port: 1 }],
    protocol: "v2",
    log,
    outageHoldMs: 20_000,
  });
  let back: AiServerDouble | undefined;
  try {
    servers.start();
    const r = outcome();
    const turn = servers.startTurn("kitchen", RATE, r.handlers);
    turn.audio(AUDIO);
    turn.end(Date.now());
    assert.equal(servers.connected, false);
    assert.equal(servers.pendingTurns, 1);
    back = await startAiServerDouble({
      protocol: "v2",
      port,
      reply: () => ({ samples: new Float32Array(320), rate: RATE }),
    });
    await until(() => r.ended || r.failed !== undefined);
    assert.equal(r.failed, undefined);
    assert.equal(back.turns.length, 1);
  } finally {
    servers.close();
    await back?.close();
  }
});

Deno.test("AiServers refuses an empty server list", () => {
  assert.throws(() => new AiServers({ servers: [], protocol: "v2", log }), /at least one server/);
});
