/**
 * `deno run -A scripts/bench_sessions.ts [--devices 1000] [--batch 100] [--rounds 3]`: does the
 * gateway's memory return near its baseline after sessions close (issue 10)? Fake devices
 * announce themselves on MQTT (status online), each gets a real WebRTC session and offer from
 * the gateway, then goes offline; `--batch` are online at once, `--devices` per round. Prints
 * the gateway's RSS (VmRSS) at baseline, at the peak of each round and after each round settles.
 * A benchmark, not a test: its numbers go in the report, nothing is asserted.
 *
 * `--in-process` runs the gateway inside this process instead (needs
 * `--v8-flags=--expose-gc`) and also prints the JavaScript heap after a full GC, which tells a
 * leak (heap keeps growing) from memory the allocator keeps for the next peak (heap back down).
 */
import { parseArgs } from "node:util";
import mqtt from "mqtt";
import { startEmbeddedBroker } from "../shared/broker.ts";
import { delay } from "../shared/async.ts";
import { rssMb } from "./bench_process.ts";
import { startGatewayProcess } from "./lib/gateway_process.ts";
import { loadConfig } from "../shared/config.ts";
import { createLogger } from "../shared/log.ts";
import { startGateway } from "../gateway/mod.ts";
import { freePort } from "./lib/ports.ts";

/** After a round, the gateway gets this long to close sessions and collect garbage. */
const SETTLE_MS = 5000;
/** Polls of the offers' arrival before a batch counts as stuck (a count, not a time bound). */
const MAX_POLLS = 6000;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    devices: { type: "string", default: "1000" },
    batch: { type: "string", default: "100" },
    rounds: { type: "string", default: "3" },
    "in-process": { type: "boolean", default: false },
  },
});
const devices = Number(values.devices);
const batch = Number(values.batch);
const rounds = Number(values.rounds);

const broker = await startEmbeddedBroker({ host: "127.0.0.1", port: 0, allowAnonymous: true });
const env = {
  MQTT_HOST: "127.0.0.1",
  MQTT_PORT: String(broker.port),
  AI_SERVER_HOST: "127.0.0.1",
  AI_SERVER_PORT: String(await freePort()),
  AI_SERVER_AUTH: "off",
  AUDIO_VAD_MODE: "energy",
  GATEWAY_MAX_DEVICES: String(batch),
  WEBRTC_HOST_ADDRESSES: "127.0.0.1",
  // "info": the process's readiness is its "signaling ready" line.
  LOG_LEVEL: "info",
};
const gc = (globalThis as { gc?: () => void }).gc;
if (values["in-process"] && gc === undefined) {
  throw new Error("--in-process needs --v8-flags=--expose-gc");
}
const gateway = values["in-process"] ? await inProcessGateway() : await startGatewayProcess(env);

/** The gateway in this process: same pid for RSS, and its heap measurable. */
async function inProcessGateway() {
  const config = loadConfig(env);
  const running = await startGateway(config, {
    log: (component) => createLogger(component, { level: "error" }),
    maxDevices: batch,
    aiServer: { auth: false },
  });
  return { pid: Deno.pid, stop: () => running.close() };
}

/** MB of JavaScript heap in use after a full GC (in-process only). */
function heapMb(): string {
  if (!values["in-process"]) return "";
  gc!();
  return `, heap ${(Deno.memoryUsage().heapUsed / 1e6).toFixed(0)} MB`;
}
const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { protocolVersion: 4 });
const offered = new Set<string>();
client.on("message", (topic) => offered.add(topic.split("/")[2]));
await client.subscribeAsync("naila/devices/+/signaling/offer", { qos: 0 });

const status = (device: string, online: boolean) =>
  client.publishAsync(
    `naila/devices/${device}/status`,
    JSON.stringify({
      device_id: device,
      online,
      capabilities: ["audio"],
      timestamp: new Date().toISOString(),
    }),
    { qos: 1 },
  );

try {
  await delay(SETTLE_MS);
  const baseline = rssMb(gateway.pid);
  console.log(`baseline RSS ${baseline.toFixed(0)} MB${heapMb()}`);
  for (let round = 1; round <= rounds; round++) {
    let peak = 0;
    const started = performance.now();
    for (let first = 0; first < devices; first += batch) {
      const ids = Array.from(
        { length: Math.min(batch, devices - first) },
        (_, i) => `fake_r${round}_${first + i}`,
      );
      await Promise.all(ids.map((id) => status(id, true)));
      for (let polls = 0; !ids.every((id) => offered.has(id)); polls++) {
        if (polls >= MAX_POLLS) {
          throw new Error(`only ${ids.filter((id) => offered.has(id)).length} offers`);
        }
        await delay(10);
      }
      peak = Math.max(peak, rssMb(gateway.pid));
      await Promise.all(ids.map((id) => status(id, false)));
    }
    const elapsed = (performance.now() - started) / 1000;
    await delay(SETTLE_MS);
    const after = rssMb(gateway.pid);
    console.log(
      `round ${round}: ${devices} devices (${batch} at once) in ${elapsed.toFixed(1)} s, ` +
        `peak RSS ${peak.toFixed(0)} MB, after ${after.toFixed(0)} MB ` +
        `(+${(after - baseline).toFixed(0)} MB over baseline)${heapMb()}`,
    );
  }
} finally {
  await client.endAsync();
  await gateway.stop();
  await broker.close();
}
