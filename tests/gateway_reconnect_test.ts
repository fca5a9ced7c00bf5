/**
 * An MQTT reconnect of the gateway must not cut live calls: on re-subscribe the broker replays
 * every device's retained `online: true` status, which is not a device reconnecting (spec 9.3).
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { DevicePeer } from "../device/peer.ts";
import { delay } from "../shared/async.ts";
import { startGatewayProcess } from "../scripts/lib/gateway_process.ts";
import { startMosquitto } from "../scripts/lib/mosquitto.ts";
import { startServerProcess } from "../scripts/lib/server_process.ts";
import { speak } from "../scripts/lib/speech.ts";

/** After the reconnect, give a wrong re-offer time to happen before checking it did not. */
const SETTLE_MS = 1500;

Deno.test("a gateway MQTT reconnect keeps the live WebRTC sessions", async () => {
  const broker = await startMosquitto();
  const server = await startServerProcess({
    PIPELINE: "echo",
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(broker.port),
  });
  const clientId = `naila-gateway-${Deno.pid}`;
  const gateway = await startGatewayProcess({
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(broker.port),
    NAILA_DATA_DIR: server.dataDir,
    AI_SERVER_HOST: "127.0.0.1",
    AI_SERVER_PORT: String(server.audioPort),
    GATEWAY_MQTT_CLIENT_ID: clientId,
  });
  const device = new DevicePeer({
    id: "reconnect_1",
    mqtt: { host: "127.0.0.1", port: broker.port },
    hostAddresses: ["127.0.0.1"],
  });
  try {
    await device.connect();
    const session = device.sessionId;
    assert.ok(session);

    // The broker drops a client when another connects with its id: the gateway is kicked off
    // and reconnects on its own, re-subscribing to the retained statuses.
    const intruder = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
      clientId,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    await gateway.waitForLog((l) => l.msg.startsWith("MQTT reconnected"), 15_000);
    await intruder.endAsync(true).catch(() => {});
    await delay(SETTLE_MS);

    assert.equal(device.sessionId, session, "the device was not re-offered a new session");
    assert.equal(device.connectionState, "connected");
    assert.ok(!gateway.logs.some((l) => l.msg === "session closed"), "no session was closed");
    const question = await speak("Are you still there?");
    await device.speak(question.samples, question.rate);
    const reply = await device.nextReply(15_000);
    assert.ok(reply.samples().length > 48000 * 0.5, "the call still carries audio both ways");
  } finally {
    await device.close();
    await gateway.stop();
    await server.stop();
    await broker.stop();
  }
});
