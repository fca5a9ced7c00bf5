import assert from "node:assert/strict";
import { delay } from "../shared/async.ts";
import { createLogger } from "../shared/log.ts";
import { connectMqtt } from "../shared/mqtt.ts";
import { startMosquitto } from "../tests/helpers/mosquitto.ts";
import { type Membership, startMembership } from "./gateway_membership.ts";

const log = createLogger("test.membership", { level: "error" });
const DEVICES = Array.from({ length: 12 }, (_, i) => `room_${i}`);
/** Short settles: the broker is on loopback. */
const SETTLE = { settleMs: 200, claimSettleMs: 150 };

async function until(check: () => boolean, what: () => string, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) throw new Error(`not within ${ms} ms: ${what()}`);
    await delay(10);
  }
}

/** A membership whose "sessions" are a set, with every open counted. */
async function gateway(port: number, id: string) {
  const sessions = new Set<string>();
  const opens: string[] = [];
  const membership: Membership = await startMembership(
    { embedded: false, host: "127.0.0.1", port },
    {
      log,
      id,
      ...SETTLE,
      open: (device) => {
        opens.push(device);
        sessions.add(device);
        membership.claimsChanged();
      },
      close: (device) => {
        sessions.delete(device);
        membership.claimsChanged();
      },
      serving: (device) => sessions.has(device),
    },
  );
  return { membership, sessions, opens };
}

Deno.test("membership: two gateways open each device once; the other takes a leaving one's", async () => {
  const broker = await startMosquitto();
  const a = await gateway(broker.port, "gw_a");
  const b = await gateway(broker.port, "gw_b");
  try {
    await until(() => a.membership.assignment.peers.includes("gw_b"), () => "a sees b");
    for (const device of DEVICES) {
      a.membership.deviceOnline(device);
      b.membership.deviceOnline(device);
    }
    await until(() => a.sessions.size + b.sessions.size === DEVICES.length, () => "all served");
    await delay(SETTLE.claimSettleMs * 2);
    for (const device of DEVICES) {
      assert.notEqual(a.sessions.has(device), b.sessions.has(device), device);
    }
    assert.equal(a.opens.length + b.opens.length, DEVICES.length, "no device opened twice");
    assert.ok(a.sessions.size > 0 && b.sessions.size > 0);

    // b shuts down (its presence cleared; a killed gateway's will: tests/gateway_sharing_test.ts):
    // a takes b's devices, once each, and keeps its own.
    const own = [...a.sessions];
    const taken = [...b.sessions];
    await b.membership.close();
    await until(() => a.sessions.size === DEVICES.length, () => `a has ${[...a.sessions]}`);
    for (const device of taken) assert.equal(a.opens.filter((d) => d === device).length, 1);
    for (const device of own) assert.equal(a.opens.filter((d) => d === device).length, 1);
    // A device going offline is no longer claimed; a device a holds stays with a when b is back.
    a.membership.deviceOffline(DEVICES[0]);
    a.sessions.delete(DEVICES[0]);
    const c = await gateway(broker.port, "gw_c");
    try {
      for (const device of DEVICES.slice(1)) c.membership.deviceOnline(device);
      await delay(SETTLE.claimSettleMs * 3);
      assert.deepEqual(c.opens, [], "c takes nothing a holds");
    } finally {
      await c.membership.close();
    }
  } finally {
    await a.membership.close();
    await broker.stop();
  }
});

Deno.test("membership: an invalid presence is dropped and changes nothing", async () => {
  const broker = await startMosquitto();
  const a = await gateway(broker.port, "gw_a");
  const other = await connectMqtt({ embedded: false, host: "127.0.0.1", port: broker.port }, {
    clientId: "intruder",
  });
  try {
    await other.client.publishAsync("naila/gateways/gw_x/status", "{not json", { qos: 1 });
    await other.client.publishAsync(
      "naila/gateways/gw_y/status",
      JSON.stringify({ online: true, timestamp: new Date().toISOString(), gateway: "gw_z" }),
      { qos: 1 },
    );
    await delay(100);
    assert.deepEqual(a.membership.assignment.peers, []);
    a.membership.deviceOnline("hall");
    assert.deepEqual(a.opens, ["hall"], "alone, a offers at once");
  } finally {
    await other.close();
    await a.membership.close();
    await broker.stop();
  }
});
