/**
 * Every core of the gateway (issue 14, docs/scaling.md): a gateway process with two session
 * workers (GATEWAY_WORKERS=2) serves werift devices end to end against a real server process
 * (echo pipeline): every device's utterance is answered over WebRTC, and the metrics on
 * `naila/gateway/metrics` count every device's session and its packets, with the playback
 * clocks' counters cumulative like one clock's. A camera (real VP8 from ffmpeg) is served on the
 * main thread beside the camera hub: its video track arrives.
 */
import assert from "node:assert/strict";
import { DevicePeer } from "../device/peer.ts";
import type { GatewayMetrics } from "../shared/messages.ts";
import { connectMqtt } from "../shared/mqtt.ts";
import { startGatewayProcess } from "../scripts/lib/gateway_process.ts";
import { startMosquitto } from "../scripts/lib/mosquitto.ts";
import { startServerProcess } from "../scripts/lib/server_process.ts";
import { speak } from "../scripts/lib/speech.ts";
import { readIvf } from "../shared/video/ivf.ts";
import { encodeVp8 } from "../shared/video/testing.ts";

const DEVICES = 4;
/** Generous for a loaded 2-core machine; a guard against a hang. */
const REPLY_TIMEOUT_MS = 30_000;

Deno.test("a gateway with two session workers answers every device and reports their metrics", async () => {
  const broker = await startMosquitto();
  const server = await startServerProcess({
    PIPELINE: "echo",
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(broker.port),
  });
  const gateway = await startGatewayProcess({
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(broker.port),
    AI_SERVER_HOST: "127.0.0.1",
    AI_SERVER_PORT: String(server.audioPort),
    GATEWAY_WORKERS: "2",
    AI_SERVER_SECRET: server.secret!,
    GATEWAY_METRICS_INTERVAL_MS: "300",
  });
  const mqtt = await connectMqtt({ embedded: false, host: "127.0.0.1", port: broker.port }, {
    clientId: `workers-test-${crypto.randomUUID().slice(0, 8)}`,
  });
  let metrics: GatewayMetrics | undefined;
  /** Playback ticks of every metrics message, in order. */
  const ticks: number[] = [];
  mqtt.onMessage((topic, payload) => {
    if (topic.kind !== "gateway_metrics") return;
    metrics = JSON.parse(payload);
    ticks.push(Number((JSON.parse(payload) as { playback?: { ticks?: number } }).playback?.ticks));
  });
  await mqtt.subscribe("naila/gateway/metrics");
  const devices = Array.from({ length: DEVICES }, (_, i) =>
    new DevicePeer({
      id: `worker_${i}`,
      mqtt: { host: "127.0.0.1", port: broker.port },
      hostAddresses: ["127.0.0.1"],
    }));
  // A test pattern, a few seconds of it looped: the camera only has to arrive.
  const ivf = readIvf(
    await encodeVp8({ inputs: ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=5"], frames: 10 }),
  );
  const camera = new DevicePeer({
    id: "worker_cam",
    mqtt: { host: "127.0.0.1", port: broker.port },
    hostAddresses: ["127.0.0.1"],
    video: { ivf, fps: 5 },
  });
  try {
    await Promise.all([...devices, camera].map((device) => device.connect()));
    const question = await speak("Hello, are you there?");
    await Promise.all(devices.map((device) => device.speak(question.samples, question.rate)));
    const replies = await Promise.all(devices.map((d) => d.nextReply(REPLY_TIMEOUT_MS)));
    for (const reply of replies) assert.ok(reply.samples().length > 48_000 * 0.5);
    assert.ok(gateway.logs.some((l) => l.msg === "session workers" && l.fields?.workers === 2));
    const deadline = performance.now() + REPLY_TIMEOUT_MS;
    const turns = () =>
      Object.values(metrics?.devices ?? {}).reduce((sum, d) => sum + Number(d.turns ?? 0), 0);
    while (turns() < DEVICES && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(metrics?.sessions, DEVICES + 1);
    // At least one turn each (a loaded machine may split an utterance in two).
    assert.ok(turns() >= DEVICES, JSON.stringify(metrics?.devices));
    for (const device of devices) {
      const perDevice = (metrics?.devices ?? {}) as Record<string, { turns?: number }>;
      assert.ok(Number(perDevice[device.id]?.turns) >= 1, device.id);
    }
    assert.ok((metrics?.frames_in ?? 0) > 0 && (metrics?.frames_out ?? 0) > 0);
    // The replies ticked the workers' clocks; the counters never go back (one report per worker
    // counted, however the workers' and the gateway's metrics timers drift).
    assert.ok(ticks.at(-1)! > 0, JSON.stringify(ticks));
    for (let i = 1; i < ticks.length; i++) {
      assert.ok(ticks[i] >= ticks[i - 1], JSON.stringify(ticks));
    }
    // The camera's session is on the main thread, with its video track.
    while (!cameraTracks(metrics) && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(cameraTracks(metrics) >= 1, JSON.stringify(metrics?.devices));
  } finally {
    await Promise.all([...devices, camera].map((device) => device.close()));
    await mqtt.close();
    await gateway.stop();
    await server.stop();
    await broker.stop();
  }
});

/** Video tracks the gateway received from the test camera, from its metrics. */
function cameraTracks(metrics: GatewayMetrics | undefined): number {
  const devices = (metrics?.devices ?? {}) as Record<string, { video?: { tracks?: number } }>;
  return Number(devices["worker_cam"]?.video?.tracks ?? 0);
}
