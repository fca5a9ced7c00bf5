/**
 * Issue 10: one forged answer full of public candidates must not make the gateway a traffic
 * reflector. The gateway runs in a network namespace whose only way out of its test link is a
 * veth end inside the namespace as the route to the forged candidates' addresses (its other end is in the namespace too): a
 * packet to any public address is counted there (tx_packets) and dropped, never sent anywhere. The forged answer names 400 public addresses;
 * the gateway must attempt 0 sends to them. A control run with every range allowed shows the
 * counter does see such attempts.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { startEmbeddedBroker } from "../shared/broker.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { canCreateTestHost, createTestHost, type TestHost } from "./helpers/netns.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** Public addresses the forged answer names (TEST-NET and well-known resolvers: never reached). */
const FORGED_CANDIDATES = 400;
/** How long the gateway gets to (not) send checks: werift paces checks every ~20 ms. */
const WATCH_MS = 3000;
/** Polls of a log line before the test counts as hung (a count, not a time bound). */
const MAX_POLLS = 3000;

async function run(args: string[]): Promise<string> {
  const out = await new Deno.Command(args[0], {
    args: args.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** Packets the namespace tried to send to the forged candidates' addresses. */
async function attemptedSends(host: TestHost): Promise<number> {
  return Number(
    (await run([...host.exec, "cat", "/sys/class/net/nldummy/statistics/tx_packets"])).trim(),
  );
}

function forgedAnswer(offer: string): string {
  const lines = offer.split("\r\n").filter((l) => l !== "" && !l.startsWith("a=candidate:"));
  const answer = lines.map((line) => {
    if (line.startsWith("a=setup:")) return "a=setup:active";
    if (line.startsWith("a=ice-ufrag:")) return "a=ice-ufrag:forg";
    if (line.startsWith("a=ice-pwd:")) return "a=ice-pwd:forgedforgedforgedforged00";
    return line;
  });
  const at = answer.findIndex((l) => l.startsWith("a=ice-pwd:")) + 1;
  const candidates = [];
  for (let i = 0; i < FORGED_CANDIDATES; i++) {
    // 8.8.x.y and 1.1.x.y style public addresses, and TEST-NET-3.
    const address = i % 2 === 0
      ? `8.8.${i % 250}.${(i * 7) % 250 + 1}`
      : `203.0.113.${i % 250 + 1}`;
    candidates.push(`a=candidate:${i} 1 udp ${2122260223 - i} ${address} ${40000 + i} typ host`);
  }
  answer.splice(at, 0, ...candidates);
  return answer.join("\r\n") + "\r\n";
}

async function forgedAnswerRun(host: TestHost, extraEnv: Record<string, string>): Promise<number> {
  const broker = await startEmbeddedBroker({
    host: host.hostAddress,
    port: 0,
    allowAnonymous: true,
  });
  const env = {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? "/root",
    MQTT_HOST: host.hostAddress,
    MQTT_PORT: String(broker.port),
    AI_SERVER_HOST: host.hostAddress,
    AI_SERVER_PORT: String(await freePort()),
    AI_SERVER_AUTH: "off",
    WEBRTC_HOST_ADDRESSES: host.peerAddress,
    GATEWAY_WEB: "off",
    AUDIO_VAD_MODE: "energy",
    LOG_LEVEL: "info",
    ...extraEnv,
  };
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", host.name, Deno.execPath(), "run", "-A", "gateway/main.ts"],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const reading = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      lines.push(...chunk.split("\n"));
    }
  })();
  const client = await mqtt.connectAsync(`mqtt://${host.hostAddress}:${broker.port}`, {
    protocolVersion: 4,
  });
  try {
    for (let polls = 0; !lines.some((l) => l.includes("signaling ready")); polls++) {
      assert.ok(polls < MAX_POLLS, `gateway not ready: ${lines.slice(-5).join("\n")}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const offers: { sdp: string; session_id: string }[] = [];
    client.on("message", (_topic, payload) => offers.push(JSON.parse(payload.toString())));
    await client.subscribeAsync("naila/devices/forger/signaling/offer", { qos: 1 });
    await client.publishAsync(
      "naila/devices/forger/status",
      JSON.stringify({
        device_id: "forger",
        online: true,
        capabilities: ["audio"],
        timestamp: new Date().toISOString(),
      }),
      { qos: 1 },
    );
    for (let polls = 0; offers.length === 0; polls++) {
      assert.ok(polls < MAX_POLLS, "no offer");
      await new Promise((r) => setTimeout(r, 10));
    }
    const before = await attemptedSends(host);
    const offer = offers[0];
    const answer = forgedAnswer(offer.sdp);
    assert.ok(answer.length > 20_000, `a large forged answer (${answer.length} bytes)`);
    await client.publishAsync(
      "naila/devices/forger/signaling/answer",
      JSON.stringify({ type: "answer", sdp: answer, session_id: offer.session_id }),
      { qos: 1 },
    );
    await new Promise((r) => setTimeout(r, WATCH_MS));
    return (await attemptedSends(host)) - before;
  } finally {
    await client.endAsync();
    child.kill("SIGTERM");
    await child.status;
    await reading.catch(() => {});
    await broker.close();
  }
}

Deno.test({
  name: "a forged answer full of public candidates makes the gateway attempt 0 sends to them",
  ignore: !(await canCreateTestHost()),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const host = await createTestHost(Deno.pid % 50 + 150);
    try {
      // Everything beyond the test link goes out of a veth pair whose both ends are inside the
      // namespace (no dummy module here): without ARP the kernel transmits each packet, which
      // counts it, and the other end drops it (the namespace does not forward).
      await run([
        ...host.exec,
        "ip",
        "link",
        "add",
        "nldummy",
        "type",
        "veth",
        "peer",
        "name",
        "nlsink",
      ]);
      await run([...host.exec, "ip", "link", "set", "nldummy", "arp", "off"]);
      // No IPv6 there: its router solicitations would be counted as sends.
      for (const end of ["nldummy", "nlsink"]) {
        await run([...host.exec, "sysctl", "-qw", `net.ipv6.conf.${end}.disable_ipv6=1`]);
      }
      await run([...host.exec, "ip", "link", "set", "nldummy", "up"]);
      await run([...host.exec, "ip", "link", "set", "nlsink", "up"]);
      // Only the forged candidates' ranges: other traffic (a DNS query) is not an attempt.
      for (const range of ["8.8.0.0/16", "203.0.113.0/24"]) {
        await run([...host.exec, "ip", "route", "add", range, "dev", "nldummy"]);
      }
      await t.step("default ranges: 0 attempts", async () => {
        const attempts = await forgedAnswerRun(host, {});
        assert.equal(attempts, 0);
      });
      await t.step("control, every range allowed: the counter sees the attempts", async () => {
        const attempts = await forgedAnswerRun(host, {
          WEBRTC_ALLOWED_CANDIDATE_RANGES: "0.0.0.0/0",
          WEBRTC_MAX_CANDIDATES: "1000",
        });
        assert.ok(attempts > 0, `control attempts: ${attempts}`);
        console.log(`control: ${attempts} packets towards forged candidates in ${WATCH_MS} ms`);
      });
    } finally {
      await host.remove();
    }
  },
});
