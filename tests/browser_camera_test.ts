/**
 * The browser device page's camera end to end (issue 13): headless Chromium (in its own network
 * namespace) with a fake camera playing a Y4M made at test time from skimage photos (a still
 * scene, then a person walks in) and a fake microphone asking "is anyone in the hallway?";
 * the page streams both to a real gateway process; the gateway sees the motion and sends JPEG
 * frames to the real server, whose detector raises `naila/alerts/hallway/person_detected`; the
 * question (scripted STT, as tests/media_test.ts) is answered from the gateway's live frame and
 * shown on the page.
 */
import { WebPairing } from "../shared/web_pairing.ts";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { CHROMIUM, launchChromiumIn } from "./helpers/chromium.ts";
import { resample, writeWav } from "../shared/audio.ts";
import { connectMqtt, type NailaMqtt } from "../shared/mqtt.ts";
import { encodeWalkIn } from "../shared/video/testing.ts";
import { startLoopbackServer } from "../scripts/lib/loopback_server.ts";
import { scriptedStt } from "../scripts/lib/scripted_stt.ts";
import { createVision } from "../server/vision/mod.ts";
import { startGatewayProcess } from "./helpers/gateway_process.ts";
import { canCreateTestHost, createTestHost } from "./helpers/netns.ts";
import { freePort } from "./helpers/ports.ts";
import { speak } from "./helpers/speech.ts";

/** Silence after the question in the looped fake-microphone file: room for the reply. */
const PAUSE_AFTER_SPEECH_S = 6;
/** Cold Chromium + WebRTC + detector on a loaded 2-core machine. */
const TIMEOUT_MS = 60_000;
const chromiumPresent = await Deno.stat(CHROMIUM).then(() => true, () => false);

async function ffmpeg(args: string[]): Promise<void> {
  const out = await new Deno.Command("ffmpeg", {
    args: ["-hide_banner", "-loglevel", "error", "-y", ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

Deno.test({
  name: "a browser page's camera: person alert and a live-frame answer",
  ignore: !chromiumPresent || !(await canCreateTestHost()),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const host = await createTestHost(Deno.pid % 50 + 150);
    const temp = await Deno.makeTempDir({ prefix: "naila_browser_camera_" });
    // Ours to close: the server closes only a vision it started itself.
    const vision = await createVision();
    const server = await startLoopbackServer({
      PIPELINE: "full",
      TTS_ENGINE: "espeak",
      ALERT_RULES: "hallway:person",
      ALERT_MIN_CONFIDENCE: "0.35", // CenterNet's score of the pasted photo: 0.44–0.49
    }, { stt: scriptedStt("Is anyone in the hallway?"), vision }).catch(async (error) => {
      await vision.close();
      throw error;
    });
    const dataDir = server.dataDir;
    let gateway: Awaited<ReturnType<typeof startGatewayProcess>> | undefined;
    let browser: Browser | undefined;
    let watcher: NailaMqtt | undefined;
    try {
      const httpPort = await freePort();
      gateway = await startGatewayProcess({
        MQTT_HOST: "127.0.0.1",
        MQTT_PORT: String(server.mqttPort),
        NAILA_DATA_DIR: dataDir,
        AI_SERVER_PORT: String(server.audioPort),
        WEBRTC_HOST_ADDRESSES: host.hostAddress,
        GATEWAY_WEB: "on",
        GATEWAY_HTTP_PORT: String(httpPort),
      });
      await gateway.waitForLog((l) => l.msg === "device page listening", 15_000);
      watcher = await connectMqtt(
        {
          embedded: false,
          host: "127.0.0.1",
          port: server.mqttPort,
          ...server.login("server"),
        },
        { clientId: "browser-camera-watcher" },
      );
      const alerts: string[] = [];
      watcher.client.on("message", (topic: string) => alerts.push(topic));
      await watcher.subscribe("naila/alerts/hallway/person_detected");

      // Fake camera, looped by Chromium from getUserMedia on: 6 s of the scene (longer than the
      // call takes to connect, so the gateway's background is the empty scene), then the person.
      const ivf = `${temp}/walk.ivf`;
      await Deno.writeFile(ivf, await encodeWalkIn({ fps: 10, sceneSeconds: 6, personSeconds: 6 }));
      const y4m = `${temp}/walk.y4m`;
      await ffmpeg(["-i", ivf, "-pix_fmt", "yuv420p", y4m]);
      // Fake microphone: the question, then silence.
      const question = await speak("Is anyone in the hallway?");
      const at48k = resample(question.samples, question.rate, 48000);
      const wav = new Float32Array(at48k.length + PAUSE_AFTER_SPEECH_S * 48000);
      wav.set(at48k);
      await Deno.writeFile(`${temp}/question.wav`, writeWav(wav, 48000));

      const origin = `http://${host.hostAddress}:${httpPort}`;
      browser = await launchChromiumIn(host, temp, {
        origin,
        audio: `${temp}/question.wav`,
        video: y4m,
      });
      const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
      const consoleErrors: string[] = [];
      page.on("pageerror", (error) => consoleErrors.push(String(error)));
      // The pairing link the gateway printed at start (one per browser): `?pair=CODE`.
      const code = WebPairing.open(dataDir).code;
      await page.goto(`${origin}/?device=web_hall&zone=hallway&camera&autostart&pair=${code}`);

      const logs = () =>
        gateway!.logs.slice(-20).map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.fields ?? {})}`)
          .join("\n");
      for (let i = 0; alerts.length === 0; i++) {
        if (i > TIMEOUT_MS / 50) throw new Error(`no alert\n${logs()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.deepEqual(alerts, ["naila/alerts/hallway/person_detected"]);
      // The fake microphone repeats the question; asked while the person is in view, the live
      // frame says so (asked during the empty scene, it says no one is there).
      const yes = page.locator("li.turn .naila", {
        hasText: "Yes, I see a person in the hallway.",
      });
      await yes.first().waitFor({ timeout: TIMEOUT_MS }).catch((error) => {
        throw new Error(`${error.message}\n${logs()}`);
      });
      for (const answer of await page.locator("li.turn .naila").allTextContents()) {
        assert.match(answer, /^(Yes, I see a person|No, I don't see anyone) in the hallway\.$|^$/);
      }
      assert.ok(
        gateway.logs.some((l) => l.msg === "video track" && l.fields?.device === "web_hall"),
      );
      assert.deepEqual(consoleErrors, []);
    } finally {
      await watcher?.close().catch(() => {});
      await browser?.close().catch(() => {});
      await gateway?.stop();
      await server.close();
      await vision.close();
      await host.remove();
      await Deno.remove(temp, { recursive: true });
    }
  },
});
