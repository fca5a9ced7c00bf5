/**
 * The real server process under the load of issue 14: 20 devices speaking at the same moment
 * over one gateway connection (v2, real codec) are all answered, with the echo pipeline and
 * with the full pipeline on the generated Whisper fixture; the status on `naila/server/status`
 * carries the load while they wait.
 */
import assert from "node:assert/strict";
import { float32ToPcm, resample } from "../shared/audio.ts";
import { encodeV2, type V2Message } from "../shared/frame_codec.ts";
import type { ServerStatus } from "../shared/messages.ts";
import { connectMqtt } from "../shared/mqtt.ts";
import { ALL_CAPABILITIES, V2Client } from "../scripts/lib/audio_socket_clients.ts";
import { startServerProcess } from "../scripts/lib/server_process.ts";
import { speak } from "../scripts/lib/speech.ts";
import { FIXTURE_DIR, hasFixture } from "./helpers/whisper_fixture.ts";

const DEVICES = 20;

/** Every device's whole turn written in one piece, so all 20 end at the same moment. */
async function speakTogether(client: V2Client, pcm: Uint8Array): Promise<void> {
  const messages: V2Message[] = [];
  for (let i = 0; i < DEVICES; i++) {
    messages.push({ type: "start", turn: `t${i}`, device: `d${i}`, rate: 16000, ts: Date.now() });
    messages.push({ type: "audio", turn: `t${i}`, seq: 0, rate: 16000, ts: Date.now(), pcm });
  }
  for (let i = 0; i < DEVICES; i++) messages.push({ type: "end", turn: `t${i}`, ts: Date.now() });
  await client.conn.write(new Uint8Array(messages.flatMap((m) => [...encodeV2(m)])));
}

async function allAnswered(client: V2Client): Promise<void> {
  for (let i = 0; i < DEVICES; i++) {
    await client.next(
      (m) => (m.type === "end" || m.type === "error") && m.turn === `t${i}`,
      60_000,
    );
  }
  const errors = client.messages.filter((m) => m.type === "error");
  assert.deepEqual(errors, [], "no turn refused");
  for (let i = 0; i < DEVICES; i++) {
    assert.ok(
      client.messages.some((m) => m.type === "audio" && m.turn === `t${i}`),
      `t${i} has reply audio`,
    );
  }
}

Deno.test("capacity (process, echo): 20 devices speaking at once over one connection are all answered", async () => {
  const server = await startServerProcess({ PIPELINE: "echo" });
  const client = await V2Client.connect(
    server.audioPort,
    [...ALL_CAPABILITIES, "queue"],
    server.secret,
  );
  try {
    await speakTogether(client, new Uint8Array(16000).fill(7));
    await allAnswered(client);
  } finally {
    client.close();
    await server.stop();
  }
});

Deno.test({
  name:
    "capacity (process, Whisper fixture): 20 devices at once all answered, queued state told, load on the status",
  ignore: !hasFixture,
  fn: async () => {
    const server = await startServerProcess({ PIPELINE: "full", STT_MODEL_DIR: FIXTURE_DIR });
    const mqtt = await connectMqtt({
      embedded: false,
      host: "127.0.0.1",
      port: server.mqttPort,
      ...server.login("server"),
    }, {
      clientId: `capacity-test-${crypto.randomUUID().slice(0, 8)}`,
    });
    const statuses: ServerStatus[] = [];
    mqtt.onMessage((topic, payload) => {
      if (topic.kind === "server_status") statuses.push(JSON.parse(payload));
    });
    await mqtt.subscribe("naila/server/status");
    const client = await V2Client.connect(
      server.audioPort,
      [...ALL_CAPABILITIES, "queue"],
      server.secret,
    );
    try {
      const wav = await speak("What time is it?");
      await speakTogether(client, float32ToPcm(resample(wav.samples, wav.rate, 16000)));
      await allAnswered(client);
      // Every turn was heard, and the ones that waited were told where they stood.
      const transcripts = client.messages.filter((m) =>
        m.type === "text" && m.kind === "transcript"
      );
      assert.equal(transcripts.length, DEVICES);
      const queued = client.messages.filter((m) => m.type === "state" && m.state === "queued");
      assert.ok(queued.length >= DEVICES - 1, `${queued.length} queued events`);
      const last = queued.find((m) => m.type === "state" && m.turn === `t${DEVICES - 1}`);
      assert.ok(last?.type === "state" && last.position === DEVICES - 1, JSON.stringify(last));
      // The status carried the load while the turns waited, and the capacity estimate after.
      const loaded = statuses.filter((s) => (s.load?.queued_turns ?? 0) > 0);
      assert.ok(loaded.length > 0, JSON.stringify(statuses.map((s) => s.load)));
      assert.ok(loaded[0].load!.active_devices > 1 && loaded[0].load!.queued_audio_s > 0);
      // A guard against a hang, not a measurement: the next status comes within a second.
      const deadline = Date.now() + 10_000;
      while (statuses.at(-1)?.load?.queued_turns !== 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(statuses.at(-1)?.load?.queued_turns, 0, "the load goes back to zero");
      assert.ok((statuses.at(-1)?.load?.capacity_turns_per_min ?? 0) > 0);
    } finally {
      client.close();
      await mqtt.close();
      await server.stop();
    }
  },
});
