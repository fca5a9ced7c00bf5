/**
 * The AI server as a real process (`deno run -A server/main.ts`): MQTT status with the embedded
 * broker and with mosquitto (last will), v1 and v2 on the socket, garbage isolation, clean
 * shutdown, and — with the generated Whisper fixture — the full pipeline with memory that
 * survives a restart.
 */
import assert from "node:assert/strict";
import { float32ToPcm, pcmToFloat32, resample, rms } from "../shared/audio.ts";
import type { ServerStatus } from "../shared/messages.ts";
import { connectMqtt, type NailaMqtt } from "../shared/mqtt.ts";
import { ConversationMemory } from "../server/assistant/memory.ts";
import { DATABASE_FILE } from "../server/mod.ts";
import {
  parseV1Responses,
  readUntil,
  sendTurn,
  v1Request,
  V2Client,
} from "./helpers/audio_socket_clients.ts";
import { startMosquitto } from "./helpers/mosquitto.ts";
import { freePort } from "./helpers/ports.ts";
import { startServerProcess } from "./helpers/server_process.ts";
import { speak } from "./helpers/speech.ts";

const FIXTURE_DIR = new URL("../models/whisper-fixture/", import.meta.url).pathname;
const hasFixture = (() => {
  try {
    return Deno.statSync(`${FIXTURE_DIR}onnx`).isDirectory;
  } catch {
    return false;
  }
})();

async function statusWatcher(port: number): Promise<{ mqtt: NailaMqtt; statuses: ServerStatus[] }> {
  const mqtt = await connectMqtt({ embedded: false, host: "127.0.0.1", port }, {
    clientId: `server-test-${crypto.randomUUID().slice(0, 8)}`,
  });
  const statuses: ServerStatus[] = [];
  mqtt.onMessage((topic, payload) => {
    if (topic.kind === "server_status") statuses.push(JSON.parse(payload));
  });
  await mqtt.subscribe("naila/server/status");
  return { mqtt, statuses };
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Utterance audio at 16 kHz as int16 PCM. */
async function spoken(text: string): Promise<Uint8Array> {
  const wav = await speak(text);
  return float32ToPcm(resample(wav.samples, wav.rate, 16000));
}

Deno.test("server (echo): status, v1 and v2 round trips, garbage isolated, clean SIGTERM", async () => {
  const server = await startServerProcess({ PIPELINE: "echo" });
  let watcher: Awaited<ReturnType<typeof statusWatcher>> | undefined;
  try {
    watcher = await statusWatcher(server.mqttPort);
    const { statuses } = watcher;
    await until(() => statuses.length > 0, "retained online status");
    assert.equal(statuses[0].online, true);
    assert.equal(statuses[0].pipeline, "echo");
    assert.equal(statuses[0].audio_socket_port, server.audioPort);

    // A peer sending garbage is closed while a v1 client (written from spec 4.2) is served.
    const garbage = await Deno.connect({ hostname: "127.0.0.1", port: server.audioPort });
    const v1 = await Deno.connect({ hostname: "127.0.0.1", port: server.audioPort });
    try {
      await garbage.write(new TextEncoder().encode("\x00\xff|garbage|||\n"));
      const pcm = new Uint8Array(4800 * 2).map((_, i) => (i * 7) % 256);
      await v1.write(v1Request({ device: "living_room", rate: 48000, request: "req_abc123", pcm }));
      const { bytes } = await readUntil(v1, (b) => parseV1Responses(b).length === 1);
      const [response] = parseV1Responses(bytes);
      assert.deepEqual(response.header, ["living_room", String(pcm.length), "48000", "req_abc123"]);
      assert.deepEqual(response.body, pcm);
      assert.equal((await readUntil(garbage, () => false)).closed, true);
    } finally {
      garbage.close();
      v1.close();
    }

    const client = await V2Client.connect(server.audioPort);
    try {
      const pcm = new Uint8Array(16000 * 2).fill(3);
      await sendTurn(client, { turn: "t1", rate: 16000, pcm });
      const end = await client.next((m) => m.type === "end");
      const audio = client.messages.filter((m) => m.type === "audio");
      assert.equal(
        audio.reduce((n, m) => n + (m.type === "audio" ? m.pcm.length : 0), 0),
        pcm.length,
      );
      assert.ok(end.type === "end" && typeof end.stages?.echo_ms === "number");
    } finally {
      client.close();
    }

    const exit = await server.stop("SIGTERM");
    assert.equal(exit.code, 0);
    assert.ok(server.lines.some((line) => line.includes('"msg":"stopped"')));
  } finally {
    await server.stop();
    await watcher?.mqtt.close();
  }
});

Deno.test("server with an external broker: the last will says offline when the process dies", async () => {
  const broker = await startMosquitto();
  const server = await startServerProcess({
    PIPELINE: "echo",
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(broker.port),
  }).catch(async (error) => {
    await broker.stop();
    throw error;
  });
  let watcher: Awaited<ReturnType<typeof statusWatcher>> | undefined;
  try {
    watcher = await statusWatcher(broker.port);
    const { statuses } = watcher;
    await until(() => statuses.some((s) => s.online), "online status");
    await server.stop("SIGKILL");
    await until(() => statuses.at(-1)?.online === false, "the will's offline status");
  } finally {
    await server.stop();
    await watcher?.mqtt.close();
    await broker.stop();
  }
});

Deno.test("server serves the socket while its MQTT broker is unreachable", async () => {
  const server = await startServerProcess({
    PIPELINE: "echo",
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(await freePort()),
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.audioPort });
  try {
    await conn.write(
      v1Request({ device: "d", rate: 16000, request: "r1", pcm: new Uint8Array(64) }),
    );
    const { bytes } = await readUntil(conn, (b) => parseV1Responses(b).length === 1);
    assert.equal(parseV1Responses(bytes)[0].body.length, 192);
    await until(
      () => server.lines.some((line) => line.includes("MQTT broker unreachable")),
      "the background retry's warning",
    );
  } finally {
    conn.close();
    assert.equal((await server.stop()).code, 0);
  }
});

Deno.test("server refuses a bad variable with a one-line error and exit code 2", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "server/main.ts"],
    cwd: new URL("../", import.meta.url).pathname,
    env: { LLM_URL: "localhost:8080", PIPELINE: "echo" },
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 2);
  assert.match(new TextDecoder().decode(output.stderr), /LLM_URL="localhost:8080" is not allowed/);
});

Deno.test({
  name: "server (full, Whisper fixture): hears, answers the time aloud, remembers across a restart",
  ignore: !hasFixture,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "naila_server_full_" });
    const env = { PIPELINE: "full", STT_MODEL_DIR: FIXTURE_DIR };
    try {
      const utterance = await spoken("What time is it?");
      for (const [round, turn] of [[1, "t1"], [2, "t2"]] as const) {
        const server = await startServerProcess(env, { dataDir });
        const client = await V2Client.connect(server.audioPort);
        try {
          await sendTurn(client, { turn, rate: 16000, pcm: utterance });
          const end = await client.next((m) => m.type === "end", 20_000);
          const texts = client.messages.flatMap((m) =>
            m.type === "text" ? [`${m.kind}:${m.text}`] : []
          );
          assert.match(texts[0], /^transcript:\s*what time is it/i);
          assert.match(texts[1], /^reply:It's \d{1,2}:\d\d [AP]M\.$/);
          const reply = new Uint8Array(
            client.messages.flatMap((m) => m.type === "audio" ? [...m.pcm] : []),
          );
          const seconds = reply.length / 2 / 16000;
          assert.ok(seconds > 0.5 && seconds < 4, `reply of ${seconds} s`);
          assert.ok(rms(pcmToFloat32(reply)) > 0.02, "reply audio is not silent");
          assert.ok(end.type === "end" && end.stages && end.stages.stt_ms > 0);
        } finally {
          client.close();
          assert.equal((await server.stop()).code, 0);
        }
        const memory = ConversationMemory.open(`${dataDir}/${DATABASE_FILE}`);
        const turns = memory.recent("kitchen", 10);
        memory.close();
        assert.equal(turns.length, round, "every turn is kept across restarts");
        assert.match(turns[0].transcript, /what time is it/i);
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
