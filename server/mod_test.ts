import { readAudioSecret } from "../shared/audio_auth.ts";
import assert from "node:assert/strict";
import type { DeviceCommand } from "../shared/messages.ts";
import { ConversationMemory } from "./assistant/memory.ts";
import { connectMqtt } from "../shared/mqtt.ts";
import { sendTurn, V2Client } from "../scripts/lib/audio_socket_clients.ts";
import { startLoopbackServer } from "../scripts/lib/loopback_server.ts";
import { scriptedStt } from "../scripts/lib/scripted_stt.ts";
import { socketAuditRecord } from "./mod.ts";

function replyText(client: V2Client, turn: string): string {
  return client.messages.flatMap((m) =>
    m.type === "text" && m.kind === "reply" && m.turn === turn ? [m.text] : []
  ).join(" ");
}

Deno.test("startServer: device commands and due timers reach the device over MQTT", async () => {
  const server = await startLoopbackServer(
    { PIPELINE: "full", LOG_LEVEL: "warn" },
    { stt: scriptedStt(["Turn on the lights.", "Set a timer for one second."]) },
  );
  const { dataDir } = server;
  // The gateway's login from the data dir: the gateway role reads commands and reports events.
  const mqtt = await connectMqtt(
    { embedded: false, host: "127.0.0.1", port: server.mqttPort, ...server.login("gateway") },
    { clientId: "mod-test" },
  );
  const commands: DeviceCommand[] = [];
  mqtt.onMessage((topic, payload) => {
    if (topic.kind === "device_command" && topic.device === "kitchen") {
      commands.push(JSON.parse(payload));
    }
  });
  await mqtt.subscribe("naila/devices/+/command");
  const client = await V2Client.connect(server.audioPort, undefined, readAudioSecret(dataDir));
  try {
    const speech = new Uint8Array(16000);
    await sendTurn(client, { turn: "t1", rate: 16000, pcm: speech });
    await client.next((m) => m.type === "end" && m.turn === "t1");
    assert.equal(replyText(client, "t1"), "OK, turning on the lights.");
    await sendTurn(client, { turn: "t2", rate: 16000, pcm: speech });
    await client.next((m) => m.type === "end" && m.turn === "t2");
    assert.equal(replyText(client, "t2"), "OK, a timer for 1 second.");

    const deadline = Date.now() + 5000;
    while (!commands.some((c) => c.command === "announce") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(commands[0], { command: "set_power", params: { target: "lights", on: true } });
    const announce = commands.find((c) => c.command === "announce");
    assert.equal(announce?.params?.text, "Your timer for 1 second is done.");
    assert.equal(announce?.params?.reason, "timer");

    // The gateway fetches the spoken announcement with a turn that carries no audio.
    await sendTurn(client, { turn: "t3", rate: 16000, pcm: new Uint8Array(0) });
    await client.next((m) => m.type === "end" && m.turn === "t3");
    assert.equal(replyText(client, "t3"), "Your timer for 1 second is done.");
    assert.ok(client.messages.some((m) => m.type === "audio" && m.turn === "t3"));

    // The gateway reports a barge-in on the device's events topic; the memory records it.
    await mqtt.publish({ kind: "device_events", device: "kitchen" }, {
      type: "interrupted",
      turn: "t1",
      played_ms: 350,
    });
    const memory = ConversationMemory.open(`${dataDir}/naila.db`);
    try {
      const heard = () => memory.recent("kitchen", 10).find((t) => t.turn === "t1")?.playedMs;
      const until = Date.now() + 5000;
      while (heard() !== 350 && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(heard(), 350);
    } finally {
      memory.close();
    }
  } finally {
    client.close();
    await mqtt.close();
    await server.close();
  }
});

Deno.test("socketAuditRecord: the peer's address without its port, unknown events kept in detail", () => {
  assert.deepEqual(socketAuditRecord("auth_timeout", { peer: "192.168.1.20:51234" }), {
    event: "auth_timeout",
    address: "192.168.1.20",
    detail: undefined,
  });
  assert.deepEqual(socketAuditRecord("auth_failed", { peer: "::1:4000", detail: "wrong proof" }), {
    event: "auth_failed",
    address: "::1",
    detail: "wrong proof",
  });
  assert.deepEqual(
    socketAuditRecord("address_refused", { address: "10.0.0.9", detail: "not allowed" }),
    { event: "address_refused", address: "10.0.0.9", detail: "not allowed" },
  );
  assert.deepEqual(socketAuditRecord("something_new", { peer: "10.0.0.9:1", detail: "x" }), {
    event: "auth_failed",
    address: "10.0.0.9",
    detail: "something_new: x",
  });
});

Deno.test("startServer: a client that cannot authenticate on the audio socket is an event on naila/server/audit", async () => {
  const server = await startLoopbackServer({ PIPELINE: "echo" });
  // Only the server role may read the audit topic (shared/mqtt_acl.ts).
  const mqtt = await connectMqtt(
    {
      embedded: false,
      host: "127.0.0.1",
      port: server.mqttPort,
      ...server.login("server"),
    },
    { clientId: "mod-test-audit" },
  );
  const events: { event: string; address?: string }[] = [];
  mqtt.onMessage((topic, payload) => {
    if (topic.kind === "server_audit") events.push(JSON.parse(payload));
  });
  await mqtt.subscribe("naila/server/audit");
  try {
    // With another secret the client refuses the server's proof and never sends `auth`: the
    // server closes it when its authentication time runs out, and says so on the audit topic.
    await assert.rejects(V2Client.connect(server.audioPort, undefined, "w".repeat(64)));
    const deadline = Date.now() + 10_000;
    while (!events.some((e) => e.event === "auth_timeout") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const refused = events.find((e) => e.event === "auth_timeout");
    assert.equal(refused?.address, "127.0.0.1", JSON.stringify(events));
  } finally {
    await mqtt.close();
    await server.close();
  }
});
