/**
 * `deno task bench:cameras` (issue 13, docs/video.md): cameras over WebRTC on a real gateway
 * process, with the real server (in this process, PIPELINE=echo, CenterNet) and werift devices
 * streaming ffmpeg-encoded VP8 (640×480):
 *
 * 1. Gateway CPU per camera (decode + motion + JPEG of forwarded frames) at 5 and 15 fps, on top
 *    of audio: the gateway's CPU with CAMERAS audio+video devices minus with as many audio-only
 *    devices, each sending idle Opus, over MEASURE_MS; a still scene with sensor noise.
 * 2. Frames forwarded per minute of a mostly still scene (the same still scene; the gateway's
 *    metrics count `image`s sent).
 * 3. Motion → alert: a person appears (walk-in clip, looped); from the moment the device sends
 *    the first frame with the person to the alert on `naila/alerts/hallway/person_detected`.
 *
 * Writes bench/cameras.json.
 */
import { DevicePeer } from "../device/peer.ts";
import { addDevice, storedLogin } from "../shared/credentials.ts";
import { connectMqtt } from "../shared/mqtt.ts";
import type { GatewayMetrics } from "../shared/messages.ts";
import { readIvf } from "../shared/video/ivf.ts";
import { encodeVp8, encodeWalkIn, testPhoto } from "../shared/video/testing.ts";
import { startLoopbackServer } from "./lib/loopback_server.ts";
import { createVision } from "../server/vision/mod.ts";
import { CLK_TCK, cpuTicks } from "./bench_process.ts";
import { median, percentile, round } from "./bench_stats.ts";
import { startGatewayProcess } from "./lib/gateway_process.ts";

const ROOT = new URL("../", import.meta.url).pathname;
/** Cameras per CPU round: several, so one camera's share stands out of the noise. */
const CAMERAS = 4;
/** CPU measuring window per configuration. */
const MEASURE_MS = 15_000;
/** Let connections, keyframes and the motion background settle first. */
const SETTLE_MS = 4000;
/** Walk-in loops for the motion → alert latency. */
const ALERT_ROUNDS = 10;
/** A loop: 1.5 s still, 1.5 s with the person (the person leaves before it returns). */
const WALK_FPS = 10;

async function main(): Promise<void> {
  const photo = await testPhoto("coffee.png");
  // A still scene with temporal sensor noise, as a real camera sends it.
  const still = async (fps: number) =>
    readIvf(
      await encodeVp8({
        inputs: ["-loop", "1", "-i", photo],
        filter: "[0:v]scale=640:480,noise=alls=6:allf=t[out]",
        frames: fps * 20,
        fps,
      }),
    );
  const walk = readIvf(
    await encodeWalkIn({ fps: WALK_FPS, sceneSeconds: 1.5, personSeconds: 1.5 }),
  );
  const server = await startLoopbackServer({
    PIPELINE: "echo",
    ALERT_RULES: "hallway:person",
    ALERT_MIN_CONFIDENCE: "0.35",
    // The person is gone for 1.5 s between appearances: each one is a new alert.
    ALERT_COOLDOWN_MS: "500",
  }, { vision: await createVision() });
  const dataDir = server.dataDir;
  const mqttAt = (id: string) => ({
    host: "127.0.0.1",
    port: server.mqttPort,
    ...addDevice(dataDir, id),
  });
  const gateway = await startGatewayProcess({
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(server.mqttPort),
    AI_SERVER_PORT: String(server.audioPort),
    NAILA_DATA_DIR: dataDir,
    LOG_LEVEL: "warn",
    GATEWAY_METRICS_INTERVAL_MS: "1000",
  }, { waitReady: false });
  await new Promise((resolve) => setTimeout(resolve, 3000));
  // The server's login: it may read the gateway's metrics and the alerts.
  const serverLogin = storedLogin(dataDir, { role: "server" })!;
  const watcher = await connectMqtt({
    embedded: false,
    host: "127.0.0.1",
    port: server.mqttPort,
    ...serverLogin,
  }, {
    clientId: "bench-cameras-watcher",
  });
  let metrics: GatewayMetrics | undefined;
  /** Arrival (performance.now) and the alert's own timestamp: when the server began analysing
   * the frame that raised it (server/camera_frames.ts dates frames on receipt). */
  const alerts: { at: number; analysedFrom: number; transit: number; queue: number }[] = [];
  watcher.client.on("message", (topic: string, payload: Uint8Array) => {
    if (topic === "naila/gateway/metrics") metrics = JSON.parse(new TextDecoder().decode(payload));
    else {
      const alert = JSON.parse(new TextDecoder().decode(payload));
      const { lastTransitMs = NaN, lastQueueMs = NaN } = server.cameras.stats;
      alerts.push({
        at: performance.now(),
        analysedFrom: Date.parse(alert.timestamp),
        transit: lastTransitMs,
        queue: lastQueueMs,
      });
    }
  });
  await watcher.subscribe(["naila/gateway/metrics", "naila/alerts/hallway/person_detected"]);
  const videoCount = (key: "framesForwarded" | "framesDecoded") =>
    Object.values((metrics?.devices ?? {}) as Record<string, { video?: Record<string, number> }>)
      .reduce((n, d) => n + (d.video?.[key] ?? 0), 0);

  /** Gateway CPU (% of one core) with `count` devices, with video at `fps` or audio only. */
  const round_ = async (label: string, make: (i: number) => DevicePeer) => {
    const devices = Array.from({ length: CAMERAS }, (_, i) => make(i));
    await Promise.all(devices.map((d) => d.connect()));
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const before = videoCount("framesForwarded");
    const decodedBefore = videoCount("framesDecoded");
    const t0 = performance.now();
    const c0 = cpuTicks(gateway.pid);
    await new Promise((resolve) => setTimeout(resolve, MEASURE_MS));
    const cpu = ((cpuTicks(gateway.pid) - c0) / CLK_TCK) / ((performance.now() - t0) / 1000) * 100;
    // Counters from the last metrics message: as stale (≤ 1 s) at both ends of the window.
    const sent = videoCount("framesForwarded") - before;
    const decoded = videoCount("framesDecoded") - decodedBefore;
    await Promise.all(devices.map((d) => d.close()));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    console.log(
      `${label}: gateway ${
        round(cpu, 1)
      } % of a core, ${decoded} frames decoded, ${sent} forwarded`,
    );
    return { cpu, decoded, forwardedPerMinute: (sent * 60_000) / MEASURE_MS };
  };
  const peer = (id: string, video?: { ivf: ReturnType<typeof readIvf>; fps: number }) =>
    new DevicePeer({ id, mqtt: mqttAt(id), hostAddresses: ["127.0.0.1"], video, zone: "yard" });

  try {
    const still5 = await still(5);
    const still15 = await still(15);
    const audio = await round_("audio only", (i) => peer(`mic_${i}`));
    const at5 = await round_("5 fps", (i) => peer(`cam5_${i}`, { ivf: still5, fps: 5 }));
    const at15 = await round_("15 fps", (i) => peer(`cam15_${i}`, { ivf: still15, fps: 15 }));

    // Motion → alert: the time the first frame with the person left the device → the alert.
    const appear = Math.round(WALK_FPS * 1.5);
    const shown: { at: number; wall: number }[] = [];
    const camera = new DevicePeer({
      id: "hallway_cam",
      mqtt: mqttAt("hallway_cam"),
      hostAddresses: ["127.0.0.1"],
      zone: "hallway",
      video: {
        ivf: walk,
        fps: WALK_FPS,
        onFrame: (index) => {
          if (index === appear) shown.push({ at: performance.now(), wall: Date.now() });
        },
      },
    });
    await camera.connect();
    const latencies: number[] = [];
    /** Of which: the device sending the frame → the server starting to analyse it. */
    const toServer: number[] = [];
    /** Gateway decode (`capture_ts`) → server receipt, and receipt → analysis start. */
    const transits: number[] = [];
    const queues: number[] = [];
    const deadline = performance.now() + ALERT_ROUNDS * 3000 + 20_000;
    while (latencies.length < ALERT_ROUNDS && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      // Pair each alert with the last appearance before it.
      while (alerts.length > 0) {
        const { at, analysedFrom, transit, queue } = alerts.shift()!;
        const start = shown.filter((t) => t.at <= at).at(-1);
        if (start === undefined || at - start.at >= 3000) continue;
        latencies.push(at - start.at);
        toServer.push(analysedFrom - start.wall);
        transits.push(transit);
        queues.push(queue);
      }
    }
    await camera.close();
    const result = {
      date: new Date().toISOString(),
      machine: `${Deno.build.arch}, load ${Deno.loadavg().map((l) => round(l, 1)).join("/")}`,
      cameras_per_round: CAMERAS,
      measure_ms: MEASURE_MS,
      gateway_cpu_percent: {
        audio_only: round(audio.cpu, 1),
        with_cameras_5fps: round(at5.cpu, 1),
        with_cameras_15fps: round(at15.cpu, 1),
        per_camera_5fps: round((at5.cpu - audio.cpu) / CAMERAS, 2),
        per_camera_15fps: round((at15.cpu - audio.cpu) / CAMERAS, 2),
      },
      frames_decoded_per_camera_per_second: {
        fps5: round(at5.decoded / CAMERAS / (MEASURE_MS / 1000), 1),
        fps15: round(at15.decoded / CAMERAS / (MEASURE_MS / 1000), 1),
      },
      still_scene_frames_forwarded_per_minute_per_camera: {
        fps5: round(at5.forwardedPerMinute / CAMERAS, 1),
        fps15: round(at15.forwardedPerMinute / CAMERAS, 1),
      },
      motion_to_alert_ms: {
        n: latencies.length,
        p50: latencies.length ? round(median(latencies), 0) : null,
        p95: latencies.length ? round(percentile(latencies, 95), 0) : null,
        of_which_to_server_p50: toServer.length ? round(median(toServer), 0) : null,
        // Approximate: of the last frame received / analysed when the alert arrived.
        of_which_gateway_decode_to_server_receipt_p50: round(median(transits), 0),
        of_which_server_queue_p50: round(median(queues), 0),
      },
    };
    console.log(JSON.stringify(result, null, 2));
    await Deno.mkdir(`${ROOT}bench`, { recursive: true });
    await Deno.writeTextFile(`${ROOT}bench/cameras.json`, JSON.stringify(result, null, 2) + "\n");
  } finally {
    await watcher.close();
    await gateway.stop();
    await server.close();
  }
}

if (import.meta.main) await main();
