/**
 * The media side inside the real server (startServer): recordings through ffmpeg, the Whisper
 * fixture, the assistant and espeak-ng; a spoken visual question answered from a real camera
 * snapshot through the voice socket; alerts spoken by the zone's other devices.
 */
import { readAudioSecret } from "../shared/audio_auth.ts";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { loadPhoto, startCamera } from "../device/camera.ts";
import type { DeviceCommand, MediaAnswer } from "../shared/messages.ts";
import { connectMqtt } from "../shared/mqtt.ts";
import { encodeAudio, PHOTOS_DIR, speechWav } from "../server/media/testing.ts";
import type { StartServerOptions } from "../server/mod.ts";
import { createVision } from "../server/vision/mod.ts";
import { sendTurn, V2Client } from "./helpers/audio_socket_clients.ts";
import { type LoopbackServer, startLoopbackServer } from "../scripts/lib/loopback_server.ts";
import { scriptedStt } from "../scripts/lib/scripted_stt.ts";
import { FIXTURE_DIR, hasFixture } from "./helpers/whisper_fixture.ts";

/** The server with the full pipeline: the Whisper fixture (or `options.stt`) and espeak-ng. */
function startMediaServer(
  extra: Record<string, string> = {},
  options: Omit<StartServerOptions, "config" | "server"> = {},
): Promise<LoopbackServer> {
  return startLoopbackServer(
    { PIPELINE: "full", STT_MODEL_DIR: FIXTURE_DIR, TTS_ENGINE: "espeak", ...extra },
    options,
  );
}

/** Watches one device's media answers and commands. */
async function watch(server: LoopbackServer, device: string) {
  const login = server.login({ device });
  const mqtt = await connectMqtt({
    embedded: false,
    host: "127.0.0.1",
    port: server.mqttPort,
    ...login,
  }, {
    clientId: `media-test-${device}`,
  });
  const answers: MediaAnswer[] = [];
  const commands: DeviceCommand[] = [];
  mqtt.onMessage((topic, payload) => {
    if (!("device" in topic) || topic.device !== device) return;
    if (topic.kind === "device_media_response") answers.push(JSON.parse(payload));
    if (topic.kind === "device_command") commands.push(JSON.parse(payload));
  });
  await mqtt.subscribe([
    `naila/devices/${device}/media/response`,
    `naila/devices/${device}/command`,
  ]);
  return { mqtt, answers, commands };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; !check(); i++) {
    if (i > 3000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Sends half a second of audio as turn t1 of device kitchen (the scripted STT hears the question)
 * and returns the reply text once the turn ends.
 */
async function askInKitchen(client: V2Client): Promise<string> {
  await sendTurn(client, {
    turn: "t1",
    device: "kitchen",
    rate: 16000,
    pcm: new Uint8Array(16000),
  });
  await client.next((m) => m.type === "end" && m.turn === "t1", 20_000);
  return client.messages.flatMap((m) => m.type === "text" && m.kind === "reply" ? [m.text] : [])
    .join(" ");
}

Deno.test({
  name: "server media: a WAV or Opus voice message is heard, answered on media/response and spoken",
  ignore: !hasFixture,
  fn: async () => {
    const server = await startMediaServer();
    const watcher = await watch(server, "hall");
    try {
      // Online with a speaker: answers are spoken there too.
      await watcher.mqtt.publish({ kind: "device_status", device: "hall" }, {
        device_id: "hall",
        online: true,
        capabilities: ["audio", "speaker"],
      });
      await until(() => server.media.devices.canSpeak("hall"), "hall's status");
      const wav = await speechWav("What time is it?");
      for (
        const [format, data] of [["wav", wav], ["opus", await encodeAudio(wav, "opus")]] as const
      ) {
        const count = watcher.answers.length;
        await watcher.mqtt.publish({ kind: "device_recording", device: "hall" }, {
          request_id: `voice_${format}`,
          media_type: "audio",
          format,
          duration_ms: 1200,
          timestamp: new Date().toISOString(),
          data: Buffer.from(data).toString("base64"),
        });
        await until(() => watcher.answers.length > count, `${format} answer`);
        const answer = watcher.answers[count];
        assert.equal(answer.ok, true, JSON.stringify(answer.error));
        assert.equal(answer.request_id, `voice_${format}`);
        assert.match(answer.transcript!, /what time is it/i);
        assert.match(answer.answer!, /^It's \d{1,2}:\d\d [AP]M\.$/);
      }
      // Spoken on the device: an announce command carrying the answer (the gateway pulls it).
      await until(() => watcher.commands.length >= 2, "announce commands");
      assert.deepEqual(watcher.commands.map((c) => c.command), ["announce", "announce"]);
      assert.match(String(watcher.commands[0].params?.text), /^It's /);
    } finally {
      await watcher.mqtt.close();
      await server.close();
    }
  },
});

Deno.test("server media: 'is anyone at the front door?' spoken in the kitchen is answered from the door camera; the alert is announced in the zone", async () => {
  const vision = await createVision();
  const server = await startMediaServer({
    MEDIA_DEVICE_ZONES: "kitchen=kitchen,porch_speaker=front_door",
    ALERT_RULES: "front_door:person",
  }, { stt: scriptedStt("Is anyone at the front door?"), vision });
  const speaker = await watch(server, "porch_speaker");
  const camera = await startCamera({
    id: "front_cam",
    zone: "front_door",
    mqtt: { host: "127.0.0.1", port: server.mqttPort, ...server.login({ device: "front_cam" }) },
    photos: [await loadPhoto(`${PHOTOS_DIR}astronaut.png`)],
  });
  // The speaker in the zone announces itself online (it would speak the alert).
  await speaker.mqtt.publish({ kind: "device_status", device: "porch_speaker" }, {
    device_id: "porch_speaker",
    online: true,
    capabilities: ["audio", "speaker"],
  });
  await until(
    () =>
      server.media.devices.hasCamera("front_cam") &&
      server.media.devices.canSpeak("porch_speaker"),
    "camera and speaker statuses",
  );
  const client = await V2Client.connect(
    server.audioPort,
    undefined,
    readAudioSecret(server.dataDir),
  );
  try {
    const reply = await askInKitchen(client);
    assert.equal(reply, "Yes, I see a person at the front door.");
    assert.equal(camera.requests.length, 1, "one snapshot requested from the door camera");
    await until(() => speaker.commands.length > 0, "the alert announced in the zone");
    assert.equal(speaker.commands[0].params?.text, "Alert: a person at the front door.");
  } finally {
    client.close();
    await camera.close();
    await speaker.mqtt.close();
    await server.close();
    await vision.close();
  }
});

Deno.test("server media: polled camera → one alert for a person standing there, stored, then asked about", async () => {
  const vision = await createVision();
  const server = await startMediaServer(
    { MEDIA_CAMERA_POLL_MS: "150", MEDIA_STORAGE: "alerts" },
    { stt: scriptedStt("When was someone last at the door?"), vision },
  );
  const mqtt = await connectMqtt(
    { embedded: false, host: "127.0.0.1", port: server.mqttPort, ...server.login("server") },
    {
      clientId: "media-test-alerts",
    },
  );
  const alerts: string[] = [];
  mqtt.onMessage((topic, payload) => {
    if (topic.kind === "alert_all") alerts.push(JSON.parse(payload).alert_type);
  });
  await mqtt.subscribe("naila/alerts/all");
  const camera = await startCamera({
    id: "front_cam",
    zone: "front_door",
    mqtt: { host: "127.0.0.1", port: server.mqttPort, ...server.login({ device: "front_cam" }) },
    photos: [await loadPhoto(`${PHOTOS_DIR}astronaut.png`)],
  });
  const client = await V2Client.connect(
    server.audioPort,
    undefined,
    readAudioSecret(server.dataDir),
  );
  try {
    // The person stays in view for several polls: one alert.
    await until(() => camera.served >= 5, "five polled snapshots");
    await until(() => alerts.length > 0, "the alert");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(alerts, ["person_detected"]);
    const stored = await Array.fromAsync(Deno.readDir(`${server.dataDir}/media`));
    assert.equal(stored.length, 1, "one day folder with the alert snapshot");
    const reply = await askInKitchen(client);
    assert.match(reply, /^Someone was last seen at the front door at \d{1,2}:\d\d [AP]M today\.$/);
  } finally {
    client.close();
    await camera.close();
    await mqtt.close();
    await server.close();
    await vision.close();
  }
});
