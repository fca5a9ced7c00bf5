import assert from "node:assert/strict";
import { delay } from "../shared/async.ts";
import { createLogger } from "../shared/log.ts";
import { connectMqtt } from "../shared/mqtt.ts";
import { startEmbeddedBroker } from "../shared/broker.ts";
import { startMosquitto } from "../tests/helpers/mosquitto.ts";
import { startSignaling } from "./signaling.ts";

Deno.test("signaling: valid messages reach the handlers, everything else is logged and dropped", async () => {
  const broker = await startMosquitto();
  const lines: string[] = [];
  const log = createLogger("test.signaling", { level: "warn", write: (l) => lines.push(l) });
  const calls: string[] = [];
  const config = { embedded: false, host: "127.0.0.1", port: broker.port };
  const signaling = await startSignaling(config, {
    status: (device, s) => calls.push(`status:${device}:${s.online}`),
    answer: (device, a) => calls.push(`answer:${device}:${a.session_id}`),
    ice: (device, c) => calls.push(`ice:${device}:${c.from ?? "none"}`),
  }, { log, clientId: "gw-under-test" });
  const device = await connectMqtt(config, { clientId: "device-kitchen" });
  const watcher = await connectMqtt(config, { clientId: "watcher" });
  const statuses: string[] = [];
  watcher.client.on(
    "message",
    (_t: string, p: Uint8Array) => statuses.push(new TextDecoder().decode(p)),
  );
  await watcher.subscribe("naila/gateway/status");
  try {
    const raw = device.client;
    const send = (topic: string, payload: unknown) =>
      raw.publishAsync(topic, typeof payload === "string" ? payload : JSON.stringify(payload), {
        qos: 1,
      });
    await send("naila/devices/kitchen/status", { device_id: "kitchen", online: true });
    await send("naila/devices/kitchen/signaling/answer", {
      type: "answer",
      sdp: "v=0",
      session_id: "s1",
    });
    await send("naila/devices/kitchen/signaling/ice", {
      candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host",
      session_id: "s1",
      from: "device",
    });
    await send("naila/devices/kitchen/signaling/ice", { candidate: "", session_id: "s1" });
    // Dropped: our own echo, bad JSON, wrong device id, bad shapes, an invalid topic level.
    await send("naila/devices/kitchen/signaling/ice", {
      candidate: "x",
      session_id: "s1",
      from: "gateway",
    });
    await send("naila/devices/kitchen/status", "{");
    await send("naila/devices/kitchen/status", { device_id: "garage", online: true });
    await send("naila/devices/kitchen/signaling/answer", {
      type: "offer",
      sdp: "v=0",
      session_id: "s1",
    });
    await send("naila/devices/kitchen/signaling/ice", { candidate: "x", session_id: "a/b" });
    await send("naila/devices/bad id/status", { device_id: "bad id", online: true });
    await delay(300);
    assert.deepEqual(calls, [
      "status:kitchen:true",
      "answer:kitchen:s1",
      "ice:kitchen:device",
      "ice:kitchen:none",
    ]);
    const warnings = lines.map((l) => JSON.parse(l).msg);
    assert.equal(warnings.length, 5, warnings.join(", "));
    assert.equal(JSON.parse(statuses[statuses.length - 1]).online, true, "online after start");
    // A crash (no DISCONNECT): the broker publishes the retained offline will.
    signaling.mqtt.client.end(true);
    await delay(300);
    assert.equal(JSON.parse(statuses[statuses.length - 1]).online, false, "last will: offline");
  } finally {
    await device.close();
    await watcher.close();
    await broker.stop();
  }
});

Deno.test("signaling: after a broker restart it re-subscribes and re-announces online", async () => {
  let broker = await startEmbeddedBroker({ port: 0, allowAnonymous: true });
  const port = broker.port;
  const config = { embedded: false, host: "127.0.0.1", port };
  const log = createLogger("test.signaling", { level: "error" });
  const statuses: string[] = [];
  const signaling = await startSignaling(config, {
    status: (device) => statuses.push(device),
    answer: () => {},
    ice: () => {},
  }, { log, clientId: "gw-restart" });
  try {
    await broker.close();
    await delay(200);
    broker = await startEmbeddedBroker({ port, allowAnonymous: true });
    // The new broker knows nothing: the gateway must subscribe and publish online again.
    const watcher = await connectMqtt(config, { clientId: "watcher-restart" });
    const seen: string[] = [];
    watcher.client.on(
      "message",
      (_t: string, p: Uint8Array) => seen.push(new TextDecoder().decode(p)),
    );
    await watcher.subscribe("naila/gateway/status");
    const end = performance.now() + 5000;
    while (seen.length === 0 && performance.now() < end) await delay(20);
    assert.equal(JSON.parse(seen[seen.length - 1]).online, true, "online re-published (retained)");
    await watcher.client.publishAsync(
      "naila/devices/den/status",
      JSON.stringify({ device_id: "den", online: true }),
      { qos: 1 },
    );
    while (statuses.length === 0 && performance.now() < end) await delay(20);
    assert.deepEqual(statuses, ["den"], "subscriptions restored");
    await watcher.close();
  } finally {
    await signaling.close();
    await broker.close();
  }
});
