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
import { encodeV2, type V2Message } from "../shared/frame_codec.ts";
import {
  ALL_CAPABILITIES,
  parseV1Responses,
  readUntil,
  sendTurn,
  v1Request,
  V2Client,
} from "../scripts/lib/audio_socket_clients.ts";
import type { MqttLogin } from "../shared/credentials.ts";
import { startMosquitto } from "../scripts/lib/mosquitto.ts";
import { FIXTURE_DIR, hasFixture } from "./helpers/whisper_fixture.ts";
import { freePort } from "../scripts/lib/ports.ts";
import { startServerProcess } from "../scripts/lib/server_process.ts";
import { speak } from "../scripts/lib/speech.ts";

async function statusWatcher(
  port: number,
  login?: MqttLogin,
): Promise<{ mqtt: NailaMqtt; statuses: ServerStatus[] }> {
  const mqtt = await connectMqtt({ embedded: false, host: "127.0.0.1", port, ...login }, {
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
  const server = await startServerProcess({ PIPELINE: "echo", AUDIO_SOCKET_ALLOW: "127.0.0.1" });
  let watcher: Awaited<ReturnType<typeof statusWatcher>> | undefined;
  try {
    // The gateway's login: the gateway role reads the server status.
    watcher = await statusWatcher(server.mqttPort, server.login("gateway"));
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

    const client = await V2Client.connect(server.audioPort, undefined, server.secret);
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
      const hello = client.messages.find((m) => m.type === "hello");
      assert.ok(hello?.type === "hello" && !hello.capabilities.includes("speculate"), "no STT");
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
    AUDIO_SOCKET_ALLOW: "127.0.0.1",
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
        const client = await V2Client.connect(server.audioPort, undefined, server.secret);
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

Deno.test({
  name:
    "server (full, Whisper fixture): a pause starts STT early; end uses it, more audio discards it, cancel and busy stay clean",
  ignore: !hasFixture,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "naila_server_speculate_" });
    // No waiting line: a turn that ends while another runs is refused as busy at once.
    const server = await startServerProcess(
      { PIPELINE: "full", STT_MODEL_DIR: FIXTURE_DIR, INFERENCE_QUEUE_SIZE: "0" },
      { dataDir },
    );
    const client = await V2Client.connect(
      server.audioPort,
      [...ALL_CAPABILITIES, "speculate"],
      server.secret,
    );
    const utterance = await spoken("What time is it?");
    const half = Math.floor(utterance.length / 4) * 2;
    /** Messages written in one piece, so the server reads them together. */
    const together = (...messages: V2Message[]) =>
      client.conn.write(new Uint8Array(messages.flatMap((m) => [...encodeV2(m)])));
    const start = (turn: string, device = "kitchen") =>
      client.send({ type: "start", turn, device, rate: 16000, ts: Date.now() });
    const audio = (turn: string, seq: number, pcm: Uint8Array): V2Message => ({
      type: "audio",
      turn,
      seq,
      rate: 16000,
      ts: Date.now(),
      pcm,
    });
    const pause = (turn: string): V2Message => ({ type: "pause", turn, ts: Date.now() });
    const end = (turn: string): V2Message => ({ type: "end", turn, ts: Date.now() });
    const finished = async (turn: string) => {
      const message = await client.next((m) => m.type === "end" && m.turn === turn, 20_000);
      assert.ok(message.type === "end" && message.stages, JSON.stringify(message));
      const transcript = client.messages.find((m) =>
        m.type === "text" && m.turn === turn && m.kind === "transcript"
      );
      return { stages: message.stages, transcript: transcript?.type === "text" && transcript.text };
    };
    try {
      const hello = client.messages.find((m) => m.type === "hello");
      assert.ok(hello?.type === "hello" && hello.capabilities.includes("speculate"));

      // Without a pause: STT runs after end, as before.
      await sendTurn(client, { turn: "plain", rate: 16000, pcm: utterance });
      const plain = await finished("plain");
      assert.equal(plain.stages.stt_speculative, 0);
      assert.match(String(plain.transcript), /what time is it/i);

      // Pause, the silence window, end: the speculative transcript is used, and it is the same.
      await start("early");
      await together(audio("early", 0, utterance), pause("early"));
      await new Promise((resolve) => setTimeout(resolve, 200));
      await client.send(end("early"));
      const early = await finished("early");
      assert.equal(early.stages.stt_speculative, 1, JSON.stringify(early.stages));
      assert.equal(early.transcript, plain.transcript);
      assert.ok(early.stages.stt_ms < early.stages.stt_total_ms, JSON.stringify(early.stages));

      // End right behind the pause: the still-running speculation is awaited, not redone.
      await start("racing");
      await together(audio("racing", 0, utterance), pause("racing"), end("racing"));
      const racing = await finished("racing");
      assert.equal(racing.stages.stt_speculative, 1, JSON.stringify(racing.stages));
      assert.equal(racing.transcript, plain.transcript);

      // Speech resumes after the pause: the speculation is discarded and STT runs on it all.
      await start("resumed");
      await together(audio("resumed", 0, utterance.subarray(0, half)), pause("resumed"));
      await new Promise((resolve) => setTimeout(resolve, 100));
      await together(audio("resumed", 1, utterance.subarray(half)), end("resumed"));
      const resumed = await finished("resumed");
      assert.equal(resumed.stages.stt_speculative, 0, JSON.stringify(resumed.stages));
      assert.equal(resumed.transcript, plain.transcript);

      // Cancelled while speculating: nothing comes back for it, a stale pause is ignored, and
      // the connection goes on.
      await start("gone");
      await together(
        audio("gone", 0, utterance),
        pause("gone"),
        { type: "cancel", turn: "gone", ts: Date.now(), played_ms: 0 },
      );
      await client.send(pause("gone"));
      await client.send(pause("never"));
      const unknown = await client.next((m) => m.type === "error" && m.turn === "never");
      assert.ok(unknown.type === "error" && unknown.code === "unknown_turn");
      await start("after");
      await together(audio("after", 0, utterance), pause("after"), end("after"));
      const after = await finished("after");
      assert.equal(after.stages.stt_speculative, 1);
      assert.deepEqual(client.types().filter((t) => t.endsWith(":gone")), [], "nothing for gone");

      // Busy: while "first" runs, a pause does not start STT beside it (inference is
      // sequential), and the end it precedes is refused; a pause after that is stale.
      // Two devices: a second start of one device would supersede its first turn.
      await start("first");
      await start("second", "hall");
      await together(
        audio("first", 0, utterance),
        end("first"),
        audio("second", 0, utterance),
        pause("second"),
        end("second"),
      );
      const refused = await client.next((m) => m.type === "error" && m.turn === "second");
      assert.ok(refused.type === "error" && refused.code === "busy", JSON.stringify(refused));
      const first = await finished("first");
      assert.equal(first.stages.stt_speculative, 0);
      assert.equal(first.transcript, plain.transcript);
      await client.send(pause("second"));
      await start("last");
      await together(audio("last", 0, utterance), pause("last"), end("last"));
      assert.equal((await finished("last")).stages.stt_speculative, 1);
      assert.deepEqual(
        client.messages.filter((m) => m.type === "error").map((m) => m.type === "error" && m.turn),
        ["never", "second"],
        "no other error",
      );
    } finally {
      client.close();
      assert.equal((await server.stop()).code, 0);
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
