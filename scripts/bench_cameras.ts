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
 *    the first frame with the person to the first alert on `naila/alerts/hallway/person_detected`
 *    after it. One sample per appearance: alerts after the first of an appearance are not paired
 *    with it (they would time the person standing there, not the motion).
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
/** Seconds of the walk-in loop before the person appears, and with the person. */
const WALK_SCENE_S = 1.5;
const WALK_PERSON_S = 1.5;
/** Longer than the gap between two forwarded frames of a person standing there (≤ 0.6 s at the
 * default 2 frames/s, analysed at 5 fps), shorter than the person's absence (≥ 1.5 s): one
 * alert per appearance. A cooldown below the forward gap re-alerts every forwarded frame. */
const ALERT_COOLDOWN_MS = 1200;

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
    await encodeWalkIn({ fps: WALK_FPS, sceneSeconds: WALK_SCENE_S, personSeconds: WALK_PERSON_S }),
  );
  // Ours to close: the server closes only a vision it started (a live worker keeps this
  // process from exiting).
  const vision = await createVision();
  const server = await startLoopbackServer({
    PIPELINE: "echo",
    ALERT_RULES: "hallway:person",
    ALERT_MIN_CONFIDENCE: "0.35",
    ALERT_COOLDOWN_MS: String(ALERT_COOLDOWN_MS),
  }, { vision });
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
  /** Arrival (epoch ms) and the alert's own timestamp: when the server began analysing the
   * frame that raised it (server/camera_frames.ts dates frames when their analysis starts). */
  const alerts: { at: number; analysedFrom: number; transit: number; queue: number }[] = [];
  watcher.client.on("message", (topic: string, payload: Uint8Array) => {
    if (topic === "naila/gateway/metrics") metrics = JSON.parse(new TextDecoder().decode(payload));
    else {
      const alert = JSON.parse(new TextDecoder().decode(payload));
      const { lastTransitMs = NaN, lastQueueMs = NaN } = server.cameras.stats;
      alerts.push({
        at: Date.now(),
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

    // Motion → alert: the time the first frame with the person left the device → the first
    // alert after it.
    const appear = Math.round(WALK_FPS * WALK_SCENE_S);
    /** Each appearance (epoch ms the device sent its first frame), with its first alert. */
    const shown: { at: number; alert?: (typeof alerts)[number] }[] = [];
    let repeats = 0;
    const camera = new DevicePeer({
      id: "hallway_cam",
      mqtt: mqttAt("hallway_cam"),
      hostAddresses: ["127.0.0.1"],
      zone: "hallway",
      video: {
        ivf: walk,
        fps: WALK_FPS,
        onFrame: (index) => {
          if (index === appear) shown.push({ at: Date.now() });
        },
      },
    });
    await camera.connect();
    const paired = () => shown.filter((s) => s.alert !== undefined);
    const loopMs = (WALK_SCENE_S + WALK_PERSON_S) * 1000;
    const deadline = performance.now() + ALERT_ROUNDS * loopMs + 20_000;
    while (paired().length < ALERT_ROUNDS && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (let alert = alerts.shift(); alert; alert = alerts.shift()) {
        // By when its frame's analysis began: a slow alert is not paired with the next one.
        const start = shown.findLast((s) => s.at <= alert!.analysedFrom);
        if (start === undefined || alert.at - start.at >= loopMs) continue;
        if (start.alert) repeats++;
        else start.alert = alert;
      }
    }
    const samples = paired().map((s) => ({ ...s.alert!, start: s.at }));
    const latencies = samples.map((s) => s.at - s.start);
    /** Of which: the device sending the frame → the server starting to analyse it. */
    const toServer = samples.map((s) => s.analysedFrom - s.start);
    /** The server's analysis start → the alert's arrival (detector, rules, MQTT). */
    const detect = samples.map((s) => s.at - s.analysedFrom);
    /** Gateway decode (`capture_ts`) → server receipt, and receipt → analysis start. */
    const transits = samples.map((s) => s.transit);
    const queues = samples.map((s) => s.queue);
    // Appearances that ended (the next one began) without an alert.
    const missed = shown.slice(0, -1).filter((s) => s.alert === undefined).length;
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
        appearances_without_alert: missed,
        repeat_alerts_ignored: repeats,
        p50: latencies.length ? round(median(latencies), 0) : null,
        p95: latencies.length ? round(percentile(latencies, 95), 0) : null,
        of_which_to_server_p50: toServer.length ? round(median(toServer), 0) : null,
        of_which_detect_to_alert_p50: detect.length ? round(median(detect), 0) : null,
        // Of the last frame received / analysed when the alert arrived: the alerting frame
        // unless another was forwarded meanwhile.
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
    await vision.close();
  }
}

if (import.meta.main) await main();
