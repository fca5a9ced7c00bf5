import assert from "node:assert/strict";
import { startEmbeddedBroker } from "../shared/broker.ts";
import type { ServerStatus } from "../shared/messages.ts";
import { connectMqtt } from "../shared/mqtt.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { MqttLink } from "./mqtt_link.ts";

const status = (online: boolean): ServerStatus => ({
  online,
  timestamp: new Date().toISOString(),
  pipeline: "echo",
});

/** The retained server status a new subscriber on `port` gets. */
async function retainedStatus(port: number): Promise<ServerStatus> {
  const watcher = await connectMqtt({ embedded: false, host: "127.0.0.1", port }, {
    clientId: `watcher-${crypto.randomUUID().slice(0, 8)}`,
  });
  try {
    const received = new Promise<ServerStatus>((resolve) =>
      watcher.onMessage((topic, payload) => {
        if (topic.kind === "server_status") resolve(JSON.parse(payload));
      })
    );
    await watcher.subscribe("naila/server/status");
    return await received;
  } finally {
    await watcher.close();
  }
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 8000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("MqttLink works without a broker, connects when one appears, and again after a restart", async () => {
  const port = await freePort();
  const link = new MqttLink({ embedded: false, host: "127.0.0.1", port }, {
    clientId: "link-test",
    will: { topic: { kind: "server_status" }, message: status(false) },
    online: () => status(true),
  });
  const events: string[] = [];
  link.subscribe("naila/devices/+/events", (topic) => events.push(topic.kind));
  // Several filters, one handler.
  const media: string[] = [];
  link.subscribe(["naila/devices/+/media/recording", "naila/uploads/+/image"], (topic) => {
    if (topic.kind === "device_recording" || topic.kind === "upload_image") media.push(topic.kind);
  });
  link.start();
  let stopBroker = () => Promise.resolve();
  try {
    // No broker yet: publishing drops quietly instead of failing the caller.
    await link.publish({ kind: "device_command", device: "kitchen" }, { command: "stop" });
    assert.equal(link.connected, false);
    const first = await startEmbeddedBroker({ host: "127.0.0.1", port, allowAnonymous: true });
    stopBroker = () => first.close();
    await link.whenConnected();
    assert.equal((await retainedStatus(port)).online, true);

    // The subscription made before the connection works.
    const device = await connectMqtt({ embedded: false, host: "127.0.0.1", port }, {
      clientId: "device",
    });
    await device.publish({ kind: "device_events", device: "kitchen" }, {
      type: "interrupted",
      turn: "t1",
      played_ms: 5,
    });
    await until(() => events.length === 1, "the device event");
    await device.client.publishAsync("naila/uploads/s1/image", "{}", { qos: 1 });
    await device.client.publishAsync("naila/devices/kitchen/media/recording", "{}", { qos: 1 });
    await until(() => media.length === 2, "both media topics");
    assert.deepEqual(media.sort(), ["device_recording", "upload_image"]);
    await device.close();

    // A restarted broker has lost the retained status; the link publishes it again.
    await first.close();
    await until(() => !link.connected, "the disconnect");
    const second = await startEmbeddedBroker({ host: "127.0.0.1", port, allowAnonymous: true });
    stopBroker = () => second.close();
    await until(() => link.connected, "the reconnect");
    assert.equal((await retainedStatus(port)).online, true);

    await link.close(status(false));
    assert.equal((await retainedStatus(port)).online, false);
  } finally {
    await link.close();
    await stopBroker();
  }
});
