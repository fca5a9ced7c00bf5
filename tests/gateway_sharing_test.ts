/**
 * Two gateways on one broker (issue 14, docs/scaling.md "More than one gateway"): a real
 * Mosquitto with NAILA's generated logins and ACL, two gateway processes, 20 werift devices.
 * Every device is offered a session by exactly one gateway, the two share them out, and when one
 * gateway is killed the other takes all of them.
 */
import assert from "node:assert/strict";
import { DevicePeer } from "../device/peer.ts";
import { addDevice, ensureRoleUsers } from "../shared/credentials.ts";
import { type GatewayProcess, startGatewayProcess } from "../scripts/lib/gateway_process.ts";
import { startMosquitto } from "../scripts/lib/mosquitto.ts";

const DEVICES = 20;
/** Generous for 20 werift peers on a loaded 2-core machine; a guard against a hang. */
const CONNECT_TIMEOUT_MS = 60_000;

/** Session ids `gateway` offered to `device`, from its "device online: offering" log lines. */
function offers(gateway: GatewayProcess, device: string): string[] {
  return gateway.logs
    .filter((l) => l.msg === "device online: offering" && l.fields?.device === device)
    .map((l) => String(l.fields?.session));
}

async function until(check: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

Deno.test("two gateways on one Mosquitto serve 20 devices exactly once, and one takes over the other's", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "naila_sharing_" });
  ensureRoleUsers(dataDir);
  const ids = Array.from({ length: DEVICES }, (_, i) => `shared_${i}`);
  const logins = ids.map((id) => addDevice(dataDir, id));
  const broker = await startMosquitto({ secure: { dataDir } });
  const env = {
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(broker.port),
    NAILA_DATA_DIR: dataDir,
    AUDIO_VAD_MODE: "energy",
  };
  const gateways = [await startGatewayProcess(env), await startGatewayProcess(env)];
  const devices = ids.map((id, i) =>
    new DevicePeer({
      id,
      mqtt: { host: "127.0.0.1", port: broker.port, ...logins[i] },
      hostAddresses: ["127.0.0.1"],
      decode: false,
    })
  );
  let killed = false;
  try {
    await Promise.all(devices.map((device) => device.connect({ timeoutMs: CONNECT_TIMEOUT_MS })));
    // Exactly one gateway offered to each device, and the device's session is that offer.
    const owner = new Map<string, number>();
    for (const device of devices) {
      const offered = gateways.map((g) => offers(g, device.id));
      const by = offered.flatMap((list, g) => list.map(() => g));
      assert.equal(by.length, 1, `${device.id} offered by gateways ${by}`);
      assert.deepEqual(offered[by[0]], [device.sessionId]);
      assert.equal(device.connectionState, "connected");
      owner.set(device.id, by[0]);
    }
    const served = [0, 1].map((g) => [...owner.values()].filter((o) => o === g).length);
    assert.ok(served[0] > 0 && served[1] > 0, `devices shared out: ${served}`);

    // Gateway 0 dies: gateway 1 offers to every device gateway 0 served, and they connect.
    await gateways[0].kill();
    killed = true;
    const moved = devices.filter((device) => owner.get(device.id) === 0);
    await until(
      () =>
        moved.every((device) => {
          const offered = offers(gateways[1], device.id);
          return offered.length === 1 && device.sessionId === offered[0] &&
            device.connectionState === "connected";
        }),
      CONNECT_TIMEOUT_MS,
      () => moved.map((d) => `${d.id}: ${d.connectionState}`).join(", "),
    );
    // The devices gateway 1 already served kept their sessions.
    for (const device of devices.filter((d) => owner.get(d.id) === 1)) {
      assert.deepEqual(offers(gateways[1], device.id), [device.sessionId]);
      assert.equal(device.connectionState, "connected");
    }
  } finally {
    await Promise.all(devices.map((device) => device.close()));
    for (const [i, gateway] of gateways.entries()) {
      if (i > 0 || !killed) await gateway.stop();
    }
    await broker.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});
