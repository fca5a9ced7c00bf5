import assert from "node:assert/strict";
import { startEmbeddedBroker } from "../../shared/broker.ts";
import { connectMqtt } from "../../shared/mqtt.ts";
import { topicFilter } from "../../shared/topics.ts";
import { encodeMedia, type MediaError, type MediaLink } from "./link.ts";
import { SnapshotRequester } from "./snapshots.ts";

const PNG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4]);

Deno.test("SnapshotRequester over a real broker: correlation, wrong device, size, close", async () => {
  const broker = await startEmbeddedBroker({ port: 0, allowAnonymous: true });
  const mqtt = await connectMqtt({ embedded: false, host: "127.0.0.1", port: broker.port }, {
    clientId: "snapshots-test",
  });
  const link: MediaLink = {
    publish: (topic, message) => mqtt.publish(topic, message),
    subscribe: (filter, handler) => {
      mqtt.onMessage(handler);
      mqtt.subscribe(filter);
    },
  };
  const requests: { device: string; id: string }[] = [];
  link.subscribe(topicFilter("device_media_request"), (topic, payload) => {
    if (topic.kind === "device_media_request") {
      requests.push({ device: topic.device, id: JSON.parse(payload).request_id });
    }
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const snapshots = new SnapshotRequester(link, { timeoutMs: 5000, maxBytes: 10 });
  const answer = (id: string, data = PNG.subarray(0, 10)) => ({
    request_id: id,
    media_type: "image" as const,
    format: "png" as const,
    width: 1,
    height: 1,
    timestamp: new Date().toISOString(),
    data: encodeMedia(data),
  });
  try {
    const first = snapshots.request("cam_a", { format: "png" });
    const second = snapshots.request("cam_b");
    while (requests.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.notEqual(requests[0].id, requests[1].id);
    const forB = requests.find((r) => r.device === "cam_b")!.id;
    // cam_a may not answer cam_b's request.
    assert.throws(() => snapshots.accept("cam_a", answer(forB)), /answers no waiting request/);
    snapshots.accept("cam_b", answer(forB));
    assert.deepEqual((await second).image, PNG.subarray(0, 10));
    // An answer over the size limit fails its request with too_large.
    const forA = requests.find((r) => r.device === "cam_a")!.id;
    assert.throws(() => snapshots.accept("cam_a", answer(forA, PNG)), /12 bytes, at most 10/);
    await assert.rejects(first, (error: Error) => (error as MediaError).code === "too_large");
    // Closing fails whatever still waits.
    const third = snapshots.request("cam_c");
    snapshots.close();
    await assert.rejects(third, (error: Error) => (error as MediaError).code === "unavailable");
    assert.equal(snapshots.inFlight, 0);
  } finally {
    snapshots.close();
    await mqtt.close();
    await broker.close();
  }
});
