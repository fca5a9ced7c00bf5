/**
 * MQTT security with real brokers (issue 10, spec 17.2): the embedded aedes broker and a real
 * Debian mosquitto running NAILA's generated password file, ACL and config, each with and
 * without TLS. Logins, per-device permissions, packet limits, client-id collisions and stale
 * last wills, tried the way a curious guest on the LAN would.
 */
import assert from "node:assert/strict";
import { connectAsync, type IClientOptions, type MqttClient } from "mqtt";
import { delay } from "../shared/async.ts";
import { startEmbeddedBroker } from "../shared/broker.ts";
import { ensureBrokerCertificate } from "../shared/certificates.ts";
import { addDevice, ensureRoleUsers, type MqttLogin, storedLogin } from "../shared/credentials.ts";
import type { Logger } from "../shared/log.ts";
import { MAX_MEDIA_PACKET_BYTES } from "../shared/mqtt_acl.ts";
import { startSignaling } from "../gateway/signaling.ts";
import { DevicePeer } from "../device/peer.ts";
import { startMosquitto } from "./helpers/mosquitto.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { startGatewayProcess } from "./helpers/gateway_process.ts";

/** How long a message that should arrive may take under a loaded CI run. */
const ARRIVAL_MS = 10_000;

interface Broker {
  port: number;
  ca?: string;
  close(): Promise<void>;
}

type BrokerStart = (dataDir: string) => Promise<Broker>;

const BROKERS: [string, BrokerStart][] = [
  ["embedded", async (dataDir) => {
    const broker = await startEmbeddedBroker({ port: 0, dataDir, log: quietLogger() });
    return { port: broker.port, close: broker.close };
  }],
  ["embedded with TLS", async (dataDir) => {
    const files = await ensureBrokerCertificate(dataDir);
    const broker = await startEmbeddedBroker({
      port: 0,
      dataDir,
      log: quietLogger(),
      tls: { cert: await Deno.readTextFile(files.cert), key: await Deno.readTextFile(files.key) },
    });
    return { port: broker.port, ca: files.ca, close: broker.close };
  }],
  ["mosquitto", async (dataDir) => {
    const broker = await startMosquitto({ secure: { dataDir } });
    return { port: broker.port, close: broker.stop };
  }],
  ["mosquitto with TLS", async (dataDir) => {
    const broker = await startMosquitto({ secure: { dataDir, tls: true } });
    return {
      port: broker.port,
      ca: (await ensureBrokerCertificate(dataDir)).ca,
      close: broker.stop,
    };
  }],
];

/** A logger that keeps its lines (for assertions) instead of printing them. */
function quietLogger(lines: string[] = []): Logger {
  const keep = (level: string) => (msg: string, fields?: object) =>
    void lines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
  return { debug: keep("debug"), info: keep("info"), warn: keep("warn"), error: keep("error") };
}

function connectTo(broker: Broker, login?: MqttLogin, extra: IClientOptions = {}) {
  return connectAsync({
    protocol: broker.ca ? "mqtts" : "mqtt",
    host: "127.0.0.1",
    port: broker.port,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: ARRIVAL_MS,
    ...(broker.ca ? { ca: Deno.readTextFileSync(broker.ca), rejectUnauthorized: true } : {}),
    ...login,
    ...extra,
  });
}

/** Every message a client receives, in order. */
function record(client: MqttClient): { topic: string; payload: string }[] {
  const seen: { topic: string; payload: string }[] = [];
  client.on("message", (topic, payload) => seen.push({ topic, payload: payload.toString() }));
  return seen;
}

async function until(check: () => boolean, what: string, timeoutMs = ARRIVAL_MS) {
  const end = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

async function withDataDir<T>(run: (dataDir: string) => Promise<T>): Promise<T> {
  const dataDir = await Deno.makeTempDir({ prefix: "naila_security_" });
  try {
    ensureRoleUsers(dataDir);
    return await run(dataDir);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

for (const [name, start] of BROKERS) {
  Deno.test(`MQTT security on ${name}`, () =>
    withDataDir(async (dataDir) => {
      const kitchen = addDevice(dataDir, "kitchen");
      addDevice(dataDir, "hall");
      const gatewayLogin = storedLogin(dataDir, { role: "gateway" })!;
      const broker = await start(dataDir);
      const clients: MqttClient[] = [];
      try {
        // --- logins -------------------------------------------------------------------------
        await assert.rejects(connectTo(broker), /Not authorized|Bad username or password/);
        await assert.rejects(
          connectTo(broker, { username: "kitchen", password: "guess" }),
          /Not authorized|Bad username or password/,
        );
        await assert.rejects(
          connectTo(broker, { username: "hall", password: kitchen.password }),
          /Not authorized|Bad username or password/,
        );
        if (broker.ca) {
          // Without the generated CA the certificate is not trusted.
          await assert.rejects(
            connectTo(broker, kitchen, { ca: undefined }),
            /certificate|self.signed|UnknownIssuer|invalid peer/i,
          );
        }
        const gateway = await connectTo(broker, gatewayLogin, { clientId: "sec-gateway" });
        const deviceA = await connectTo(broker, kitchen, { clientId: "sec-kitchen" });
        clients.push(gateway, deviceA);
        if (name.startsWith("embedded")) {
          // A device cannot knock the gateway off by taking its client id (Mosquitto lets any
          // login take over an id; there the gateway's id is random per process instead).
          await assert.rejects(
            connectTo(broker, kitchen, { clientId: "sec-gateway" }),
            /Identifier rejected/,
          );
          await delay(200);
          assert.ok(gateway.connected, "the gateway was knocked off");
        }

        // --- device A cannot speak for device B ---------------------------------------------
        const toGateway = record(gateway);
        await gateway.subscribeAsync(
          ["naila/devices/+/status", "naila/devices/+/signaling/answer"],
          { qos: 1 },
        );
        const answer = (device: string) =>
          JSON.stringify({ type: "answer", sdp: "v=0 forged", session_id: `s_${device}` });
        await deviceA.publishAsync("naila/devices/hall/signaling/answer", answer("hall"), {
          qos: 1,
        });
        await deviceA.publishAsync(
          "naila/devices/hall/status",
          JSON.stringify({ device_id: "hall", online: false }),
          { qos: 1, retain: true },
        );
        // A's own answer, after the forged ones on the same connection: once it is in, they
        // would have been too.
        await deviceA.publishAsync("naila/devices/kitchen/signaling/answer", answer("kitchen"), {
          qos: 1,
        });
        await until(
          () => toGateway.some((m) => m.topic === "naila/devices/kitchen/signaling/answer"),
          "device A's own answer at the gateway",
        );
        assert.deepEqual(
          toGateway.filter((m) => m.topic.includes("/hall/")),
          [],
          "device A published for device B",
        );
        // The forged retained status was not kept either: a late subscriber sees none.
        const late = await connectTo(broker, gatewayLogin, { clientId: "sec-late" });
        clients.push(late);
        const toLate = record(late);
        await late.subscribeAsync("naila/devices/hall/status", { qos: 1 });
        await delay(300);
        assert.deepEqual(toLate, [], "a forged retained status was stored");

        // --- device A cannot rewrite memory, command, or fake the server ---------------------
        const serverClient = await connectTo(broker, storedLogin(dataDir, { role: "server" }), {
          clientId: "sec-server",
        });
        clients.push(serverClient);
        const toServer = record(serverClient);
        await serverClient.subscribeAsync(
          ["naila/devices/+/events", "naila/server/status", "naila/devices/+/media/snapshot"],
          { qos: 1 },
        );
        await deviceA.publishAsync(
          "naila/devices/kitchen/events",
          JSON.stringify({ type: "interrupted", turn: "t1", played_ms: 0 }),
          { qos: 1 },
        );
        await deviceA.publishAsync(
          "naila/server/status",
          JSON.stringify({ online: false, timestamp: new Date().toISOString() }),
          { qos: 1, retain: true },
        );
        await deviceA.publishAsync("naila/devices/kitchen/command", '{"command":"stop"}', {
          qos: 1,
        });
        await deviceA.publishAsync("naila/devices/kitchen/media/snapshot", "{}", { qos: 1 });
        await until(() => toServer.length > 0, "device A's own snapshot at the server");
        assert.deepEqual(toServer.map((m) => m.topic), ["naila/devices/kitchen/media/snapshot"]);

        // --- device A cannot read device B's events, nor everything ------------------------
        const toA = record(deviceA);
        const granted = await deviceA.subscribeAsync(
          ["naila/devices/hall/events", "naila/#", "naila/devices/kitchen/events"],
          { qos: 1 },
        ).then(
          (grants) => grants.map((g) => g.qos),
          // npm:mqtt rejects a SUBACK that refuses a filter; the codes are on the error.
          (error) => (error as { packet: { granted: number[] } }).packet.granted,
        );
        if (name.startsWith("embedded")) {
          // The embedded broker refuses the filters outright (SUBACK 0x80); Mosquitto grants
          // them and filters each message by the ACL.
          assert.deepEqual(granted, [128, 128, 1]);
        }
        const event = (turn: string) =>
          JSON.stringify({ type: "interrupted", turn, played_ms: 100 });
        await gateway.publishAsync("naila/devices/hall/events", event("hall_turn"), { qos: 1 });
        await gateway.publishAsync("naila/devices/kitchen/events", event("kitchen_turn"), {
          qos: 1,
        });
        await until(
          () => toA.some((m) => m.topic === "naila/devices/kitchen/events"),
          "device A's own event",
        );
        assert.deepEqual(
          toA.filter((m) => m.topic.includes("/hall/")),
          [],
          "device A read device B's events",
        );
        // A read nothing of the gateway's or server's topics through naila/# either.
        assert.deepEqual(
          toA.filter((m) => !m.topic.startsWith("naila/devices/kitchen/")),
          [],
        );
        // The gateway may not answer for a non-browser device, nor send a server command.
        await gateway.publishAsync("naila/devices/kitchen/command", '{"command":"stop"}', {
          qos: 1,
        });
        await gateway.publishAsync("naila/devices/kitchen/events", event("second"), { qos: 1 });
        await until(() => toA.filter((m) => m.topic.endsWith("/events")).length === 2, "event");
        assert.deepEqual(toA.filter((m) => m.topic.endsWith("/command")), []);
      } finally {
        await Promise.all(clients.map((c) => c.endAsync(true)));
        await broker.close();
      }
    }));
}

/** Resident memory of a process in bytes (Linux /proc). */
async function rssBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  return kb * 1024;
}

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function mqttString(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
}

/**
 * Sends a CONNECT with `login`, then a PUBLISH announcing `payloadBytes` and streams zeros
 * after it until the broker closes the connection. Returns how many payload bytes it took.
 */
async function sendHugePublish(
  port: number,
  login: MqttLogin,
  topic: string,
  payloadBytes: number,
): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const body = [
      ...mqttString("MQTT"),
      4, // protocol level 3.1.1
      0xc2, // user name, password, clean session
      0,
      60, // keepalive 60 s
      ...mqttString(`huge-${crypto.randomUUID().slice(0, 8)}`),
      ...mqttString(login.username),
      ...mqttString(login.password),
    ];
    await conn.write(new Uint8Array([0x10, ...varint(body.length), ...body]));
    const connack = new Uint8Array(4);
    let got = 0;
    while (got < 4) {
      const n = await conn.read(connack.subarray(got));
      if (n === null) throw new Error("closed before CONNACK");
      got += n;
    }
    assert.deepEqual([...connack], [0x20, 2, 0, 0], "login accepted");
    const topicBytes = mqttString(topic);
    await conn.write(
      new Uint8Array([0x30, ...varint(topicBytes.length + payloadBytes), ...topicBytes]),
    );
    const chunk = new Uint8Array(1024 * 1024);
    let sent = 0;
    try {
      while (sent < payloadBytes) {
        sent += await conn.write(chunk.subarray(0, Math.min(chunk.length, payloadBytes - sent)));
      }
    } catch {
      // the broker closed the connection: what we want
    }
    return sent;
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

/** 100 MB: the message of the issue that took gateway and server from ~150 to ~450 MB each. */
const HUGE_BYTES = 100 * 1024 * 1024;

Deno.test("a 100 MB publish is refused before it costs the broker memory", async (t) => {
  await t.step("embedded broker (server process)", async () => {
    const server = await startServerProcess({ PIPELINE: "echo" });
    try {
      const login = server.login({ device: "kitchen" });
      const before = await rssBytes(server.pid);
      const sent = await sendHugePublish(
        server.mqttPort,
        login,
        "naila/devices/kitchen/media/snapshot",
        HUGE_BYTES,
      );
      await delay(500);
      const after = await rssBytes(server.pid);
      // Growth is a small fraction of the message: it was never buffered.
      assert.ok(
        after - before < HUGE_BYTES / 10,
        `RSS grew ${((after - before) / 1e6).toFixed(1)} MB for a ${HUGE_BYTES / 1e6} MB publish`,
      );
      assert.ok(sent < HUGE_BYTES, "the broker took the whole message");
      await until(
        () => server.lines.some((l) => l.includes("audit: oversized")),
        "the oversized audit line",
      );
      // The broker still serves: a normal 500 KB snapshot (over the old ~150 KB stall) passes.
      const device = await connectAsync({
        host: "127.0.0.1",
        port: server.mqttPort,
        protocolVersion: 4,
        reconnectPeriod: 0,
        ...login,
      });
      const reader = await connectAsync({
        host: "127.0.0.1",
        port: server.mqttPort,
        protocolVersion: 4,
        reconnectPeriod: 0,
        ...server.login("server"),
      });
      try {
        const got = record(reader);
        await reader.subscribeAsync("naila/devices/kitchen/media/snapshot", { qos: 1 });
        const payload = "x".repeat(500 * 1024);
        await device.publishAsync("naila/devices/kitchen/media/snapshot", payload, { qos: 1 });
        await until(() => got.length === 1, "the 500 KB message");
        assert.equal(got[0].payload.length, payload.length);
      } finally {
        await device.endAsync(true);
        await reader.endAsync(true);
      }
    } finally {
      await server.stop();
    }
  });

  await t.step("mosquitto with NAILA's config", () =>
    withDataDir(async (dataDir) => {
      const login = addDevice(dataDir, "kitchen");
      const broker = await startMosquitto({ secure: { dataDir } });
      try {
        const before = await rssBytes(broker.pid);
        const sent = await sendHugePublish(
          broker.port,
          login,
          "naila/devices/kitchen/media/snapshot",
          HUGE_BYTES,
        );
        await delay(500);
        const after = await rssBytes(broker.pid);
        assert.ok(
          after - before < HUGE_BYTES / 10,
          `RSS grew ${((after - before) / 1e6).toFixed(1)} MB for a ${HUGE_BYTES / 1e6} MB publish`,
        );
        assert.ok(sent < HUGE_BYTES, "mosquitto took the whole message");
        assert.ok(MAX_MEDIA_PACKET_BYTES < HUGE_BYTES);
      } finally {
        await broker.stop();
      }
    }));
});

Deno.test("two gateways on one broker both stay connected; a shared client id is reported", () =>
  withDataDir(async (dataDir) => {
    const brokerLines: string[] = [];
    const broker = await startEmbeddedBroker({ port: 0, dataDir, log: quietLogger(brokerLines) });
    const config = {
      embedded: false,
      host: "127.0.0.1",
      port: broker.port,
      ...storedLogin(dataDir, { role: "gateway" })!,
    };
    const handlers = { status() {}, answer() {}, ice() {} };
    const logs = [[], [], [], []] as string[][];
    const gateways = [];
    try {
      // Default settings: each process picks its own client id.
      for (const lines of logs.slice(0, 2)) {
        gateways.push(await startSignaling(config, handlers, { log: quietLogger(lines) }));
      }
      const drops = [0, 0];
      gateways.forEach((g, i) => g.mqtt.client.on("close", () => drops[i]++));
      await delay(3000);
      assert.deepEqual(drops, [0, 0], "a gateway was kicked off");
      assert.ok(gateways.every((g) => g.mqtt.client.connected));
      assert.notEqual(
        gateways[0].mqtt.client.options.clientId,
        gateways[1].mqtt.client.options.clientId,
      );

      // Two processes forced onto one id kick each other off; both sides say so in plain words.
      for (const lines of logs.slice(2)) {
        gateways.push(
          await startSignaling(config, handlers, { log: quietLogger(lines), clientId: "same-id" }),
        );
      }
      await until(
        () => [...logs[2], ...logs[3]].some((l) => l.includes('client id "same-id"')),
        "the collision warning",
        20_000,
      );
      assert.ok(brokerLines.some((l) => l.includes("audit: replaced") && l.includes("same-id")));
    } finally {
      for (const gateway of gateways) await gateway.close().catch(() => {});
      await broker.close();
    }
  }));

Deno.test("a stale last will of an older connection leaves the device's live session alone", async () => {
  const server = await startServerProcess({ PIPELINE: "echo" });
  let gateway: Awaited<ReturnType<typeof startGatewayProcess>> | undefined;
  let device: DevicePeer | undefined;
  let old: MqttClient | undefined;
  try {
    gateway = await startGatewayProcess({
      MQTT_HOST: "127.0.0.1",
      MQTT_PORT: String(server.mqttPort),
      NAILA_DATA_DIR: server.dataDir,
      AI_SERVER_HOST: "127.0.0.1",
      AI_SERVER_PORT: String(server.audioPort),
    });
    const login = server.login({ device: "kitchen" });
    // The connection of the device before it lost power: its will says offline, epoch 1.
    old = await connectAsync({
      host: "127.0.0.1",
      port: server.mqttPort,
      protocolVersion: 4,
      reconnectPeriod: 0,
      clientId: "kitchen-before-reboot",
      ...login,
      will: {
        topic: "naila/devices/kitchen/status",
        payload: Buffer.from(JSON.stringify({ device_id: "kitchen", online: false, epoch: 1 })),
        qos: 1,
        retain: true,
      },
    });
    // The rebooted device: a new connection (a newer epoch) and a live call.
    device = new DevicePeer({
      id: "kitchen",
      mqtt: { host: "127.0.0.1", port: server.mqttPort, ...login },
      hostAddresses: ["127.0.0.1"],
    });
    await device.connect();
    const closedBefore = gateway.logs.filter((l) => l.msg === "session closed").length;
    // The old connection dies without a goodbye: the broker publishes its will now.
    (old.stream as unknown as { destroy(): void }).destroy();
    await gateway.waitForLog((l) => l.msg === "stale offline status ignored", ARRIVAL_MS);
    await delay(500);
    assert.equal(gateway.logs.filter((l) => l.msg === "session closed").length, closedBefore);
    assert.equal(device.connectionState, "connected");

    // The live connection's own offline still ends the session (the check is not "ignore all").
    await device.close();
    device = undefined;
    await gateway.waitForLog(
      (l) => l.msg === "session closed" && JSON.stringify(l.fields).includes("kitchen"),
      ARRIVAL_MS,
    );
  } finally {
    await old?.endAsync(true);
    await device?.close();
    await gateway?.stop();
    await server.stop();
  }
});

Deno.test("audit events reach the server role on naila/server/audit, and no one else", () =>
  withDataDir(async (dataDir) => {
    const kitchen = addDevice(dataDir, "kitchen");
    const broker = await startEmbeddedBroker({ port: 0, dataDir, log: quietLogger() });
    const plain = { port: broker.port, close: broker.close };
    const clients: MqttClient[] = [];
    try {
      const server = await connectTo(plain, storedLogin(dataDir, { role: "server" }));
      const device = await connectTo(plain, kitchen);
      clients.push(server, device);
      const toServer = record(server);
      const toDevice = record(device);
      await server.subscribeAsync("naila/server/audit", { qos: 1 });
      await device.subscribeAsync("naila/server/audit", { qos: 1 }).catch(() => {});
      await assert.rejects(connectTo(plain, { username: "kitchen", password: "guess" }));
      const events = () => toServer.map((m) => JSON.parse(m.payload));
      await until(() => events().some((e) => e.event === "auth_failed"), "the audit event");
      // The device's own try at the audit topic is an audit event too.
      assert.equal(events()[0].event, "subscribe_denied");
      assert.equal(events()[0].topic, "naila/server/audit");
      const event = events().find((e) => e.event === "auth_failed");
      assert.equal(event.username, "kitchen");
      assert.equal(event.address, "127.0.0.1");
      assert.equal(JSON.stringify(event).includes("guess"), false, "the password is not logged");
      await delay(200);
      assert.deepEqual(toDevice, []);
    } finally {
      await Promise.all(clients.map((c) => c.endAsync(true)));
      await broker.close();
    }
  }));

Deno.test("MQTT_TLS=true: the server generates a CA and its embedded broker speaks only TLS", async () => {
  const server = await startServerProcess({ PIPELINE: "echo", MQTT_TLS: "true" });
  try {
    const ca = `${server.dataDir}/secrets/tls/ca.pem`;
    assert.equal(
      (await Deno.stat(`${server.dataDir}/secrets/tls/server.key`)).mode! & 0o777,
      0o600,
    );
    const broker = { port: server.mqttPort, ca, close: () => Promise.resolve() };
    const gateway = await connectTo(broker, server.login("gateway"));
    const statuses = record(gateway);
    await gateway.subscribeAsync("naila/server/status", { qos: 1 });
    await until(() => statuses.length > 0, "the server's retained status over TLS");
    assert.equal(JSON.parse(statuses[0].payload).online, true);
    await gateway.endAsync(true);
    // Plain MQTT to the TLS listener gets nowhere.
    await assert.rejects(
      connectTo({ port: server.mqttPort, close: broker.close }, server.login("gateway"), {
        connectTimeout: 1000,
      }),
    );
  } finally {
    await server.stop();
  }
});
