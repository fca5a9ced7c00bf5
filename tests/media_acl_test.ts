/**
 * Who may use the media topics: docs/naila_media.acl on a real mosquitto with a user per device.
 * A device answers snapshot requests for itself only, cannot read another device's requests,
 * cannot raise alerts or post uploads; the web bridge may post uploads only.
 */
import assert from "node:assert/strict";
import { connectAsync, type MqttClient } from "mqtt";
import { startMosquitto } from "./helpers/mosquitto.ts";

const ACL = new URL("../docs/naila_media.acl", import.meta.url).pathname;
const USERS = ["naila-server", "naila-web", "front_cam", "kitchen"];
/** How long a message that the ACL drops is waited for before it counts as dropped. */
const SETTLE_MS = 300;

Deno.test("docs/naila_media.acl: each device publishes and reads only its own media topics", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila_acl_" });
  const passwords = `${dir}/passwords`;
  for (const [i, user] of USERS.entries()) {
    const args = ["-b", ...(i === 0 ? ["-c"] : []), passwords, user, `pw-${user}`];
    const result = await new Deno.Command("mosquitto_passwd", { args, stderr: "piped" }).output();
    assert.ok(result.success, new TextDecoder().decode(result.stderr));
  }
  // mosquitto started as root reads its files as the "mosquitto" user.
  await Deno.chmod(dir, 0o755);
  await Deno.chmod(passwords, 0o644);
  const broker = await startMosquitto({
    config: ["allow_anonymous false", `password_file ${passwords}`, `acl_file ${ACL}`],
  });
  const clients: MqttClient[] = [];
  const as = async (user: string) => {
    const client = await connectAsync({
      host: "127.0.0.1",
      port: broker.port,
      protocolVersion: 4,
      username: user,
      password: `pw-${user}`,
      reconnectPeriod: 0,
    });
    clients.push(client);
    return client;
  };
  try {
    const server = await as("naila-server");
    const received: string[] = [];
    server.on("message", (topic) => received.push(topic));
    await server.subscribeAsync("naila/#", { qos: 1 });
    const camera = await as("front_cam");
    const kitchen = await as("kitchen");
    const web = await as("naila-web");

    await camera.publishAsync("naila/devices/front_cam/media/snapshot", "{}", { qos: 1 });
    await camera.publishAsync("naila/devices/kitchen/media/snapshot", "{}", { qos: 1 });
    await camera.publishAsync("naila/alerts/all", "{}", { qos: 1 });
    await camera.publishAsync("naila/uploads/s1/image", "{}", { qos: 1 });
    await web.publishAsync("naila/uploads/s2/image", "{}", { qos: 1 });
    await web.publishAsync("naila/devices/front_cam/media/snapshot", "{}", { qos: 1 });
    await kitchen.publishAsync("naila/devices/kitchen/media/recording", "{}", { qos: 1 });
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
    await Deno.remove(dir, { recursive: true });
  }
});
