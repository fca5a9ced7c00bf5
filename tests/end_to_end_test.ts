/**
 * The real server (full pipeline, generated Whisper fixture, built-in assistant, espeak-ng) and
 * the real gateway, each in its own process, with a werift device speaking espeak-ng speech
 * over WebRTC on loopback; the server's embedded broker carries the signaling.
 *
 * - The gateway's `pause` reaches the server, whose speculative STT is what answers the turn
 *   (its stages, in the device's turn event, say so).
 * - A due timer's announcement plays at once, without the user speaking: the server holds it
 *   (a `due` timer in its database), the gateway gets `announce` on the device's command topic
 *   and fetches it with an empty turn.
 *
 * The server fires timers with setTimeout from its own database, and the fixture model only ever
 * hears "what time is it", so nobody can set a timer by voice here. The test therefore does what
 * the server's `onTimerDue` does (server/mod.ts): it stores the timer as `due` in the server's
 * own database (the server reads due timers from it on every turn) and publishes the same
 * `announce` command. Everything after that — gateway, empty turn, the server's announcement text
 * and speech, WebRTC playback — is the real path.
 */
import assert from "node:assert/strict";
import { DevicePeer } from "../device/peer.ts";
import { rms } from "../shared/audio.ts";
import type { DeviceEvent } from "../shared/messages.ts";
import { connectMqtt } from "../shared/mqtt.ts";
import { ConversationMemory, type TimerRecord } from "../server/assistant/memory.ts";
import { announceCommand } from "../server/assistant/timers.ts";
import { DATABASE_FILE } from "../server/mod.ts";
import { startGatewayProcess } from "../scripts/lib/gateway_process.ts";
import { FIXTURE_DIR, hasFixture } from "./helpers/whisper_fixture.ts";
import { startServerProcess } from "../scripts/lib/server_process.ts";
import { speak } from "../scripts/lib/speech.ts";

/** A turn end to end on this 2-core machine, with room to spare. */
const TURN_TIMEOUT_MS = 15_000;

type TurnEvent = Extract<DeviceEvent, { type: "turn" }>;

/** The first `turn` event `device` received after its event number `since`. */
async function turnEvent(device: DevicePeer, since: number): Promise<TurnEvent> {
  const event = await device.waitForEvent(
    (e) => e.type === "turn" && device.events.indexOf(e) >= since,
    TURN_TIMEOUT_MS,
  );
  assert.ok(event.type === "turn");
  return event;
}

Deno.test({
  name: "end to end: speculative STT answers the turn; a due timer's announcement plays at once",
  ignore: !hasFixture,
  fn: async (t) => {
    const question = await speak("What time is it?");
    const server = await startServerProcess({ PIPELINE: "full", STT_MODEL_DIR: FIXTURE_DIR });
    const gateway = await startGatewayProcess({
      MQTT_HOST: "127.0.0.1",
      MQTT_PORT: String(server.mqttPort),
      NAILA_DATA_DIR: server.dataDir,
      AI_SERVER_HOST: "127.0.0.1",
      AI_SERVER_PORT: String(server.audioPort),
      AUDIO_SAMPLE_RATE: "16000",
    });
    const device = new DevicePeer({
      id: "kitchen",
      mqtt: { host: "127.0.0.1", port: server.mqttPort, ...server.login({ device: "kitchen" }) },
      hostAddresses: ["127.0.0.1"],
    });
    // The server role's login: it sends device commands.
    const mqtt = await connectMqtt(
      { embedded: false, host: "127.0.0.1", port: server.mqttPort, ...server.login("server") },
      { clientId: `e2e-${crypto.randomUUID().slice(0, 8)}` },
    );
    try {
      await device.connect();

      await t.step("a pause starts STT on the server; the turn uses it", async () => {
        const since = device.events.length;
        const replies = device.replies.length;
        await device.speak(question.samples, question.rate);
        const reply = await device.nextReply(TURN_TIMEOUT_MS, replies);
        const turn = await turnEvent(device, since);
        assert.match(turn.transcript ?? "", /what time is it/i);
        assert.match(turn.reply ?? "", /^It's \d{1,2}:\d\d [AP]M\.$/);
        const latency: Record<string, number> = turn.latency_ms ?? {};
        assert.equal(latency.stt_speculative, 1, JSON.stringify(latency));
        for (
          const key of ["stt_ms", "stt_total_ms", "queue_ms", "first_audio_ms", "transport_ms"]
        ) {
          assert.ok(typeof latency[key] === "number", `${key} in ${JSON.stringify(latency)}`);
        }
        assert.ok(rms(reply.samples()) > 0.01, "the reply is audible");
      });

      await t.step("an announce command plays the due timer's announcement at once", async () => {
        // Let the reply above finish playing: announcements wait for a free device.
        await device.waitForEvent((e) => e.type === "state" && e.state === "listening", 10_000);
        const now = Date.now();
        const timer: TimerRecord = {
          id: "timer-e2e",
          device: "kitchen",
          kind: "timer",
          label: "",
          createdAt: now - 5 * 60_000,
          dueAt: now,
          state: "due",
        };
        const memory = ConversationMemory.open(`${server.dataDir}/${DATABASE_FILE}`);
        try {
          memory.addTimer(timer);
        } finally {
          memory.close();
        }
        const since = device.events.length;
        const replies = device.replies.length;
        await mqtt.publish({ kind: "device_command", device: "kitchen" }, announceCommand(timer));
        const reply = await device.nextReply(TURN_TIMEOUT_MS, replies);
        const turn = await turnEvent(device, since);
        assert.equal(turn.reply, "Your timer for 5 minutes is done.");
        assert.equal(turn.transcript, undefined, "nobody spoke");
        assert.ok(rms(reply.samples()) > 0.01, "the announcement is audible");
        const seconds = reply.samples().length / 48000;
        assert.ok(seconds > 1 && seconds < 5, `announcement of ${seconds.toFixed(2)} s`);
      });
    } finally {
      await device.close().catch(() => {});
      await mqtt.close().catch(() => {});
      const code = await gateway.stop();
      await server.stop();
      assert.equal(code, 0, `gateway exit code ${code}`);
    }
  },
});
