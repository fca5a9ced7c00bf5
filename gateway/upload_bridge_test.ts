import assert from "node:assert/strict";
import { startEmbeddedBroker } from "../shared/broker.ts";
import { connectMqtt } from "../shared/mqtt.ts";
import { createUploadHandler } from "./upload_bridge.ts";

// The answered path (a real AI server) is tests/upload_test.ts; here, what the bridge decides alone.
Deno.test("upload bridge: refusals before anything is buffered, and a timeout naming the wait", async () => {
  const broker = await startEmbeddedBroker({ port: 0, allowAnonymous: true });
  const mqtt = await connectMqtt({ embedded: false, host: "127.0.0.1", port: broker.port }, {
    clientId: "upload-bridge-test",
  });
  const published: string[] = [];
  mqtt.onMessage((topic) => published.push(topic.kind));
  await mqtt.subscribe("naila/uploads/+/image");
  const upload = createUploadHandler({ mqtt, idPrefix: "web_", timeoutMs: 300, maxBytes: 1000 });
  const call = async (query: string, init: RequestInit) => {
    const url = new URL(`http://bridge/api/upload?${query}`);
    const response = await upload(new Request(url, init), url);
    return { status: response.status, body: await response.json() };
  };
  const png = { "content-type": "image/png" };
  try {
    assert.equal((await call("device=web_a", { method: "GET" })).status, 405);
    assert.match(
      (await call("device=web_a", {
        method: "POST",
        body: "x",
        headers: { "content-type": "image/gif" },
      }))
        .body.error.message,
      /content type "image\/gif" is not one of image\/jpeg, image\/png, image\/webp/,
    );
    assert.equal(
      (await call("device=a%2Bb", { method: "POST", body: "x", headers: png })).status,
      400,
    );
    const long = await call(`device=web_a&question=${"a".repeat(5000)}`, {
      method: "POST",
      body: "x",
      headers: png,
    });
    assert.match(long.body.error.message, /question is 5000 characters, at most 4096/);
    // Too large, declared or streamed without a length.
    assert.equal(
      (await call("device=web_a", { method: "POST", body: new Uint8Array(1001), headers: png }))
        .status,
      413,
    );
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 5; i++) controller.enqueue(new Uint8Array(300));
        controller.close();
      },
    });
    assert.equal(
      (await call("device=web_a", { method: "POST", body: stream, headers: png })).status,
      413,
    );
    assert.deepEqual(published, [], "nothing refused was published");
    // Accepted, but no AI server answers: 504 after the timeout.
    const timedOut = await call("device=web_a", {
      method: "POST",
      body: new Uint8Array(10),
      headers: png,
    });
    assert.equal(timedOut.status, 504);
    assert.match(timedOut.body.error.message, /did not answer within 300 ms/);
    assert.deepEqual(published, ["upload_image"]);
  } finally {
    await mqtt.close();
    await broker.close();
  }
});
