/**
 * MediaService with real parts: the embedded aedes broker, the server's MqttLink, the real
 * vision worker (CenterNet), real photos served by the simulated camera (device/camera.ts), real
 * ffmpeg and a real SQLite store. One broker and one vision worker for the whole file (loading
 * the detector takes seconds); each step uses its own device ids.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { type CameraPhoto, loadPhoto, startCamera } from "../../device/camera.ts";
import { startEmbeddedBroker } from "../../shared/broker.ts";
import {
  type Alert,
  type DeviceEvent,
  MAX_MEDIA_MESSAGE_CHARS,
  type MediaAnswer,
} from "../../shared/messages.ts";
import { connectMqtt } from "../../shared/mqtt.ts";
import type { Topic } from "../../shared/topics.ts";
import { MqttLink } from "../mqtt_link.ts";
import { pngDeclaring } from "../vision/test_images.ts";
import { createVision, type Vision } from "../vision/mod.ts";
import { loadMediaConfig } from "./config.ts";
import { MediaError } from "./link.ts";
import { MediaService } from "./service.ts";
import { MediaStore } from "./store.ts";
import { encodeAudio, photoClip, photoJpeg, PHOTOS_DIR, speechWav } from "./testing.ts";

const status = () => ({ online: true, timestamp: new Date().toISOString() });

/** Collects every NAILA message a plain client sees. */
class Watcher {
  messages: { topic: Topic; payload: string }[] = [];
  #waiters: (() => void)[] = [];
  add(topic: Topic, payload: string) {
    this.messages.push({ topic, payload });
    for (const wake of this.#waiters.splice(0)) wake();
  }
  async next<T>(match: (topic: Topic) => boolean, from = 0): Promise<T> {
    for (;;) {
      const found = this.messages.slice(from).find((m) => match(m.topic));
      if (found) return JSON.parse(found.payload) as T;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
  count(match: (topic: Topic) => boolean): number {
    return this.messages.filter((m) => match(m.topic)).length;
  }
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

Deno.test("MediaService over a real broker with the real detector", async (t) => {
  const broker = await startEmbeddedBroker({ port: 0, allowAnonymous: true });
  const mqttConfig = { embedded: false, host: "127.0.0.1", port: broker.port };
  const dataDir = await Deno.makeTempDir({ prefix: "naila_media_service_" });
  const store = await MediaStore.open({
    dataDir,
    databasePath: join(dataDir, "naila.db"),
    retentionDays: 7,
    retentionBytes: 100 * 1024 * 1024,
  });
  let vision: Promise<Vision> | undefined;
  const spoken: [string, string][] = [];
  const heard: { device: string; samples: number }[] = [];
  const link = new MqttLink(mqttConfig, {
    clientId: "media-service-test",
    will: { topic: { kind: "server_status" }, message: { ...status(), online: false } },
    online: status,
  });
  const service = new MediaService({
    link,
    config: loadMediaConfig({
      MEDIA_SNAPSHOT_TIMEOUT_MS: "1500",
      ALERT_RULES: "front_door:person,*:cat",
      MEDIA_FORMATS: "jpeg,png,wav,opus,mp3,mp4,webm",
      MEDIA_STORAGE: "alerts",
    }),
    vision: () => vision ??= createVision(),
    store,
    speak: (device, text) => spoken.push([device, text]),
    // A voice turn that reports what it was given: the real pipeline runs in server tests.
    voiceTurn: (device, audio) => {
      heard.push({ device, samples: audio.pcm.length / 2 });
      return Promise.resolve({ transcript: "(heard)", reply: "Here is my answer." });
    },
  });
  service.start();
  link.start();
  await link.whenConnected();
  const watcher = new Watcher();
  const client = await connectMqtt(mqttConfig, { clientId: "media-watcher" });
  client.onMessage((topic, payload) => watcher.add(topic, payload));
  await client.subscribe(["naila/alerts/#", "naila/devices/#", "naila/uploads/+/response"]);
  const cameras: { close(): Promise<void> }[] = [];
  const camera = async (id: string, zone: string, photos: CameraPhoto[], silent = false) => {
    const cam = await startCamera({ id, zone, mqtt: mqttConfig, photos, silent });
    cameras.push(cam);
    // The directory learns it from the retained status.
    while (!service.devices.hasCamera(id)) await new Promise((r) => setTimeout(r, 10));
    return cam;
  };
  const person = await loadPhoto(`${PHOTOS_DIR}astronaut.png`);
  const cat = await loadPhoto(`${PHOTOS_DIR}chelsea.png`);

  try {
    await t.step(
      "snapshot round trip: request → image → detections → alert on both topics",
      async () => {
        const cam = await camera("front_cam", "front_door", [person]);
        const from = watcher.messages.length;
        const result = await service.snapshot("front_cam");
        assert.equal(cam.requests.length, 1);
        assert.equal(result.received.snapshot.request_id, cam.requests[0]);
        assert.equal(result.received.snapshot.format, "png");
        assert.deepEqual(result.context.objects.map((o) => o.label), ["person"]);
        assert.deepEqual(result.alerts.map((a) => a.alertType), ["person_detected"]);
        const zoneAlert = await watcher.next<Alert>(
          (topic) => topic.kind === "alert" && topic.zone === "front_door",
          from,
        );
        const allAlert = await watcher.next<Alert>((topic) => topic.kind === "alert_all", from);
        for (const alert of [zoneAlert, allAlert]) {
          assert.equal(alert.alert_type, "person_detected");
          assert.equal(alert.source_device, "front_cam");
          assert.equal(alert.count, 1);
          assert.equal(alert.description, "I see a person at the front door.");
          assert.ok(alert.confidence >= 0.5);
          assert.ok(alert.media_id !== undefined, "stored (MEDIA_STORAGE=alerts)");
        }
      },
    );

    await t.step(
      "cooldown: the same person in the next snapshots raises no new alert",
      async () => {
        const before = watcher.count((topic) => topic.kind === "alert_all");
        for (let i = 0; i < 3; i++) {
          const result = await service.snapshot("front_cam");
          assert.deepEqual(result.context.objects.map((o) => o.label), ["person"]);
          assert.equal(result.alerts.length, 0);
        }
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(watcher.count((topic) => topic.kind === "alert_all"), before);
      },
    );

    await t.step(
      "several snapshot requests in flight to two cameras, each answered by id",
      async () => {
        await camera("yard_cam", "backyard", [cat]);
        const results = await Promise.all([
          service.snapshot("yard_cam"),
          service.snapshot("front_cam"),
          service.snapshot("yard_cam"),
        ]);
        assert.deepEqual(results.map((r) => r.context.objects[0]?.label), ["cat", "person", "cat"]);
        assert.equal(new Set(results.map((r) => r.received.snapshot.request_id)).size, 3);
        assert.equal(service.snapshots.inFlight, 0);
      },
    );

    await t.step("a snapshot that never comes times out with a clear error", async () => {
      await camera("dead_cam", "garage", [person], true);
      await assert.rejects(service.snapshot("dead_cam"), (error: Error) => {
        assert.ok(error instanceof MediaError);
        assert.equal(error.code, "timeout");
        assert.match(error.message, /device "dead_cam" sent no snapshot .* within 1500 ms/);
        return true;
      });
      assert.equal(service.snapshots.inFlight, 0);
    });

    await t.step("an unknown request_id gets an error on the device's events topic", async () => {
      const from = watcher.messages.length;
      await client.publish({ kind: "device_snapshot", device: "front_cam" }, {
        request_id: "req_never_sent",
        media_type: "image",
        format: "png",
        width: person.width,
        height: person.height,
        timestamp: new Date().toISOString(),
        data: b64(person.bytes),
      });
      const event = await watcher.next<DeviceEvent>(
        (topic) => topic.kind === "device_events" && topic.device === "front_cam",
        from,
      );
      assert.equal(event.type, "error");
      assert.match(
        (event as { message: string }).message,
        /request_id "req_never_sent" from device "front_cam" answers no waiting request/,
      );
      // Still working afterwards.
      assert.equal((await service.snapshot("yard_cam")).context.objects[0].label, "cat");
    });

    await t.step("history: when was someone last at the door; show me the last alert", async () => {
      const when = await service.answerQuestion(
        "kitchen_hub",
        "When was someone last at the door?",
      );
      assert.match(when!, /^Someone was last seen at the front door at \d+:\d\d [AP]M today\.$/);
      const from = watcher.messages.length;
      const shown = await service.answerQuestion(
        "kitchen_hub",
        "Show me the last alert from the front door.",
      );
      assert.match(shown!, /^Here is the last alert from the front door: a person at /);
      const answer = await watcher.next<MediaAnswer>(
        (topic) => topic.kind === "device_media_response" && topic.device === "kitchen_hub",
        from,
      );
      assert.equal(answer.kind, "history");
      assert.equal(answer.image?.zone, "front_door");
      assert.deepEqual(Buffer.from(answer.image!.data, "base64"), Buffer.from(person.bytes));
      const what = await service.answerQuestion(
        "kitchen_hub",
        "What did the front door camera see today?",
      );
      assert.match(what!, /^Today, the front door camera saw a person at /);
      assert.equal(await service.answerQuestion("kitchen_hub", "What time is it?"), undefined);
    });

    await t.step(
      "live questions pick a camera in the zone asked about, or say none can see",
      async () => {
        assert.equal(
          await service.answerQuestion("kitchen_hub", "Is anyone at the front door?"),
          "Yes, I see a person at the front door.",
        );
        assert.equal(
          await service.answerQuestion("kitchen_hub", "How many cats are in the backyard?"),
          "I see a cat in the backyard.",
        );
        assert.equal(
          await service.answerQuestion("kitchen_hub", "Is anyone in the attic?"),
          "I can't see the attic: no camera is there.",
        );
        assert.equal(
          await service.answerQuestion("kitchen_hub", "What do you see?"),
          "I can't see from here: this device has no camera, and I don't know which room it is in.",
        );
        // The asking device's own camera (a camera that is asked itself: step 4).
        assert.equal(
          await service.answerQuestion("yard_cam", "What do you see?"),
          "I see a cat in the backyard.",
        );
      },
    );

    await t.step("upload with a question → answer on the session's response topic", async () => {
      const from = watcher.messages.length;
      const coffee = await photoJpeg("coffee.png", 640, 480);
      await client.publish({ kind: "upload_image", session: "web_1" }, {
        session_id: "web_1",
        media_type: "image",
        format: "jpeg",
        filename: "coffee.jpg",
        context: "Is there a cup in this picture?",
        conversation_id: "conv_1",
        data: b64(coffee),
      });
      const answer = await watcher.next<MediaAnswer>(
        (topic) => topic.kind === "upload_response" && topic.session === "web_1",
        from,
      );
      assert.equal(answer.ok, true, JSON.stringify(answer.error));
      assert.equal(answer.answer, "Yes, I see a cup.");
      assert.equal(answer.conversation_id, "conv_1");
      assert.equal(answer.visual_context?.source.type, "mqtt_upload");
      assert.equal(answer.visual_context?.media.width, 640);
      assert.ok(answer.visual_context?.analysis?.objects?.some((o) => o.label === "cup"));
    });

    await t.step("an uploaded page is read with OCR", async () => {
      const from = watcher.messages.length;
      const page = await Deno.readFile(`${PHOTOS_DIR}page.png`);
      await client.publish({ kind: "upload_image", session: "web_2" }, {
        session_id: "web_2",
        media_type: "image",
        format: "png",
        context: "Read this.",
        data: b64(page),
      });
      const answer = await watcher.next<MediaAnswer>(
        (topic) => topic.kind === "upload_response" && topic.session === "web_2",
        from,
      );
      assert.equal(answer.ok, true, JSON.stringify(answer.error));
      assert.match(answer.answer!, /^It says: /);
      assert.ok((answer.visual_context?.analysis?.text_detected ?? []).length >= 3);
    });

    await t.step("bad uploads get an error naming what was wrong", async () => {
      const truncated = (await photoJpeg("astronaut.png", 320, 240)).subarray(0, 2000);
      const cases: [string, Record<string, unknown>, RegExp, string][] = [
        [
          "b1",
          { format: "jpeg", data: b64(new TextEncoder().encode("not an image at all")) },
          /./,
          "not_image",
        ],
        ["b2", { format: "jpeg", data: b64(truncated) }, /./, "truncated"],
        [
          "b3",
          { format: "webp", data: b64(person.bytes) },
          /format webp is not accepted here/,
          "unsupported_format",
        ],
        ["b4", { format: "gif", data: "AAAA" }, /format/, "bad_message"],
        ["b5", { format: "png", data: b64(pngDeclaring(100_000, 100_000)) }, /100000/, "too_large"],
      ];
      for (const [session, fields, message, code] of cases) {
        const from = watcher.messages.length;
        await client.client.publishAsync(
          `naila/uploads/${session}/image`,
          JSON.stringify({ session_id: session, media_type: "image", ...fields }),
          { qos: 1 },
        );
        const answer = await watcher.next<MediaAnswer>(
          (topic) => topic.kind === "upload_response" && topic.session === session,
          from,
        );
        assert.equal(answer.ok, false, session);
        assert.equal(answer.error?.code, code, `${session}: ${answer.error?.message}`);
        assert.match(answer.error!.message, message, session);
      }
    });

    await t.step(
      "a 50 MB upload: the broker drops its sender; nothing reaches the server",
      async () => {
        const flooder = await connectMqtt(mqttConfig, { clientId: "media-flooder" });
        const closed = new Promise<void>((resolve) =>
          flooder.client.once("close", () => resolve())
        );
        const huge = `{"session_id":"big","media_type":"image","format":"jpeg","data":"${
          "A".repeat(50 * 1024 * 1024)
        }"}`;
        flooder.client.publish("naila/uploads/big/image", huge, { qos: 1 });
        await closed;
        await flooder.client.endAsync(true);
        // The server answers every upload it receives, even a bad one: no answer, nothing received.
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(
          watcher.count((topic) => topic.kind === "upload_response" && topic.session === "big"),
          0,
        );
      },
    );

    await t.step(
      "an upload just over the message limit is refused by its length before JSON.parse",
      async () => {
        const from = watcher.messages.length;
        const over = `{"session_id":"over","media_type":"image","format":"jpeg","data":"${
          "A".repeat(MAX_MEDIA_MESSAGE_CHARS)
        }"}`;
        await client.client.publishAsync("naila/uploads/over/image", over, { qos: 1 });
        const answer = await watcher.next<MediaAnswer>(
          (topic) => topic.kind === "upload_response" && topic.session === "over",
          from,
        );
        assert.equal(answer.error?.code, "bad_message");
        assert.match(
          answer.error!.message,
          new RegExp(
            `upload is ${over.length} characters, at most ${MAX_MEDIA_MESSAGE_CHARS} allowed`,
          ),
        );
      },
    );

    await t.step(
      "recordings: WAV and Opus speech run as a spoken turn; answered and spoken",
      async () => {
        const wav = await speechWav("Is anyone at the front door?");
        await client.publish({ kind: "device_status", device: "hall_hub" }, {
          device_id: "hall_hub",
          online: true,
          capabilities: ["audio", "speaker"],
        });
        while (!service.devices.canSpeak("hall_hub")) await new Promise((r) => setTimeout(r, 10));
        for (
          const [format, data] of [["wav", wav], ["opus", await encodeAudio(wav, "opus")]] as const
        ) {
          const from = watcher.messages.length;
          await client.publish({ kind: "device_recording", device: "hall_hub" }, {
            request_id: `rec_${format}`,
            media_type: "audio",
            format,
            duration_ms: 1700,
            timestamp: new Date().toISOString(),
            data: b64(data),
          });
          const answer = await watcher.next<MediaAnswer>(
            (topic) => topic.kind === "device_media_response" && topic.device === "hall_hub",
            from,
          );
          assert.equal(answer.ok, true, JSON.stringify(answer.error));
          assert.equal(answer.request_id, `rec_${format}`);
          assert.equal(answer.answer, "Here is my answer.");
          const samples = heard.at(-1)!.samples;
          assert.ok(
            samples > 16000 && samples < 16000 * 3,
            `${format}: ${samples} samples at 16 kHz`,
          );
        }
        assert.deepEqual(spoken.filter(([device]) => device === "hall_hub").length, 2);
      },
    );

    await t.step("a video clip is sampled and its frames detected", async () => {
      const from = watcher.messages.length;
      const clip = await photoClip("chelsea.png", "mp4", 2);
      await client.publish({ kind: "device_recording", device: "yard_cam" }, {
        request_id: "clip_1",
        media_type: "video",
        format: "mp4",
        duration_ms: 2000,
        timestamp: new Date().toISOString(),
        data: b64(clip),
      });
      const answer = await watcher.next<MediaAnswer>(
        (topic) => topic.kind === "device_media_response" && topic.device === "yard_cam",
        from,
      );
      assert.equal(answer.ok, true, JSON.stringify(answer.error));
      assert.equal(answer.answer, "In the clip I see a cat.");
      assert.deepEqual(answer.frames?.map((f) => f.at_ms), [0, 1000]);
    });

    await t.step("a recording that is not audio gets a clear error", async () => {
      const from = watcher.messages.length;
      await client.publish({ kind: "device_recording", device: "hall_hub" }, {
        request_id: "rec_bad",
        media_type: "audio",
        format: "mp3",
        duration_ms: 1000,
        timestamp: new Date().toISOString(),
        data: b64(new TextEncoder().encode("definitely not an mp3 file ".repeat(50))),
      });
      const answer = await watcher.next<MediaAnswer>(
        (topic) => topic.kind === "device_media_response" && topic.device === "hall_hub",
        from,
      );
      assert.equal(answer.ok, false);
      assert.equal(answer.error?.code, "not_audio");
      assert.match(answer.error!.message, /^mp3 recording could not be decoded/);
    });
  } finally {
    for (const cam of cameras) await cam.close();
    service.close();
    await client.close();
    await link.close();
    await (await vision?.catch(() => undefined))?.close();
    store.close();
    await broker.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
