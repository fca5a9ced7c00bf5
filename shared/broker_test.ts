import assert from "node:assert/strict";
import { connectAsync, type MqttClient } from "mqtt";
import { MAX_PACKET_BYTES, PacketSizeGuard, startEmbeddedBroker } from "./broker.ts";

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
    const broker = await startEmbeddedBroker({ port: 0 });
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

  await t.step(
    "relays packets larger than one 64 KiB socket read (snapshots, uploads)",
    async () => {
      const broker = await startEmbeddedBroker({ port: 0 });
      const clients: MqttClient[] = [];
      try {
        const publisher = await connectTo(broker.port, { clientId: "big-pub" });
        const subscriber = await connectTo(broker.port, { clientId: "big-sub" });
        clients.push(publisher, subscriber);
        await subscriber.subscribeAsync("naila/uploads/+/image", { qos: 1 });
        for (const size of [200_000, 3_000_000]) {
          const received = nextMessage(subscriber, `naila/uploads/s${size}/image`);
          await publisher.publishAsync(`naila/uploads/s${size}/image`, "A".repeat(size), {
            qos: 1,
          });
          assert.equal((await received).payload.length, size);
        }
      } finally {
        await Promise.all(clients.map((c) => c.endAsync()));
        await broker.close();
      }
    },
  );

  await t.step("a 50 MB publish closes its sender's connection; the broker serves on", async () => {
    const broker = await startEmbeddedBroker({ port: 0 });
    const clients: MqttClient[] = [];
    try {
      const flooder = await connectTo(broker.port, { clientId: "flood" });
      const subscriber = await connectTo(broker.port, { clientId: "flood-sub" });
      clients.push(flooder, subscriber);
      await subscriber.subscribeAsync("naila/uploads/+/image", { qos: 1 });
      let got = 0;
      subscriber.on("message", () => got++);
      const closed = new Promise<void>((resolve) => flooder.once("close", () => resolve()));
      flooder.publish("naila/uploads/big/image", "A".repeat(50 * 1024 * 1024), { qos: 1 });
      await closed;
      const small = nextMessage(subscriber, "naila/uploads/small/image");
      const other = await connectTo(broker.port, { clientId: "after-flood" });
      clients.push(other);
      await other.publishAsync("naila/uploads/small/image", "ok", { qos: 1 });
      assert.equal((await small).payload, "ok");
      assert.equal(got, 1, "only the small upload was delivered");
    } finally {
      await Promise.all(clients.map((c) => c.endAsync(true)));
      await broker.close();
    }
  });

  await t.step("close() disconnects clients and frees the port", async () => {
    const broker = await startEmbeddedBroker({ port: 0 });
    const client = await connectTo(broker.port);
    const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
    await broker.close();
    await closed;
    assert.equal(client.connected, false);
    await client.endAsync(true);
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: broker.port }));
    await broker.close(); // idempotent
  });

  await t.step("with a user name, rejects wrong credentials", async () => {
    const broker = await startEmbeddedBroker({ port: 0, username: "naila", password: "s3cret" });
    try {
      const ok = await connectTo(broker.port, { username: "naila", password: "s3cret" });
      await ok.endAsync();
      await assert.rejects(
        connectTo(broker.port, { username: "naila", password: "wrong" }),
        /Bad username or password|Not authorized/,
      );
    } finally {
      await broker.close();
    }
  });

  await t.step("a taken port is reported with host and port", async () => {
    const first = await startEmbeddedBroker({ port: 0 });
    try {
      await assert.rejects(
        startEmbeddedBroker({ port: first.port }),
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port}`),
      );
    } finally {
      await first.close();
    }
  });
});

Deno.test("PacketSizeGuard follows packet boundaries across chunks and spots an oversized header", () => {
  const guard = new PacketSizeGuard(300);
  // PINGREQ (no body), then a 200-byte PUBLISH split across chunks: fine.
  assert.equal(guard.scan(Uint8Array.from([0xc0, 0x00, 0x30, 0xc8])), undefined);
  assert.equal(guard.scan(Uint8Array.from([0x01, ...new Array(150).fill(0)])), undefined);
  assert.equal(guard.scan(new Uint8Array(50)), undefined);
  // A PUBLISH announcing 301 bytes (varint 0xad 0x02), its length split over two chunks.
  assert.equal(guard.scan(Uint8Array.from([0x30, 0xad])), undefined);
  assert.equal(guard.scan(Uint8Array.from([0x02])), 301);
  assert.ok(MAX_PACKET_BYTES > 8 * 1024 * 1024, "an 8 MiB media message fits");
});
