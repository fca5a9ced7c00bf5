import assert from "node:assert/strict";
import { startLoopbackServer } from "./loopback_server.ts";

Deno.test("startLoopbackServer: listens on loopback ports with its own data dir, removed on close", async () => {
  const server = await startLoopbackServer({ PIPELINE: "echo", MEDIA_CAMERA_POLL_MS: "0" });
  let closed = false;
  try {
    assert.ok((await Deno.stat(server.dataDir)).isDirectory);
    assert.notEqual(server.audioPort, server.mqttPort);
    for (const port of [server.audioPort, server.mqttPort]) {
      const connection = await Deno.connect({ hostname: "127.0.0.1", port });
      connection.close();
    }
    assert.deepEqual(server.login("server"), server.login("server"));
    assert.equal(server.login({ device: "cam_1" }).username, "cam_1");
    await server.close();
    closed = true;
    await assert.rejects(Deno.stat(server.dataDir), Deno.errors.NotFound);
  } finally {
    if (!closed) await server.close();
  }
});

Deno.test("startLoopbackServer: a bad setting rejects naming it, and leaves no data dir", async () => {
  const before = new Set(
    [...Deno.readDirSync(Deno.env.get("TMPDIR") ?? "/tmp")].map((e) => e.name),
  );
  await assert.rejects(startLoopbackServer({ PIPELINE: "nonsense" }), /PIPELINE/);
  const left = [...Deno.readDirSync(Deno.env.get("TMPDIR") ?? "/tmp")]
    .filter((e) => e.name.startsWith("naila_loopback_") && !before.has(e.name));
  assert.deepEqual(left, []);
});
