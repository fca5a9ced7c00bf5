import assert from "node:assert/strict";
import { connectAsync, type MqttClient } from "mqtt";
import { startEmbeddedBroker } from "./broker.ts";
import { addDevice } from "./credentials.ts";

const WAIT_MS = 3000;

function nextMessage(client: MqttClient, topic: string) {
  return new Promise<{ payload: string; qos: number; retain: boolean }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no message on ${topic} in ${WAIT_MS} ms`)),
      WAIT_MS,
    );
    client.on("message", (t, payload, packet) => {
      if (t !== topic) return;
      clearTimeout(timer);
      resolve({ payload: payload.toString(), qos: packet.qos, retain: packet.retain });
    });
  });
}

function connectTo(port: number, extra: Record<string, unknown> = {}) {
  return connectAsync({
    host: "127.0.0.1",
    port,
    protocolVersion: 4,
    reconnectPeriod: 0,
    ...extra,
  });
}

Deno.test("startEmbeddedBroker", async (t) => {
  await t.step("relays QoS 1 and keeps retained messages for late subscribers", async () => {
    const broker = await startEmbeddedBroker({ port: 0, allowAnonymous: true });
    const clients: MqttClient[] = [];
    try {
      assert.ok(broker.port > 0);
      assert.equal(broker.host, "127.0.0.1");
      const publisher = await connectTo(broker.port, { clientId: "pub" });
      clients.push(publisher);
      await publisher.publishAsync("naila/devices/d1/status", '{"online":true}', {
        qos: 1,
        retain: true,
      });
      const late = await connectTo(broker.port, { clientId: "late" });
      clients.push(late);
      const retained = nextMessage(late, "naila/devices/d1/status");
      await late.subscribeAsync("naila/devices/+/status", { qos: 1 });
      assert.deepEqual(await retained, { payload: '{"online":true}', qos: 1, retain: true });

      const live = nextMessage(late, "naila/devices/d1/command");
      await late.subscribeAsync("naila/devices/d1/command", { qos: 1 });
      await publisher.publishAsync("naila/devices/d1/command", "go", { qos: 1 });
      assert.deepEqual(await live, { payload: "go", qos: 1, retain: false });
    } finally {
      await Promise.all(clients.map((c) => c.endAsync()));
      await broker.close();
    }
  });

  await t.step("close() disconnects clients and frees the port", async () => {
    const broker = await startEmbeddedBroker({ port: 0, allowAnonymous: true });
    const client = await connectTo(broker.port);
    const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
    await broker.close();
    await closed;
    assert.equal(client.connected, false);
    await client.endAsync(true);
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: broker.port }));
    await broker.close(); // idempotent
  });

  await t.step("with a data dir, takes its users and rejects wrong credentials", async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "naila_broker_test_" });
    const broker = await startEmbeddedBroker({ port: 0, dataDir });
    try {
      const login = addDevice(dataDir, "kitchen");
      const ok = await connectTo(broker.port, { ...login });
      await ok.endAsync();
      await assert.rejects(
        connectTo(broker.port, { username: "kitchen", password: "wrong" }),
        /Bad username or password|Not authorized/,
      );
      await assert.rejects(connectTo(broker.port), /Not authorized/);
    } finally {
      await broker.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  });

  await t.step(
    "refuses to start with neither users nor an explicit anonymous opt-out",
    async () => {
      await assert.rejects(startEmbeddedBroker({ port: 0 }), /dataDir\) or allowAnonymous: true/);
    },
  );

  await t.step("a taken port is reported with host and port", async () => {
    const first = await startEmbeddedBroker({ port: 0, allowAnonymous: true });
    try {
      await assert.rejects(
        startEmbeddedBroker({ port: first.port, allowAnonymous: true }),
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port}`),
      );
    } finally {
      await first.close();
    }
  });
});
