/**
 * The browser device page end to end in headless Chromium (Debian package, driven by
 * playwright-core): the page connects through the gateway's signaling bridge, its (fake) microphone
 * speech reaches the real server as an utterance, the reply plays back, and the page shows the
 * turn. Chromium runs in its own network namespace (tests/helpers/netns.ts), so its only route to
 * the gateway is the test's own link: no media touches the machine's LAN address.
 */
import { WebPairing } from "../shared/web_pairing.ts";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { CHROMIUM, launchChromiumIn } from "./helpers/chromium.ts";
import { resample, voicedEndMs, writeWav } from "../shared/audio.ts";
import { connectMqtt, type NailaMqtt } from "../shared/mqtt.ts";
import { makeWhisperFixtures } from "../scripts/make_whisper_models.ts";
import { startGatewayProcess } from "../scripts/lib/gateway_process.ts";
import { canCreateTestHost, createTestHost } from "./helpers/netns.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { startServerProcess } from "../scripts/lib/server_process.ts";
import { speak } from "../scripts/lib/speech.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const OUTPUT_DIR = `${ROOT}test-output/browser`;
/** Silence after the question in the looped fake-microphone file: room for the reply to play. */
const PAUSE_AFTER_SPEECH_S = 4;
/** Cold Chromium + WebRTC + the full pipeline can be slow on a loaded 2-core machine. */
const TURN_TIMEOUT_MS = 45_000;

const chromiumPresent = await Deno.stat(CHROMIUM).then(() => true, () => false);

Deno.test({
  name: "a browser device page talks to NAILA: speech in, a shown turn and played reply out",
  ignore: !chromiumPresent || !(await canCreateTestHost()),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { fixture } = await makeWhisperFixtures(`${ROOT}models`, { fixtureOnly: true });
    const host = await createTestHost(Deno.pid % 50 + 100);
    const temp = await Deno.makeTempDir({ prefix: "naila_browser_" });
    const server = await startServerProcess({ PIPELINE: "full", STT_MODEL_DIR: fixture });
    let gateway: Awaited<ReturnType<typeof startGatewayProcess>> | undefined;
    let browser: Browser | undefined;
    let watcher: NailaMqtt | undefined;
    try {
      const httpPort = await freePort();
      gateway = await startGatewayProcess({
        MQTT_HOST: "127.0.0.1",
        MQTT_PORT: String(server.mqttPort),
        NAILA_DATA_DIR: server.dataDir,
        AI_SERVER_HOST: "127.0.0.1",
        AI_SERVER_PORT: String(server.audioPort),
        WEBRTC_HOST_ADDRESSES: host.hostAddress,
        GATEWAY_WEB: "on",
        GATEWAY_HTTP_PORT: String(httpPort),
      });
      await gateway.waitForLog((l) => l.msg === "device page listening", 15_000);

      // The fake microphone loops this file: the question, then a pause for the reply.
      const question = await speak("What time is it?");
      const at48k = resample(question.samples, question.rate, 48000);
      const file = new Float32Array(at48k.length + PAUSE_AFTER_SPEECH_S * 48000);
      file.set(at48k);
      const wavPath = `${temp}/question.wav`;
      await Deno.writeFile(wavPath, writeWav(file, 48000));
      assert.ok(voicedEndMs(file, 48000) < (at48k.length / 48000) * 1000 + 1);

      const origin = `http://${host.hostAddress}:${httpPort}`;
      browser = await launchChromiumIn(host, temp, { origin, audio: wavPath });
      const context = await browser.newContext({ viewport: { width: 390, height: 844 } }); // a phone
      const page = await context.newPage();
      const consoleErrors: string[] = [];
      const consoleLines: string[] = [];
      page.on("pageerror", (error) => consoleErrors.push(String(error)));
      page.on("console", (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
      // The gateway's offers to the page, to send one again below as a slow answer's retry would.
      // With the gateway's login: the gateway role reads and sends a browser device's offers.
      watcher = await connectMqtt(
        { embedded: false, host: "127.0.0.1", port: server.mqttPort, ...server.login("gateway") },
        { clientId: "browser-test-watcher" },
      );
      const offers: string[] = [];
      const offerTopic = "naila/devices/web_browser_1/signaling/offer";
      watcher.client.on("message", (topic: string, payload: Uint8Array) => {
        if (topic === offerTopic) offers.push(new TextDecoder().decode(payload));
      });
      await watcher.subscribe(offerTopic);
      // The pairing link the gateway printed at start (one per browser): `?pair=CODE`.
      const code = WebPairing.open(server.dataDir).code;
      await page.goto(`${origin}/?device=web_browser_1&autostart&pair=${code}`);

      const gatewayLogs = gateway.logs;
      await page.waitForFunction(
        `document.getElementById("connection")?.textContent === "connected"`,
        undefined,
        { timeout: TURN_TIMEOUT_MS },
      ).catch(async (error) => {
        // Say what the page and the gateway saw, so a failure here can be diagnosed.
        const state = await page.locator("#connection").textContent().catch(() => "?");
        const logs = gatewayLogs.filter((l) =>
          l.level !== "info" || JSON.stringify(l.fields ?? {}).includes("web_browser_1")
        ).slice(-15).map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.fields ?? {})}`);
        throw new Error(
          `${error.message}\npage connection: ${state}\npage console: ${
            consoleLines.slice(-10).join(" | ")
          }\ngateway: ${logs.join("\n")}`,
        );
      });
      const turn = page.locator("li.turn").first();
      await turn.locator(".naila").filter({ hasText: /\S/ }).waitFor({ timeout: TURN_TIMEOUT_MS });
      const heard = await turn.locator(".you").textContent();
      const answered = await turn.locator(".naila").textContent();
      assert.match(heard ?? "", /what time is it/i, "the page shows what the server heard");
      assert.match(answered ?? "", /\d/, "the reply tells the time");

      // The reply played: inbound audio packets with a non-zero level.
      const stats = await page.waitForFunction(
        `(async () => {
          const pc = globalThis.nailaPeer;
          if (!pc) return undefined;
          for (const report of (await pc.getStats()).values()) {
            if (report.type === "inbound-rtp" && report.kind === "audio" && report.totalAudioEnergy > 0) {
              return { packets: report.packetsReceived, energy: report.totalAudioEnergy };
            }
          }
          return undefined;
        })()`,
        undefined,
        { timeout: TURN_TIMEOUT_MS, polling: 250 },
      ).then((handle) => handle.jsonValue() as Promise<{ packets: number; energy: number }>);
      assert.ok(stats && stats.packets > 25, `inbound packets: ${JSON.stringify(stats)}`);

      // The gateway re-sends its offer when an answer is slow (2 s, loaded machine): the page
      // answers again and keeps its call instead of starting a new one.
      await page.evaluate(`globalThis.nailaPeer.marked = true`);
      await watcher.client.publishAsync(offerTopic, offers.at(-1)!, { qos: 1 });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(
        await page.evaluate(`globalThis.nailaPeer.marked && globalThis.nailaPeer.connectionState`),
        "connected",
        "the same call survives a re-sent offer",
      );

      const latency = await turn.locator(".latency").textContent();
      assert.match(latency ?? "", /ms/, "the page shows the turn's latency");
      await Deno.mkdir(OUTPUT_DIR, { recursive: true });
      await page.screenshot({ path: `${OUTPUT_DIR}/device_page.png`, fullPage: true });
      assert.deepEqual(consoleErrors, []);
      const connected = gateway.logs.find((l) => l.msg === "device connected");
      assert.equal(
        connected?.fields?.device,
        "web_browser_1",
        "the gateway's session is the browser's",
      );

      // A second tab of the same browser (same id and token) takes the device over: the first
      // page says "replaced" and stops instead of taking it back every few seconds.
      const second = await context.newPage();
      await second.goto(`${origin}/?autostart`);
      await page.waitForFunction(
        `document.getElementById("connection")?.textContent === "replaced"`,
        undefined,
        { timeout: TURN_TIMEOUT_MS },
      );
      assert.match(await page.locator("#error").textContent() ?? "", /another tab/);
      const connects = () =>
        gateway!.logs.filter((l) => l.msg === "browser device connected").length;
      const before = connects();
      await new Promise((resolve) => setTimeout(resolve, 3000)); // the old page's retry was 2 s
      assert.equal(connects(), before, "the replaced page does not reconnect");
      assert.equal(await page.locator("#connection").textContent(), "replaced");
      await second.close();

      // Without the pairing link, another browser (its own storage) is refused and told why.
      const stranger = await (await browser.newContext()).newPage();
      await stranger.goto(`${origin}/?device=web_browser_1&autostart`);
      await stranger.waitForFunction(
        `document.getElementById("connection")?.textContent === "stopped"`,
        undefined,
        { timeout: TURN_TIMEOUT_MS },
      );
      assert.match(await stranger.locator("#error").textContent() ?? "", /not paired/);
    } finally {
      await watcher?.close().catch(() => {});
      await browser?.close().catch(() => {});
      await gateway?.stop();
      await server.stop();
      await host.remove();
      await Deno.remove(temp, { recursive: true });
    }
  },
});
