/**
 * Who may use the media topics (docs/media.md): NAILA's generated Mosquitto password file and ACL
 * (shared/mqtt_acl.ts, the same table the embedded broker enforces) on a real mosquitto. A device
 * answers snapshot requests and sends recordings for itself only, cannot read another device's
 * requests and cannot raise alerts. (Mosquitto's ACL cannot match an id prefix, so there the
 * gateway may write for any device, not only `web_` ones: README "Security".)
 */
import assert from "node:assert/strict";
import { connectAsync, type MqttClient } from "mqtt";
import { addDevice, ensureRoleUsers, type MqttLogin, storedLogin } from "../shared/credentials.ts";
import { startMosquitto } from "../scripts/lib/mosquitto.ts";

/** How long a message that the ACL drops is waited for before it counts as dropped. */
const SETTLE_MS = 300;

Deno.test("media topics on mosquitto: each device publishes and reads only its own", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "naila_acl_" });
  ensureRoleUsers(dataDir);
  const logins: Record<string, MqttLogin> = {
    server: storedLogin(dataDir, { role: "server" })!,
    gateway: storedLogin(dataDir, { role: "gateway" })!,
    front_cam: addDevice(dataDir, "front_cam"),
    kitchen: addDevice(dataDir, "kitchen"),
  };
  const broker = await startMosquitto({ secure: { dataDir } });
  const clients: MqttClient[] = [];
  const as = async (who: string) => {
    const client = await connectAsync({
      host: "127.0.0.1",
      port: broker.port,
      protocolVersion: 4,
      username: logins[who].username,
      password: logins[who].password,
      reconnectPeriod: 0,
    });
    clients.push(client);
    return client;
  };
  try {
    const server = await as("server");
    const received: string[] = [];
    server.on("message", (topic) => received.push(topic));
    await server.subscribeAsync(
      ["naila/devices/+/media/#", "naila/alerts/#", "naila/uploads/+/image"],
      { qos: 1 },
    );
    const camera = await as("front_cam");
    const kitchen = await as("kitchen");
    const gateway = await as("gateway");

    await camera.publishAsync("naila/devices/front_cam/media/snapshot", "{}", { qos: 1 });
    await camera.publishAsync("naila/devices/kitchen/media/snapshot", "{}", { qos: 1 });
    await camera.publishAsync("naila/alerts/all", "{}", { qos: 1 });
    await gateway.publishAsync("naila/uploads/s2/image", "{}", { qos: 1 });
    await kitchen.publishAsync("naila/devices/kitchen/media/recording", "{}", { qos: 1 });
    await kitchen.publishAsync("naila/devices/front_cam/media/recording", "{}", { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    assert.deepEqual(received.sort(), [
      "naila/devices/front_cam/media/snapshot",
      "naila/devices/kitchen/media/recording",
      "naila/uploads/s2/image",
    ]);

    // Reading: a device gets its own snapshot requests and alerts; another device's requests
    // never reach it, even when it subscribes to them.
    const got: Record<string, string[]> = { front_cam: [], kitchen: [] };
    camera.on("message", (topic) => got.front_cam.push(topic));
    kitchen.on("message", (topic) => got.kitchen.push(topic));
    await camera.subscribeAsync("naila/devices/front_cam/media/request", { qos: 1 });
    await kitchen.subscribeAsync(
      ["naila/devices/front_cam/media/request", "naila/alerts/#"],
      { qos: 1 },
    );
    await server.publishAsync("naila/devices/front_cam/media/request", "{}", { qos: 1 });
    await server.publishAsync("naila/alerts/all", "{}", { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    assert.deepEqual(got.front_cam, ["naila/devices/front_cam/media/request"]);
    assert.deepEqual(got.kitchen, ["naila/alerts/all"]);
  } finally {
    await Promise.all(clients.map((client) => client.endAsync()));
    await broker.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});
