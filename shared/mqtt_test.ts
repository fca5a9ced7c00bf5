import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { startMosquitto } from "../scripts/lib/mosquitto.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { startEmbeddedBroker } from "./broker.ts";
import { loadConfig } from "./config.ts";
import { addDevice } from "./credentials.ts";
import type { DeviceStatus } from "./messages.ts";
import { connectMqtt, MQTT_PROTOCOL_VERSION, mqttClientOptions, type NailaMqtt } from "./mqtt.ts";
import { parseTopic, type Topic, topicFilter } from "./topics.ts";

const WAIT_MS = 3000;
const TS = "2025-01-15T10:30:00Z";

interface Received {
  topic: Topic;
  payload: string;
  retain: boolean;
  qos: number;
}

/** Resolves with the next message whose parsed topic has `kind`. */
function next(mqtt: NailaMqtt, kind: Topic["kind"]): Promise<Received> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${kind} message in ${WAIT_MS} ms`)),
      WAIT_MS,
    );
    const listener = (
      topic: string,
      payload: Uint8Array,
      packet: { retain: boolean; qos: number },
    ) => {
      const parsed = parseTopic(topic);
      if (!parsed.ok || parsed.value.kind !== kind) return;
      clearTimeout(timer);
      mqtt.client.off("message", listener);
      resolve({
        topic: parsed.value,
        payload: new TextDecoder().decode(payload),
        retain: packet.retain,
        qos: packet.qos,
      });
    };
    mqtt.client.on("message", listener);
  });
}

type Broker = { port: number; close(): Promise<void> };

const BROKERS: Array<[string, () => Promise<Broker>]> = [
  ["mosquitto", async () => {
    const m = await startMosquitto();
    return { port: m.port, close: m.stop };
  }],
  // A plain broker for the client's own behaviour; tests/security_mqtt_test.ts covers logins.
  ["embedded aedes", () => startEmbeddedBroker({ port: 0, allowAnonymous: true })],
];

for (const [name, start] of BROKERS) {
  Deno.test(`connectMqtt against ${name}`, async (t) => {
    const broker = await start();
    const config = loadConfig({ MQTT_HOST: "127.0.0.1", MQTT_PORT: String(broker.port) }).mqtt;
    const open: NailaMqtt[] = [];
    const connectAs = async (
      clientId: string,
      will?: Parameters<typeof connectMqtt>[1]["will"],
    ) => {
      const mqtt = await connectMqtt(config, { clientId, will });
      open.push(mqtt);
      return mqtt;
    };
    try {
      await t.step("retained status is seen by a late subscriber with QoS 1", async () => {
        const device = await connectAs("device-1");
        const status: DeviceStatus = {
          device_id: "kitchen",
          online: true,
          capabilities: ["audio"],
          timestamp: TS,
        };
        await device.publish({ kind: "device_status", device: "kitchen" }, status);
        const gateway = await connectAs("gateway-1");
        const seen = next(gateway, "device_status");
        await gateway.subscribe(topicFilter("device_status"));
        const message = await seen;
        assert.deepEqual(message.topic, { kind: "device_status", device: "kitchen" });
        assert.deepEqual(JSON.parse(message.payload), status);
        assert.equal(message.retain, true);
        assert.equal(message.qos, 1);
      });

      await t.step("last will is delivered on abrupt disconnect", async () => {
        const watcher = await connectAs("watcher");
        await watcher.subscribe(topicFilter("device_status", { device: "porch" }));
        const doomed = await connectAs("porch-device", {
          topic: { kind: "device_status", device: "porch" },
          message: { device_id: "porch", online: false },
        });
        const will = next(watcher, "device_status");
        // Cut the TCP connection without an MQTT DISCONNECT, as a crash or power loss would.
        doomed.client.options.reconnectPeriod = 0;
        (doomed.client.stream as unknown as Socket).destroy();
        const message = await will;
        assert.deepEqual(message.topic, { kind: "device_status", device: "porch" });
        assert.deepEqual(JSON.parse(message.payload), { device_id: "porch", online: false });
      });

      await t.step(
        "onMessage delivers parsed topics; signaling is QoS 1, not retained",
        async () => {
          const gateway = await connectAs("gateway-2");
          const device = await connectAs("device-2");
          await device.subscribe(topicFilter("device_offer", { device: "hall" }));
          const received: Array<[Topic, string]> = [];
          const got = new Promise<void>((resolve) => {
            const off = device.onMessage((topic, payload) => {
              received.push([topic, payload]);
              off();
              resolve();
            });
          });
          const raw = next(device, "device_offer");
          const offer = { type: "offer" as const, sdp: "v=0\r\n", session_id: "s1" };
          await gateway.publish({ kind: "device_offer", device: "hall" }, offer);
          await got;
          const packet = await raw;
          assert.deepEqual(received, [[
            { kind: "device_offer", device: "hall" },
            JSON.stringify(offer),
          ]]);
          assert.equal(packet.qos, 1);
          assert.equal(packet.retain, false);
        },
      );

      await t.step("publish refuses a message that breaks its schema", async () => {
        const gateway = await connectAs("gateway-3");
        await assert.rejects(
          gateway.publish(
            { kind: "device_status", device: "x" },
            { device_id: "a/b", online: true } as DeviceStatus,
          ),
          /refusing to publish on naila\/devices\/x\/status: device status: device_id: contains '\/'/,
        );
      });
    } finally {
      await Promise.all(open.map((m) => m.close()));
      await broker.close();
    }
  });
}

Deno.test("connectMqtt waiting for a broker", async (t) => {
  await t.step("times out naming host, port and the last error when nothing listens", async () => {
    const port = await freePort();
    const config = loadConfig({ MQTT_HOST: "127.0.0.1", MQTT_PORT: String(port) }).mqtt;
    await assert.rejects(
      connectMqtt(config, { clientId: "nobody", connectTimeoutMs: 300 }),
      new RegExp(`MQTT broker 127\\.0\\.0\\.1:${port} not reachable within 300 ms: .*ECONNREFUSED`),
    );
  });

  await t.step("connects to a broker that starts after the client", async () => {
    const port = await freePort();
    const config = loadConfig({ MQTT_HOST: "127.0.0.1", MQTT_PORT: String(port) }).mqtt;
    const connecting = connectMqtt(config, { clientId: "early", connectTimeoutMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const broker = await startEmbeddedBroker({ port, allowAnonymous: true });
    try {
      const mqtt = await connecting;
      assert.equal(mqtt.client.connected, true);
      await mqtt.close();
    } finally {
      await broker.close();
    }
  });

  await t.step("bad credentials are refused at once", async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "naila_mqtt_test_" });
    addDevice(dataDir, "u");
    const broker = await startEmbeddedBroker({ port: 0, dataDir });
    try {
      const config = loadConfig({
        MQTT_HOST: "127.0.0.1",
        MQTT_PORT: String(broker.port),
        MQTT_USERNAME: "u",
        MQTT_PASSWORD: "wrong",
      }).mqtt;
      // A refusal ends the attempt at once: only the CONNACK path says "refused", while waiting
      // out the (here very long) connect timeout would say "not reachable within".
      await assert.rejects(
        connectMqtt(config, { clientId: "intruder", connectTimeoutMs: 120_000 }),
        /MQTT broker 127\.0\.0\.1:\d+ refused the connection: .*(Bad username or password|Not authorized)/,
      );
    } finally {
      await broker.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  });
});

Deno.test("mqttClientOptions", async (t) => {
  await t.step("plain: MQTT 3.1.1, credentials, will with the topic's QoS and retain", () => {
    const config = loadConfig({
      MQTT_HOST: "broker.lan",
      MQTT_USERNAME: "gw",
      MQTT_PASSWORD: "pw",
    }).mqtt;
    const options = mqttClientOptions(config, {
      clientId: "gateway",
      will: { topic: { kind: "gateway_status" }, message: { online: false, timestamp: TS } },
    });
    assert.equal(options.protocol, "mqtt");
    assert.equal(options.host, "broker.lan");
    assert.equal(options.port, 1883);
    assert.equal(options.protocolVersion, MQTT_PROTOCOL_VERSION);
    assert.equal(options.username, "gw");
    assert.equal(options.password, "pw");
    assert.ok((options.reconnectPeriod ?? 0) > 0);
    assert.deepEqual(options.will, {
      topic: "naila/gateway/status",
      payload: JSON.stringify({ online: false, timestamp: TS }),
      qos: 1,
      retain: true,
    });
  });

  await t.step("TLS reads the CA, cert and key files", async () => {
    const dir = await Deno.makeTempDir({ prefix: "naila-mqtt-tls-" });
    try {
      for (const f of ["ca", "cert", "key"]) {
        await Deno.writeTextFile(`${dir}/${f}.pem`, `${f} pem`);
      }
      const config = loadConfig({
        MQTT_HOST: "broker.lan",
        MQTT_CA: `${dir}/ca.pem`,
        MQTT_CERT: `${dir}/cert.pem`,
        MQTT_KEY: `${dir}/key.pem`,
      }).mqtt;
      const options = mqttClientOptions(config, { clientId: "c" });
      assert.equal(options.protocol, "mqtts");
      assert.equal(options.ca, "ca pem");
      assert.equal(options.cert, "cert pem");
      assert.equal(options.key, "key pem");
      assert.equal(options.rejectUnauthorized, true);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("MQTT_PASSWORD_FILE: the password is read from the file", async () => {
    const file = await Deno.makeTempFile();
    try {
      await Deno.writeTextFile(file, "from-file\n");
      const config = loadConfig({ MQTT_USERNAME: "u", MQTT_PASSWORD_FILE: file }).mqtt;
      assert.equal(mqttClientOptions(config, { clientId: "c" }).password, "from-file");
    } finally {
      await Deno.remove(file);
    }
  });

  await t.step("an invalid will is refused before connecting", () => {
    assert.throws(
      () =>
        mqttClientOptions(loadConfig({}).mqtt, {
          clientId: "c",
          will: {
            topic: { kind: "gateway_status" },
            message: { online: false, timestamp: "now" },
          },
        }),
      /refusing to publish on naila\/gateway\/status: gateway status: timestamp/,
    );
  });
});
