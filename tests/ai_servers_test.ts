/**
 * More than one AI server (issue 14, docs/scaling.md): two real server processes (echo pipeline)
 * on one Mosquitto, one gateway process given both in AI_SERVER_HOST, werift devices. Turns are
 * spread over both servers by load, and when one server is killed while turns are open on it,
 * every turn is still answered (replayed on the other).
 */
import assert from "node:assert/strict";
import { DevicePeer } from "../device/peer.ts";
import type { GatewayMetrics } from "../shared/messages.ts";
import { connectMqtt } from "../shared/mqtt.ts";
import { startGatewayProcess } from "../scripts/lib/gateway_process.ts";
import { startMosquitto } from "../scripts/lib/mosquitto.ts";
import { startServerProcess } from "../scripts/lib/server_process.ts";
import { speak } from "../scripts/lib/speech.ts";

const DEVICES = 6;
/** The utterance is ~2 s: killing a server this long after speech starts lands mid-utterance. */
const KILL_AFTER_MS = 700;
/** Generous for a loaded 2-core machine: the reply of a replayed turn. */
const REPLY_TIMEOUT_MS = 30_000;

/** The gateway's metrics this often (ms), so the test reads fresh per-server counts. */
const METRICS_INTERVAL_MS = 200;

/** Turns answered per server port, from the gateway's last metrics. */
type Answered = Map<number, number>;

function answered(metrics: GatewayMetrics | undefined): Answered {
  const servers = (metrics?.ai_server as { servers?: { port: number; answered: number }[] })
    ?.servers ?? [];
  return new Map(servers.map((s) => [s.port, s.answered]));
}

/** The gateway's warnings and errors, to say why a reply did not come. */
function problems(gateway: { logs: { level?: string; msg: string; fields?: unknown }[] }): string {
  return JSON.stringify(
    gateway.logs.filter((l) => l.level === "warn" || l.level === "error").slice(-20),
  );
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("two AI servers: turns spread over both; one killed mid-turn loses no turn", async () => {
  const broker = await startMosquitto();
  const mqttEnv = { MQTT_HOST: "127.0.0.1", MQTT_PORT: String(broker.port) };
  const a = await startServerProcess({ PIPELINE: "echo", ...mqttEnv });
  const b = await startServerProcess({ PIPELINE: "echo", ...mqttEnv });
  const gateway = await startGatewayProcess({
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(broker.port),
    AI_SERVER_HOST: `127.0.0.1:${a.audioPort},127.0.0.1:${b.audioPort}`,
    GATEWAY_METRICS_INTERVAL_MS: String(METRICS_INTERVAL_MS),
  });
  const mqtt = await connectMqtt({ embedded: false, host: "127.0.0.1", port: broker.port }, {
    clientId: `ai-servers-test-${crypto.randomUUID().slice(0, 8)}`,
  });
  let metrics: GatewayMetrics | undefined;
  mqtt.onMessage((topic, payload) => {
    if (topic.kind === "gateway_metrics") metrics = JSON.parse(payload);
  });
  await mqtt.subscribe("naila/gateway/metrics");
  const total = () => [...answered(metrics).values()].reduce((x, y) => x + y, 0);
  const devices = Array.from({ length: DEVICES }, (_, i) =>
    new DevicePeer({
      id: `multi_${i}`,
      mqtt: { host: "127.0.0.1", port: broker.port },
      hostAddresses: ["127.0.0.1"],
      decode: true,
    }));
  let aStopped = false;
  try {
    await Promise.all(devices.map((device) => device.connect()));
    const question = await speak("Hello, what time is it in the kitchen?");

    // Round 1: everyone at once; both servers answer some.
    await Promise.all(devices.map((device) => device.speak(question.samples, question.rate)));
    await Promise.all(devices.map((device) => device.nextReply(REPLY_TIMEOUT_MS))).catch(
      (error) => {
        throw new Error(`${error.message}; gateway: ${problems(gateway)}`);
      },
    );
    await until(() => total() === DEVICES, REPLY_TIMEOUT_MS, "metrics count every turn");
    const round1 = answered(metrics);
    const [doneA, doneB] = [round1.get(a.audioPort) ?? 0, round1.get(b.audioPort) ?? 0];
    assert.equal(doneA + doneB, DEVICES, `a ${doneA}, b ${doneB}`);
    assert.ok(doneA > 0 && doneB > 0, `turns spread over both servers: a ${doneA}, b ${doneB}`);

    // Round 2: a is killed while every device is still speaking; b answers all of them.
    const spoken = devices.map((device) => device.speak(question.samples, question.rate));
    await new Promise((resolve) => setTimeout(resolve, KILL_AFTER_MS));
    await a.stop("SIGKILL");
    aStopped = true;
    await Promise.all(spoken);
    const replies = await Promise.all(devices.map((d) => d.nextReply(REPLY_TIMEOUT_MS))).catch(
      (error) => {
        throw new Error(`${error.message}; gateway: ${problems(gateway)}`);
      },
    );
    for (const reply of replies) assert.ok(reply.samples().length > 48_000 * 0.5);
    // The kill did land mid-turn: the gateway moved a's open turns to b.
    const lost = gateway.logs.find((l) => l.msg === "AI server lost");
    assert.ok(Number(lost?.fields?.moved) > 0, JSON.stringify(lost));
    await until(() => total() === 2 * DEVICES, REPLY_TIMEOUT_MS, "metrics count every turn");
    assert.equal(answered(metrics).get(b.audioPort), doneB + DEVICES, "b answered round 2");
    for (const device of devices) {
      assert.ok(
        !device.events.some((e) => e.type === "error" || e.type === "timeout"),
        `${device.id}: ${JSON.stringify(device.events.filter((e) => e.type === "error"))}`,
      );
    }
  } finally {
    await Promise.all(devices.map((device) => device.close()));
    await mqtt.close();
    await gateway.stop();
    if (!aStopped) await a.stop();
    await b.stop();
    await broker.stop();
  }
});
