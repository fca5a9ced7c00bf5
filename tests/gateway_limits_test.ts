/**
 * Issue 10, gateway side: a device beyond GATEWAY_MAX_DEVICES is refused on its events topic; an
 * answer without Opus, or a malformed one, ends that session at once with an error the device
 * receives (before, a PCMU-only device was "connected" and ignored, and a truncated answer was
 * only noticed 14 s later).
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { startEmbeddedBroker } from "../shared/broker.ts";
import { startGatewayProcess } from "../scripts/lib/gateway_process.ts";
import { freePort } from "../scripts/lib/ports.ts";

/** Polls before a test counts as hung (a count, not a time bound). */
const MAX_POLLS = 3000;

async function until<T>(find: () => T | undefined, what: string): Promise<T> {
  for (let polls = 0;; polls++) {
    const found = find();
    if (found !== undefined) return found;
    assert.ok(polls < MAX_POLLS, `no ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test({
  name: "device cap and unusable answers: refused at once, and the device is told why",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const broker = await startEmbeddedBroker({ host: "127.0.0.1", port: 0, allowAnonymous: true });
    const gateway = await startGatewayProcess({
      MQTT_HOST: "127.0.0.1",
      MQTT_PORT: String(broker.port),
      AI_SERVER_HOST: "127.0.0.1",
      AI_SERVER_PORT: String(await freePort()),
      AI_SERVER_AUTH: "off",
      AUDIO_VAD_MODE: "energy",
      GATEWAY_MAX_DEVICES: "1",
    });
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
      protocolVersion: 4,
    });
    const seen: { topic: string; message: Record<string, string> }[] = [];
    client.on(
      "message",
      (topic, payload) => seen.push({ topic, message: JSON.parse(String(payload)) }),
    );
    await client.subscribeAsync(["naila/devices/+/events", "naila/devices/+/signaling/offer"], {
      qos: 1,
    });
    const announce = (device: string) =>
      client.publishAsync(
        `naila/devices/${device}/status`,
        JSON.stringify({
          device_id: device,
          online: true,
          capabilities: ["audio"],
          timestamp: new Date().toISOString(),
        }),
        { qos: 1 },
      );
    const offerFor = (device: string, after = 0) =>
      until(
        () => seen.slice(after).find((s) => s.topic === `naila/devices/${device}/signaling/offer`),
        `offer for ${device}`,
      ).then((s) => s.message);
    const errorFor = (device: string, after: number) =>
      until(
        () =>
          seen.slice(after).find((s) =>
            s.topic === `naila/devices/${device}/events` && s.message.type === "error"
          ),
        `error event for ${device}`,
      ).then((s) => s.message);
    try {
      await announce("first");
      const offer = await offerFor("first");

      await t.step(
        "a second device beyond GATEWAY_MAX_DEVICES=1 is refused on its events",
        async () => {
          const mark = seen.length;
          await announce("second");
          const error = await errorFor("second", mark);
          assert.match(error.message, /at most 1 devices/);
          assert.ok(!seen.some((s) => s.topic === "naila/devices/second/signaling/offer"));
        },
      );

      await t.step("an answer offering only PCMU ends the session with the reason", async () => {
        const mark = seen.length;
        const pcmuOnly = offer.sdp
          .replace(/^(m=audio \d+ \S+) .*$/m, "$1 0")
          .replace(/^a=rtpmap:\d+ opus.*\r\n/m, "a=rtpmap:0 PCMU/8000\r\n")
          .replace("a=setup:actpass", "a=setup:active");
        await client.publishAsync(
          "naila/devices/first/signaling/answer",
          JSON.stringify({ type: "answer", sdp: pcmuOnly, session_id: offer.session_id }),
          { qos: 1 },
        );
        const error = await errorFor("first", mark);
        assert.match(error.message, /no Opus audio \(codecs: PCMU\)/);
        assert.equal(error.session_id, offer.session_id);
      });

      await t.step(
        "a truncated answer ends the next session at once, saying what is missing",
        async () => {
          const mark = seen.length;
          await announce("first");
          const next = await offerFor("first", mark);
          assert.notEqual(next.session_id, offer.session_id);
          const truncated = next.sdp.slice(0, next.sdp.indexOf("a=fingerprint"));
          await client.publishAsync(
            "naila/devices/first/signaling/answer",
            JSON.stringify({ type: "answer", sdp: truncated, session_id: next.session_id }),
            { qos: 1 },
          );
          const error = await errorFor("first", mark);
          assert.match(error.message, /SDP answer refused: .*(fingerprint|Opus|audio)/);
          assert.equal(error.session_id, next.session_id);
        },
      );
    } finally {
      await client.endAsync();
      await gateway.stop();
      await broker.close();
    }
  },
});
