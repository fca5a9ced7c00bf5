import assert from "node:assert/strict";
import { startMosquitto } from "./mosquitto.ts";

async function refused(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return false;
  } catch (err) {
    return err instanceof Deno.errors.ConnectionRefused;
  }
}

Deno.test("startMosquitto runs a broker on loopback and stop() removes every trace", async () => {
  const broker = await startMosquitto();
  let stopped = false;
  try {
    assert.ok(!(await refused(broker.port)), "broker accepts connections");
    const conf = await Deno.readTextFile(`${broker.configDir}/mosquitto.conf`);
    assert.match(conf, new RegExp(`^listener ${broker.port} 127\\.0\\.0\\.1$`, "m"));
    await broker.stop();
    stopped = true;
    assert.ok(await refused(broker.port), "port is closed after stop");
    await assert.rejects(Deno.stat(broker.configDir), Deno.errors.NotFound);
    await broker.stop(); // idempotent
  } finally {
    if (!stopped) await broker.stop();
  }
});

Deno.test("two mosquittos run side by side on different ports", async () => {
  const a = await startMosquitto();
  try {
    const b = await startMosquitto();
    try {
      assert.notEqual(a.port, b.port);
    } finally {
      await b.stop();
    }
  } finally {
    await a.stop();
  }
});
