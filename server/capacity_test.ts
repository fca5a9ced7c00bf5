/**
 * The audio socket under load (issue 14): many devices over one gateway connection, fairness
 * across devices, `state` events and the spoken "one moment", the spoken apology with `busy`,
 * one open turn per device, and v1 requests answered in order. Real sockets, the real codec and
 * real espeak-ng for the notices.
 */
import assert from "node:assert/strict";
import {
  ALL_CAPABILITIES,
  parseV1Responses,
  readUntil,
  sendTurn,
  v1Request,
  V2Client,
} from "../scripts/lib/audio_socket_clients.ts";
import { ScriptedPipeline, withServer } from "./audio_socket_testing.ts";
import { Notices } from "./notices.ts";
import { EchoPipeline } from "./pipeline.ts";
import { EspeakTts } from "./tts/espeak.ts";
import type { V2Message } from "../shared/frame_codec.ts";

const QUEUE_CAPABILITIES = [...ALL_CAPABILITIES, "queue"];
/** 0.2 s of a non-silent pattern at 16 kHz. */
const PCM = new Uint8Array(3200 * 2).map((_, i) => (i * 13) % 256);

/** Resolves once the pipeline started `turn` (polls; the test runner's timeout is the guard). */
async function started(pipeline: ScriptedPipeline, turn: string): Promise<void> {
  while (!pipeline.runs.includes(turn)) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** Runs `fn` with spoken notices from espeak-ng, closed afterwards. */
async function withNotices(fn: (notices: Notices) => Promise<void>): Promise<void> {
  const notices = new Notices(() => Promise.resolve(new EspeakTts()));
  try {
    await fn(notices);
  } finally {
    await notices.close();
  }
}

function turnOf(m: V2Message): string | undefined {
  return "turn" in m ? m.turn : undefined;
}

/** Sends `count` turns from devices d0…, all started before any ends, over one connection. */
async function simultaneousTurns(client: V2Client, count: number): Promise<void> {
  const ids = Array.from({ length: count }, (_, i) => i);
  for (const i of ids) {
    await client.send({
      type: "start",
      turn: `t${i}`,
      device: `d${i}`,
      rate: 16000,
      ts: Date.now(),
    });
  }
  for (const i of ids) {
    await client.send({
      type: "audio",
      turn: `t${i}`,
      seq: 0,
      rate: 16000,
      ts: Date.now(),
      pcm: PCM,
    });
  }
  for (const i of ids) await client.send({ type: "end", turn: `t${i}`, ts: Date.now() });
}

for (
  const [name, pipeline] of [["echo", () => new EchoPipeline()], [
    "a 30 ms pipeline",
    () => new ScriptedPipeline(30),
  ]] as const
) {
  Deno.test(`capacity: 20 simultaneous turns of 20 devices on one connection are all answered (${name})`, async () => {
    await withServer(pipeline(), async (server) => {
      const client = await V2Client.connect(server.port, QUEUE_CAPABILITIES);
      try {
        await simultaneousTurns(client, 20);
        for (let i = 0; i < 20; i++) {
          await client.next((m) => m.type === "end" && m.turn === `t${i}`, 20_000);
        }
        const errors = client.messages.filter((m) => m.type === "error");
        assert.deepEqual(errors, []);
        for (let i = 0; i < 20; i++) {
          assert.ok(client.messages.some((m) => m.type === "audio" && m.turn === `t${i}`));
        }
      } finally {
        client.close();
      }
    });
  });
}

Deno.test("capacity: a waiting turn hears state queued, then 'one moment', then running and its reply", async () => {
  await withNotices(async (notices) => {
    const pipeline = new ScriptedPipeline(400);
    await withServer(pipeline, async (server) => {
      const client = await V2Client.connect(server.port, QUEUE_CAPABILITIES);
      try {
        await sendTurn(client, { turn: "a1", device: "a", rate: 16000, pcm: PCM });
        await started(pipeline, "a1");
        await sendTurn(client, { turn: "b1", device: "b", rate: 16000, pcm: PCM });
        await client.next((m) => m.type === "end" && m.turn === "b1", 20_000);
        const b = client.messages.filter((m) => turnOf(m) === "b1");
        const queued = b[0];
        assert.equal(queued.type, "state");
        assert.ok(queued.type === "state" && queued.state === "queued" && queued.position === 1);
        const kinds = b.map((m) => m.type === "state" ? `state:${m.state}` : m.type);
        const running = kinds.indexOf("state:running");
        const firstAudio = kinds.indexOf("audio");
        assert.ok(firstAudio > 0 && firstAudio < running, `notice audio before running: ${kinds}`);
        const notice = b.slice(0, running).filter((m) => m.type === "audio");
        const noticeBytes = notice.reduce((n, m) => n + (m.type === "audio" ? m.pcm.length : 0), 0);
        // espeak-ng's "One moment." is well over 0.3 s at 16 kHz.
        assert.ok(noticeBytes > 0.3 * 16000 * 2, `notice of ${noticeBytes} bytes`);
        const seqs = b.filter((m) => m.type === "audio").map((m) =>
          m.type === "audio" ? m.seq : -1
        );
        assert.deepEqual(seqs, seqs.map((_, i) => i), "notice and reply share one seq run");
        assert.ok(seqs.length > notice.length, "the reply follows the notice");
        assert.equal(kinds.at(-1), "end");
        // A gateway without `queue` hears neither: a1 ran at once and had nothing to wait for.
        assert.ok(!client.messages.some((m) => m.type === "state" && m.turn === "a1"));
      } finally {
        client.close();
      }
    }, { notices, queueTiming: { noticeMs: 100 } });
  });
});

Deno.test("capacity: when overloaded a turn is refused with spoken apology audio and busy", async () => {
  await withNotices(async (notices) => {
    const pipeline = new ScriptedPipeline(300);
    await withServer(pipeline, async (server) => {
      const client = await V2Client.connect(server.port);
      try {
        await sendTurn(client, { turn: "a1", device: "a", rate: 16000, pcm: PCM });
        await started(pipeline, "a1");
        await sendTurn(client, { turn: "b1", device: "b", rate: 16000, pcm: PCM });
        await sendTurn(client, { turn: "c1", device: "c", rate: 16000, pcm: PCM });
        const busy = await client.next((m) => m.type === "error" && m.turn === "c1");
        assert.equal(busy.type === "error" && busy.code, "busy");
        assert.match(busy.type === "error" ? busy.message : "", /holds 0.2 s|holds 0 s/);
        const c = client.messages.filter((m) => turnOf(m) === "c1");
        const apology = c.filter((m) => m.type === "audio");
        assert.ok(apology.length > 0 && c.at(-1)?.type === "error", "audio first, then busy");
        const bytes = apology.reduce((n, m) => n + (m.type === "audio" ? m.pcm.length : 0), 0);
        assert.ok(bytes > 16000 * 2, `the apology is over 1 s of speech, got ${bytes} bytes`);
        // The turns within the limits are answered.
        await client.next((m) => m.type === "end" && m.turn === "b1", 20_000);
      } finally {
        client.close();
      }
    }, { notices, limits: { maxQueuedAudioMs: 300 } });
  });
});

Deno.test("capacity: a new start of a device supersedes its turn still receiving or queued", async () => {
  const pipeline = new ScriptedPipeline(200);
  await withServer(pipeline, async (server) => {
    const client = await V2Client.connect(server.port);
    try {
      await sendTurn(client, { turn: "x1", device: "x", rate: 16000, pcm: PCM });
      await started(pipeline, "x1");
      // k1 queued behind x1, k2 still receiving: each is superseded by the next start.
      await sendTurn(client, { turn: "k1", device: "kitchen", rate: 16000, pcm: PCM });
      await client.send({ type: "start", turn: "k2", device: "kitchen", rate: 16000, ts: 1 });
      await client.send({ type: "start", turn: "k3", device: "kitchen", rate: 16000, ts: 2 });
      await client.send({ type: "audio", turn: "k3", seq: 0, rate: 16000, ts: 3, pcm: PCM });
      await client.send({ type: "end", turn: "k3", ts: 4 });
      await client.next((m) => m.type === "end" && m.turn === "k3", 20_000);
      for (const turn of ["k1", "k2"]) {
        const error = client.messages.find((m) => m.type === "error" && m.turn === turn);
        assert.equal(error?.type === "error" && error.code, "superseded", turn);
      }
      assert.ok(!client.messages.some((m) => m.type === "end" && m.turn === "k1"));
      // A gateway has no business sending `state`: a typed error, and the connection goes on.
      await client.send({ type: "state", turn: "k3", state: "queued", ts: 5 });
      const refused = await client.next((m) => m.type === "error" && m.code === "unsupported");
      assert.equal(refused.type === "error" && refused.turn, "k3");
      assert.ok(!pipeline.runs.includes("k1"), "a superseded queued turn never runs");
    } finally {
      client.close();
    }
  });
});

Deno.test("capacity: one device's burst of v1 requests does not hold back another device", async () => {
  const pipeline = new ScriptedPipeline(100);
  await withServer(pipeline, async (server) => {
    const flood = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const other = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      for (let i = 0; i < 6; i++) {
        await flood.write(v1Request({ device: "tv", rate: 16000, request: `f${i}`, pcm: PCM }));
      }
      await started(pipeline, "f0");
      // Turns of the tv started when the desk's request is sent (one is running).
      const before = pipeline.runs.length;
      await other.write(v1Request({ device: "desk", rate: 16000, request: "o1", pcm: PCM }));
      const floodAnswers = await readUntil(flood, (b) => parseV1Responses(b).length === 6);
      const otherAnswer = await readUntil(other, (b) => parseV1Responses(b).length === 1);
      // All six answered, in order, none empty.
      const answers = parseV1Responses(floodAnswers.bytes);
      assert.deepEqual(answers.map((a) => a.header[3]), ["f0", "f1", "f2", "f3", "f4", "f5"]);
      assert.ok(answers.every((a) => a.body.length > 0));
      assert.equal(parseV1Responses(otherAnswer.bytes)[0].body.length > 0, true);
      // The desk's request ran within one round: after the running turn and at most one more
      // of the tv's, although five were waiting before it.
      assert.ok(pipeline.runs.indexOf("o1") <= before + 1, `run order ${pipeline.runs}`);
    } finally {
      flood.close();
      other.close();
    }
  });
});

Deno.test("capacity: speculative STT gives way to another device's final turn (finals first)", async () => {
  const aborted: string[] = [];
  const pipeline = new ScriptedPipeline(20);
  // Speculation that runs until aborted, like a long Whisper run.
  const speculating = Object.assign(pipeline, {
    speculate: (_pcm: Uint8Array, _rate: number, options: { signal: AbortSignal }) =>
      new Promise<never>((_, reject) => {
        options.signal.addEventListener("abort", () => {
          aborted.push("speculation");
          reject(options.signal.reason);
        }, { once: true });
      }),
  });
  await withServer(speculating, async (server) => {
    const client = await V2Client.connect(server.port, [...ALL_CAPABILITIES, "speculate"]);
    try {
      await client.send({ type: "start", turn: "a1", device: "a", rate: 16000, ts: 1 });
      await client.send({ type: "audio", turn: "a1", seq: 0, rate: 16000, ts: 2, pcm: PCM });
      await client.send({ type: "pause", turn: "a1", ts: 3 });
      await sendTurn(client, { turn: "b1", device: "b", rate: 16000, pcm: PCM });
      await client.next((m) => m.type === "end" && m.turn === "b1");
      assert.deepEqual(aborted, ["speculation"], "the speculation was aborted for b1");
      // a1 still gets its answer, transcribed after all.
      await client.send({ type: "end", turn: "a1", ts: 4 });
      await client.next((m) => m.type === "end" && m.turn === "a1");
      assert.deepEqual(pipeline.runs, ["b1", "a1"]);
    } finally {
      client.close();
    }
  });
});
