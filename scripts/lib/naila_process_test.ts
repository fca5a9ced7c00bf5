import assert from "node:assert/strict";
import { startNailaProcess } from "./naila_process.ts";
import { freePort } from "./ports.ts";

Deno.test("startNailaProcess collects log lines and stops with SIGTERM", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "naila_process_test_" });
  try {
    const server = await startNailaProcess("server/main.ts", {
      PIPELINE: "echo",
      AUDIO_SOCKET_HOST: "127.0.0.1",
      AUDIO_SOCKET_PORT: String(await freePort()),
      MQTT_BIND_HOST: "127.0.0.1",
      MQTT_PORT: String(await freePort()),
      NAILA_DATA_DIR: dataDir,
    }, { ready: (l) => l.msg === "server ready", readyTimeoutMs: 30_000 });
    assert.equal(server.exited, false);
    assert.ok(server.lines.length >= server.logs.length);
    const status = await server.stop();
    assert.equal(status.code, 0);
    assert.equal(server.exited, true);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("startNailaProcess names the process and quotes its output when it never gets ready", async () => {
  await assert.rejects(
    startNailaProcess("gateway/main.ts", { GATEWAY_WEB: "maybe" }, {
      ready: (l) => l.msg === "signaling ready",
      readyTimeoutMs: 30_000,
    }),
    /^Error: gateway\/main\.ts: exited before a matching log line; .*GATEWAY_WEB="maybe"/,
  );
});
