import assert from "node:assert/strict";
import mqtt from "mqtt";
import { connectMqtt } from "../shared/mqtt.ts";
import { createLogger } from "../shared/log.ts";
import { startMosquitto } from "../tests/helpers/mosquitto.ts";
import { selfSignedCertificate } from "../tests/helpers/tls.ts";
import { serveDevicePage } from "./web_bridge.ts";

/** Collects MQTT messages per topic and lets a test wait for the next one. */
function inbox(client: mqtt.MqttClient) {
  const seen: { topic: string; message: Record<string, unknown>; retain: boolean }[] = [];
  client.on("message", (topic, payload, packet) => {
    seen.push({ topic, message: JSON.parse(payload.toString()), retain: packet.retain });
  });
  return async (topic: string, match: (m: Record<string, unknown>) => boolean = () => true) => {
    for (let i = 0; i < 200; i++) {
      const hit = seen.find((s) => s.topic === topic && match(s.message));
      if (hit) {
        seen.splice(seen.indexOf(hit), 1);
        return hit.message;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no message on ${topic}`);
  };
}

function pageMessages(socket: WebSocket) {
  const queue: { kind: string; payload: Record<string, unknown> }[] = [];
  socket.addEventListener("message", (event) => queue.push(JSON.parse(event.data)));
  return async (kind: string) => {
    for (let i = 0; i < 200; i++) {
      const at = queue.findIndex((m) => m.kind === kind);
      if (at >= 0) return queue.splice(at, 1)[0].payload;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`page got no ${kind}`);
  };
}

/**
 * A broker, a bridge on loopback (its own MQTT client) and an observer of the device topics;
 * `tls` serves the page over HTTPS. `close` stops them all.
 */
async function startBridge(tls: { cert?: string; key?: string } = {}) {
  const broker = await startMosquitto();
  const connect = () =>
    mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { protocolVersion: 4 });
  const bridgeClient = await connectMqtt(
    { embedded: false, host: "127.0.0.1", port: broker.port },
    { clientId: `web-bridge-test-${crypto.randomUUID().slice(0, 8)}` },
  );
  const observer = await connect();
  await observer.subscribeAsync("naila/devices/#", { qos: 1 });
  const bridge = await serveDevicePage({
    port: 0,
    hostname: "127.0.0.1",
    ...tls,
    mqtt: bridgeClient,
    log: createLogger("web_bridge_test", { level: "error" }),
  });
  return {
    bridge,
    observer,
    base: `127.0.0.1:${bridge.port}`,
    next: inbox(observer),
    async close() {
      await bridge.close();
      await bridgeClient.close();
      await observer.endAsync();
      await broker.stop();
    },
  };
}

Deno.test("the device page bridge relays a browser's signaling to MQTT and back", async (t) => {
  const { bridge, observer, base, next, close } = await startBridge();
  try {
    await t.step("serves the page", async () => {
      const response = await fetch(`http://${base}/`);
      assert.equal(response.status, 200);
      assert.match(await response.text(), /RTCPeerConnection/);
    });

    await t.step("refuses a device id that is not a topic level", async () => {
      const response = await fetch(`http://${base}/ws?device=a%2Fb`);
      assert.equal(response.status, 400);
      assert.match(await response.text(), /contains '\/'/);
    });

    await t.step(
      "refuses an id outside the browser namespace (a page cannot take over a device)",
      async () => {
        const response = await fetch(`http://${base}/ws?device=kitchen`);
        assert.equal(response.status, 400);
        assert.match(await response.text(), /does not start with web_/);
      },
    );

    const socket = new WebSocket(`ws://${base}/ws?device=web_1`);
    const fromBridge = pageMessages(socket);
    await new Promise((resolve) => socket.addEventListener("open", resolve, { once: true }));

    await t.step("announces the browser as an online device (retained)", async () => {
      const status = await next("naila/devices/web_1/status", (m) => m.online === true);
      assert.equal(status.device_id, "web_1");
      assert.equal(status.echo_cancellation, true, "the page cancels its own echo");
    });

    await t.step("forwards the gateway's offer and candidates, not the page's own", async () => {
      const offer = { type: "offer", sdp: "v=0\r\n", session_id: "s1" };
      await observer.publishAsync("naila/devices/web_1/signaling/offer", JSON.stringify(offer), {
        qos: 1,
      });
      assert.deepEqual(await fromBridge("offer"), offer);
      const own = {
        candidate: "candidate:own",
        sdpMid: "0",
        sdpMLineIndex: 0,
        session_id: "s1",
        from: "device",
      };
      const theirs = { ...own, candidate: "candidate:gw", from: "gateway" };
      await observer.publishAsync("naila/devices/web_1/signaling/ice", JSON.stringify(own), {
        qos: 1,
      });
      await observer.publishAsync("naila/devices/web_1/signaling/ice", JSON.stringify(theirs), {
        qos: 1,
      });
      assert.equal((await fromBridge("ice")).candidate, "candidate:gw");
    });

    await t.step(
      "publishes the page's answer and marks its candidates as the device's",
      async () => {
        socket.send(
          JSON.stringify({
            kind: "answer",
            payload: { type: "answer", sdp: "v=0\r\n", session_id: "s1" },
          }),
        );
        assert.equal((await next("naila/devices/web_1/signaling/answer")).session_id, "s1");
        const candidate = {
          candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host",
          sdpMid: "0",
          sdpMLineIndex: 0,
          session_id: "s1",
        };
        socket.send(JSON.stringify({ kind: "ice", payload: candidate }));
        const relayed = await next(
          "naila/devices/web_1/signaling/ice",
          (m) => m.candidate === candidate.candidate,
        );
        assert.equal(relayed.from, "device");
      },
    );

    await t.step("answers bad messages with an error naming the problem and stays up", async () => {
      socket.send("not json");
      assert.match(String((await fromBridge("error")).message), /not valid JSON/);
      socket.send(
        JSON.stringify({ kind: "answer", payload: { type: "answer", session_id: "s1" } }),
      );
      assert.match(String((await fromBridge("error")).message), /sdp/);
      socket.send("null");
      assert.match(String((await fromBridge("error")).message), /JSON object/);
      socket.send("[1,2]");
      assert.match(String((await fromBridge("error")).message), /JSON object/);
      socket.send(JSON.stringify({ kind: "dance" }));
      assert.match(String((await fromBridge("error")).message), /answer\|ice/);
      assert.deepEqual(bridge.devices(), ["web_1"]);
    });

    await t.step("relays device events to the page", async () => {
      const event = { type: "turn", turn: "t1", transcript: "hello", reply: "hi" };
      await observer.publishAsync("naila/devices/web_1/events", JSON.stringify(event), { qos: 1 });
      assert.deepEqual(await fromBridge("event"), event);
    });

    await t.step("closing the page marks the device offline", async () => {
      socket.close();
      const status = await next("naila/devices/web_1/status", (m) => m.online === false);
      assert.equal(status.device_id, "web_1");
      assert.deepEqual(bridge.devices(), []);
    });
  } finally {
    await close();
  }
});

Deno.test("with a certificate and key the page is served over https and signals over wss", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila_web_tls_" });
  const { cert, key } = await selfSignedCertificate(dir);
  const { base, next, close } = await startBridge({ cert, key });
  const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(cert)] });
  try {
    const response = await fetch(`https://${base}/`, { client });
    assert.equal(response.status, 200);
    assert.match(await response.text(), /RTCPeerConnection/);
    // Really TLS with that certificate: a client that does not trust it is refused.
    await assert.rejects(fetch(`https://${base}/healthz`));
    await assert.rejects(fetch(`http://${base}/healthz`));

    const socket = new WebSocket(`wss://${base}/ws?device=web_tls`, { client });
    await new Promise((resolve, reject) => {
      socket.addEventListener("open", resolve, { once: true });
      socket.addEventListener("error", reject, { once: true });
    });
    assert.equal(
      (await next("naila/devices/web_tls/status", (m) => m.online === true)).device_id,
      "web_tls",
    );
    const closed = new Promise((resolve) => socket.addEventListener("close", resolve));
    socket.close();
    await closed;
    await next("naila/devices/web_tls/status", (m) => m.online === false);
  } finally {
    client.close();
    await close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a page with its camera on announces video and its zone; a bad zone is refused", async () => {
  const { base, next, close } = await startBridge();
  try {
    const bad = await fetch(`http://${base}/ws?device=web_cam&video=1&zone=a%2Fb`);
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /^zone "a\/b" contains '\/'/);
    const socket = new WebSocket(`ws://${base}/ws?device=web_cam&video=1&zone=hallway`);
    await new Promise((resolve) => socket.addEventListener("open", resolve, { once: true }));
    const status = await next("naila/devices/web_cam/status", (m) => m.online === true);
    assert.deepEqual(status.capabilities, ["audio", "speaker", "browser", "video"]);
    assert.equal(status.zone, "hallway");
    socket.close();
    await next("naila/devices/web_cam/status", (m) => m.online === false);
  } finally {
    await close();
  }
});
