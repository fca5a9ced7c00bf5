/**
 * A continuation after the AI server restarted (docs/protocol.md "Continuing a turn"): the gateway's
 * AI link (gateway/ai_servers.ts, gateway/ai_turn.ts) against the real server (server/mod.ts,
 * `PIPELINE=echo`, so the reply is the request's own audio and its length shows what reached the
 * server as one turn) over real TCP. The first part is answered; the server restarts on the same
 * port; the user goes on: the new turn says `continues` about a turn the new server never saw,
 * gets `unknown_turn`, and sends the whole request again as one plain turn: nothing is lost.
 */
import assert from "node:assert/strict";
import { delay } from "../shared/async.ts";
import { float32ToPcm } from "../shared/audio.ts";
import { readAudioSecret } from "../shared/audio_auth.ts";
import { createLogger } from "../shared/log.ts";
import { AiServers } from "../gateway/ai_servers.ts";
import type { Turn, TurnFailure, TurnHandlers } from "../gateway/ai_turn.ts";
import { type LoopbackServer, startLoopbackServer } from "../scripts/lib/loopback_server.ts";

/** Whisper's rate; the echo pipeline answers at its output rate. */
const RATE = 16000;
/** Long enough for the server's `unknown_turn` to come back mid-utterance on loopback. */
const RESEND_WAIT_MS = 300;
/** Generous end-to-end guard for one turn on a loaded 2-core machine. */
const TURN_TIMEOUT_MS = 20_000;

async function until(check: () => boolean, what: string): Promise<void> {
  const end = performance.now() + TURN_TIMEOUT_MS;
  while (!check()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/** Reply audio (ms of it), the end, a failure. */
function recorder() {
  const r = { replyMs: 0, ended: false, failed: undefined as string | undefined };
  const handlers: TurnHandlers = {
    audio: (pcm, rate) => void (r.replyMs += (pcm.length / 2 / rate) * 1000),
    end: () => void (r.ended = true),
    fail: (reason: TurnFailure, message) => void (r.failed = `${reason}: ${message}`),
  };
  return { r, handlers };
}

/** `ms` of a 0.2-amplitude tone at {@link RATE}, as int16 bytes. */
function speech(ms: number): Uint8Array {
  const samples = new Float32Array((RATE * ms) / 1000);
  for (let i = 0; i < samples.length; i++) samples[i] = 0.2 * Math.sin(i / 5);
  return float32ToPcm(samples);
}

/**
 * A first part answered, the server restarted on the same port, then the continuation:
 * `speak(t2)` sends its audio and ends it. Returns the continuation's reply.
 */
async function continueAfterRestart(speak: (turn: Turn) => Promise<void>) {
  let server: LoopbackServer = await startLoopbackServer({ PIPELINE: "echo" });
  const port = server.audioPort;
  const client = new AiServers({
    servers: [{ host: "127.0.0.1", port }],
    protocol: "v2",
    log: createLogger("test.resend", { level: "error" }),
    // The restarted server has a data directory (and secret) of its own.
    access: { secret: () => readAudioSecret(server.dataDir) },
  });
  const changes: boolean[] = [];
  client.onConnection((up: boolean) => changes.push(up));
  client.start();
  try {
    await until(() => client.connected, "the first connection");
    const first = recorder();
    const t1 = client.startTurn("kitchen", RATE, first.handlers);
    t1.audio(speech(600));
    t1.end(Date.now());
    await until(() => first.r.ended || first.r.failed !== undefined, "the first answer");
    assert.equal(first.r.failed, undefined);
    assert.ok(Math.abs(first.r.replyMs - 600) < 30, `first answer ${first.r.replyMs} ms`);

    // The server restarts on the same port between the answer and the continuation.
    await server.close();
    await until(() => !client.connected, "the link to drop");
    server = await startLoopbackServer({ PIPELINE: "echo", AUDIO_SOCKET_PORT: String(port) });
    await until(() => client.connected, "the link to come back");

    const whole = recorder();
    const t2 = client.startTurn("kitchen", RATE, whole.handlers, { continues: t1 });
    t1.supersede(t2.continued);
    assert.equal(t2.continued, true, "the new server announced continue: start.continues goes out");
    await speak(t2);
    await until(() => whole.r.ended || whole.r.failed !== undefined, "the whole answer");
    assert.deepEqual(changes, [true, false, true]);
    return whole.r;
  } finally {
    client.close();
    await server.close();
  }
}

Deno.test("after a server restart, an ended continuation is sent again whole and answered once", async () => {
  const reply = await continueAfterRestart((t2) => {
    t2.audio(speech(400));
    t2.end(Date.now());
    return Promise.resolve();
  });
  assert.equal(reply.failed, undefined, "unknown_turn does not fail the continuation");
  assert.ok(
    Math.abs(reply.replyMs - 1000) < 30,
    `the answer carries both parts (1000 ms): ${reply.replyMs} ms`,
  );
});

Deno.test("after a server restart, a continuation still streaming is sent again whole", async () => {
  const reply = await continueAfterRestart(async (t2) => {
    t2.audio(speech(200));
    // The server's unknown_turn comes back while the user still speaks.
    await delay(RESEND_WAIT_MS);
    t2.audio(speech(200));
    t2.end(Date.now());
  });
  assert.equal(reply.failed, undefined, "unknown_turn does not fail the continuation");
  assert.ok(
    Math.abs(reply.replyMs - 1000) < 30,
    `the answer carries both parts and all of the continuation (1000 ms): ${reply.replyMs} ms`,
  );
});
