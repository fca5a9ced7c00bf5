/**
 * Spec 11.7 end to end: the gateway's page server (serveDevicePage with its /api/upload bridge)
 * on the server's embedded broker, the real AI server with the real detector, and headless
 * Chromium choosing a real photo on the device page and asking about it.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { chromium } from "playwright-core";
import { serveDevicePage } from "../gateway/web_bridge.ts";
import { createLogger } from "../shared/log.ts";
import { MAX_MEDIA_BYTES } from "../shared/messages.ts";
import { connectMqtt } from "../shared/mqtt.ts";
import { PHOTOS_DIR } from "../server/media/testing.ts";
import { createVision } from "../server/vision/mod.ts";
import { startLoopbackServer } from "../scripts/lib/loopback_server.ts";
import { CHROMIUM } from "./helpers/chromium.ts";

const chromiumPresent = await Deno.stat(CHROMIUM).then(() => true, () => false);

Deno.test({
  name: "upload: the device page sends a photo with a question and shows the answer",
  ignore: !chromiumPresent,
  fn: async (t) => {
    const vision = await createVision();
    const server = await startLoopbackServer({ PIPELINE: "echo" }, { vision });
    const mqtt = await connectMqtt(
      { embedded: false, host: "127.0.0.1", port: server.mqttPort, ...server.login("gateway") },
      {
        clientId: "upload-test-gateway",
      },
    );
    const bridge = await serveDevicePage({
      port: 0,
      hostname: "127.0.0.1",
      mqtt,
      log: createLogger("gateway.web", { level: "error" }),
    });
    const origin = `http://127.0.0.1:${bridge.port}`;
    const post = (query: string, body: BodyInit, type: string) =>
      fetch(`${origin}/api/upload?${query}`, {
        method: "POST",
        body,
        headers: { "content-type": type },
      });
    try {
      await t.step("HTTP: a photo and a question → the AI server's answer", async () => {
        const photo = await Deno.readFile(`${PHOTOS_DIR}chelsea.png`);
        const response = await post(
          "device=web_t1&question=Is%20there%20a%20cat%3F",
          photo,
          "image/png",
        );
        assert.equal(response.status, 200);
        const answer = await response.json();
        assert.equal(answer.answer, "Yes, I see a cat.");
        assert.equal(answer.conversation_id, "web_t1");
      });

      await t.step("HTTP: bad uploads are refused with a status and a reason", async () => {
        const cases: [string, () => Promise<Response>, number, RegExp][] = [
          ["GET", () => fetch(`${origin}/api/upload?device=web_t1`), 405, /expected POST/],
          [
            "no web_ id",
            () => post("device=kitchen", "x", "image/png"),
            400,
            /does not start with web_/,
          ],
          [
            "text",
            () => post("device=web_t1", "hello", "text/plain"),
            415,
            /"text\/plain" is not one of/,
          ],
          [
            "9 MB",
            () => post("device=web_t1", new Uint8Array(MAX_MEDIA_BYTES + 1), "image/jpeg"),
            413,
            /over 8388608 bytes/,
          ],
          [
            "not an image",
            () => post("device=web_t1", "not a jpeg at all", "image/jpeg"),
            422,
            /./,
          ],
        ];
        for (const [name, send, status, message] of cases) {
          const response = await send();
          const body = await response.json();
          assert.equal(response.status, status, `${name}: ${JSON.stringify(body)}`);
          assert.equal(body.ok, false, name);
          assert.match(body.error.message, message, name);
        }
      });

      await t.step("Chromium: choose a photo on the page, ask, read the answer", async () => {
        const browser = await chromium.launch({
          executablePath: CHROMIUM,
          headless: true,
          args: [
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
          ],
        });
        try {
          const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
          await page.goto(`${origin}/?device=web_photo&autostart`);
          await page.setInputFiles("#photo-file", `${PHOTOS_DIR}coffee.png`);
          await page.fill("#photo-question", "Is there a cup?");
          await page.click("#photo-send");
          await page.waitForFunction(
            `/^(Yes|No|Sorry)/.test(document.getElementById("photo-answer")?.textContent ?? "")`,
            undefined,
            { timeout: 30_000 },
          );
          assert.equal(await page.locator("#photo-answer").textContent(), "Yes, I see a cup.");

          // "Show me the last alert": the server's media answer for this device shows its image.
          while (!bridge.devices().includes("web_photo")) {
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          const photo = await Deno.readFile(`${PHOTOS_DIR}chelsea.png`);
          const caption = "Here is the last alert from the backyard: a cat at 3:12 AM today.";
          // The server's own login: only the server may answer on media/response (mqtt_acl.ts).
          const serverMqtt = await connectMqtt({
            embedded: false,
            host: "127.0.0.1",
            port: server.mqttPort,
            ...server.login("server"),
          }, { clientId: "upload-test-server" });
          for (let i = 0; i < 50 && await page.locator("#shown").isHidden(); i++) {
            // Repeated until the bridge's subscription for the page is active.
            await serverMqtt.publish({ kind: "device_media_response", device: "web_photo" }, {
              kind: "history",
              ok: true,
              timestamp: new Date().toISOString(),
              answer: caption,
              image: {
                format: "png",
                data: Buffer.from(photo).toString("base64"),
                zone: "backyard",
              },
            });
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          await serverMqtt.close();
          assert.equal(await page.locator("#shown-caption").textContent(), caption);
          await page.waitForFunction(
            `document.getElementById("shown-image").naturalWidth > 0`,
            undefined,
            { timeout: 10_000 },
          );
          const size = await page.evaluate(`(() => {
            const img = document.getElementById("shown-image");
            return img.naturalWidth + "x" + img.naturalHeight;
          })()`);
          assert.equal(size, "451x300", "the stored image decoded in the page");
        } finally {
          await browser.close();
        }
      });
    } finally {
      await bridge.close();
      await mqtt.close();
      await server.close();
      await vision.close();
    }
  },
});
