import assert from "node:assert/strict";
import { V2_CAPABILITIES } from "../shared/frame_codec.ts";
import { V2Client } from "../scripts/lib/audio_socket_clients.ts";
import { withServer } from "./audio_socket_testing.ts";
import { EchoPipeline } from "./pipeline.ts";
import { serverCapabilities } from "./v2_adapter.ts";

Deno.test("serverCapabilities: no speculate or eot without STT to start early, no image without cameras", () => {
  const echo = serverCapabilities({ pipeline: new EchoPipeline() });
  assert.deepEqual(
    echo,
    V2_CAPABILITIES.filter((c) => c !== "speculate" && c !== "eot" && c !== "image"),
  );
});

Deno.test("v2: the server's hello answers the gateway's with the server's capabilities", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const client = await V2Client.connect(server.port);
    try {
      const [hello] = client.messages;
      assert.ok(hello.type === "hello" && hello.role === "server");
      assert.deepEqual(hello.capabilities, serverCapabilities({ pipeline: new EchoPipeline() }));
    } finally {
      client.close();
    }
  });
});

Deno.test("v2: a second hello is a bad_frame error, and the connection stays usable", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const client = await V2Client.connect(server.port);
    try {
      await client.send({
        type: "hello",
        version: 2,
        role: "gateway",
        capabilities: ["stream"],
        ts: Date.now(),
      });
      const error = await client.next((m) => m.type === "error");
      assert.ok(error.type === "error" && error.code === "bad_frame");
      assert.match(error.message, /unexpected hello from gateway/);
      await client.send({ type: "ping", id: 8, ts: Date.now() });
      const pong = await client.next((m) => m.type === "pong");
      assert.equal(pong.type === "pong" && pong.id, 8);
    } finally {
      client.close();
    }
  });
});

Deno.test("v2: ping is answered with a pong of the same id", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const client = await V2Client.connect(server.port);
    try {
      await client.send({ type: "ping", id: 7, ts: Date.now() });
      const pong = await client.next((m) => m.type === "pong");
      assert.equal(pong.type === "pong" && pong.id, 7);
    } finally {
      client.close();
    }
  });
});
