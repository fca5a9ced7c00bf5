/**
 * Issue 9's audio-path cases across real processes: the real AI server (`PIPELINE=echo`, so the
 * reply is the utterance itself and its length shows what reached the server), the real gateway,
 * werift devices speaking espeak-ng speech over WebRTC on loopback, and a relay on the AI link
 * (scripts/lib/ai_tap.ts) that decodes what the gateway sent: every turn, its audio, its cancel.
 *
 * - A 400 ms Wi-Fi stall mid-request, then a burst of the held packets (nothing lost): one turn
 *   with all the audio, answered whole.
 * - A device without echo cancellation (the reply back into its mic 10 dB quieter, 150 ms
 *   late): the reply plays to the end, no barge-in, no echo turn.
 * - The user talking over that reply at normal level still barges in: the server receives the
 *   cancel with `played_ms`.
 */
import assert from "node:assert/strict";
import { DevicePeer } from "../device/peer.ts";
import { delay } from "../shared/async.ts";
import type { DeviceEvent } from "../shared/messages.ts";
import { startAiTap } from "../scripts/lib/ai_tap.ts";
import { startGatewayProcess } from "../scripts/lib/gateway_process.ts";
import { startServerProcess } from "../scripts/lib/server_process.ts";
import { speak } from "../scripts/lib/speech.ts";

/** A turn end to end on this 2-core machine, with room to spare. */
const TURN_TIMEOUT_MS = 20_000;
/** After the reply ended, time for an echo turn to show up if one were started. */
const SETTLE_MS = 1500;
/** Share of the spoken audio the turn must carry (the pre-roll adds, trailing silence varies). */
const WHOLE = 0.9;

const request = await speak(
  "Please turn on the kitchen lights and then set a timer for five minutes for the pasta.",
);
const requestMs = (request.samples.length / request.rate) * 1000;
const interruption = await speak("Stop, that is enough, thank you.");

function events(device: DevicePeer, type: DeviceEvent["type"]): DeviceEvent[] {
  return device.events.filter((e) => e.type === type);
}

/**
 * Reply audio `device` received, ms (48 kHz). Under load a reply may reach the device as several
 * talkspurts (a late playback tick leaves a gap), so all of them count.
 */
function receivedMs(device: DevicePeer): number {
  return device.replies.reduce((ms, r) => ms + r.samples().length / 48, 0) | 0;
}

Deno.test("turn-taking on the audio path: stall and burst, speaker echo, real barge-in", async (t) => {
  const server = await startServerProcess({ PIPELINE: "echo" });
  const tap = await startAiTap(server.audioPort);
  const gateway = await startGatewayProcess({
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(server.mqttPort),
    AI_SERVER_HOST: "127.0.0.1",
    AI_SERVER_PORT: String(tap.port),
    AUDIO_SAMPLE_RATE: "16000",
    NAILA_DATA_DIR: server.dataDir,
  });
  const devices: DevicePeer[] = [];
  const device = (id: string, options: Partial<ConstructorParameters<typeof DevicePeer>[0]>) => {
    const peer = new DevicePeer({
      id,
      mqtt: { host: "127.0.0.1", port: server.mqttPort, ...server.login({ device: id }) },
      hostAddresses: ["127.0.0.1"],
      ...options,
    });
    devices.push(peer);
    return peer;
  };
  const logs = (id: string) =>
    gateway.logs.filter((l) => JSON.stringify(l.fields ?? {}).includes(id)).slice(-40)
      .map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.fields ?? {}).slice(0, 300)}`)
      .join("\n");
  try {
    await t.step(
      "a 400 ms stall then a burst mid-request is one turn with all the audio",
      async () => {
        const peer = device("stall", {});
        await peer.connect();
        const spoken = peer.speak(request.samples, request.rate);
        await delay(1500);
        await peer.holdPackets(400);
        await spoken;
        // The turn event comes once the whole reply was sent (under load it may reach the
        // device in several talkspurts).
        await peer.waitForEvent((e) => e.type === "turn", TURN_TIMEOUT_MS);
        await delay(SETTLE_MS);
        const turns = tap.turnsOf("stall");
        assert.equal(turns.length, 1, `one turn reached the server\n${logs("stall")}`);
        assert.ok(turns[0].ended && turns[0].cancelledPlayedMs === undefined);
        assert.ok(
          turns[0].audioMs >= WHOLE * requestMs,
          `the server got ${turns[0].audioMs.toFixed(0)} ms of ${requestMs.toFixed(0)} ms spoken`,
        );
        assert.ok(receivedMs(peer) >= WHOLE * requestMs, `answered whole: ${receivedMs(peer)} ms`);
        assert.equal(events(peer, "interrupted").length, 0);
        assert.equal(events(peer, "turn").length, 1, "one turn answered");
      },
    );

    await t.step(
      "speaker echo at -10 dB, 150 ms: the reply plays to the end, no echo turn",
      async () => {
        const peer = device("echoing", { echo: { gainDb: -10, delayMs: 150 } });
        await peer.connect();
        await peer.speak(request.samples, request.rate);
        // The turn event comes once the whole reply was sent (under load it may reach the
        // device in several talkspurts).
        await peer.waitForEvent((e) => e.type === "turn", TURN_TIMEOUT_MS);
        await delay(SETTLE_MS);
        const turns = tap.turnsOf("echoing");
        assert.equal(turns.length, 1, `no echo turn reached the server\n${logs("echoing")}`);
        assert.equal(turns[0].cancelledPlayedMs, undefined, "the reply was not cancelled");
        assert.equal(events(peer, "interrupted").length, 0, "no barge-in");
        assert.ok(receivedMs(peer) >= WHOLE * requestMs, `played whole: ${receivedMs(peer)} ms`);
        const turnEvents = events(peer, "turn");
        assert.equal(turnEvents.length, 1);
        const played = (turnEvents[0] as Extract<DeviceEvent, { type: "turn" }>).played_ms;
        assert.ok((played ?? 0) >= WHOLE * requestMs, `played_ms ${played}`);
      },
    );

    await t.step("the user talking over that reply at normal level still barges in", async () => {
      const peer = device("bargein", { echo: { gainDb: -10, delayMs: 150 } });
      await peer.connect();
      // The reply may start during the request's trailing silence, before speak() resolves.
      const replyIndex = peer.replies.length;
      await peer.speak(request.samples, request.rate);
      const deadline = performance.now() + TURN_TIMEOUT_MS;
      while (peer.replies.length === replyIndex && performance.now() < deadline) await delay(10);
      assert.ok(
        peer.replies.length > replyIndex,
        `the reply started\n${logs("bargein")}\n${JSON.stringify(tap.turnsOf("bargein"))}`,
      );
      // Talk over the reply once the echo path has heard 1.5 s of it.
      await delay(1500);
      const onset = performance.now();
      await peer.speak(interruption.samples, interruption.rate);
      const interrupted = await peer.waitForEvent((e) => e.type === "interrupted", 10_000);
      assert.ok(interrupted.type === "interrupted");
      const turns = tap.turnsOf("bargein");
      assert.ok(turns.length >= 2, `the interruption is a new turn\n${logs("bargein")}`);
      const cancelled = turns[0];
      assert.ok(cancelled.cancelledPlayedMs !== undefined, "the cancel reached the server");
      assert.ok(
        cancelled.cancelledPlayedMs > 1000 && cancelled.cancelledPlayedMs < requestMs,
        `played_ms ${cancelled.cancelledPlayedMs} of a ${requestMs.toFixed(0)} ms reply`,
      );
      assert.equal(interrupted.played_ms, cancelled.cancelledPlayedMs);
      console.log(
        `barge-in: cancel reached the server ${
          (cancelled.cancelledAt! - onset).toFixed(0)
        } ms after the user's onset (played ${cancelled.cancelledPlayedMs} ms)`,
      );
    });
  } finally {
    for (const peer of devices) await peer.close().catch(() => {});
    const code = await gateway.stop();
    await tap.close();
    await server.stop();
    assert.equal(code, 0, `gateway exit code ${code}`);
  }
});
