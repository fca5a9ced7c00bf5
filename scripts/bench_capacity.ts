/**
 * `deno task bench:capacity` (issue 14): many devices speaking at the same moment against the
 * real server process over one v2 connection (as one gateway carries them), with the `queue`
 * capability. Each round, every device's whole utterance (espeak-ng speech, 16 kHz) and its `end`
 * are written in one piece, in a shuffled device order; the next round starts once every turn of
 * this one finished. Reported per configuration and device count:
 *
 * - turns answered (an `end` with reply audio; target 100 %), refused (`busy`), other errors;
 * - first reply: from writing the round to the turn's first reply audio after `running` (the
 *   "one moment" notice does not count), p50/p95; and to any audio including the notice;
 * - queue wait (`stages.queue_ms`, the server's own measure): p50 and the longest;
 * - fairness: each device's median queue wait over the rounds, max/min and max − min.
 *
 * Configurations: PIPELINE=echo, and the full pipeline with the whisper-tiny-shaped model of
 * random weights (real FLOPs, meaningless words) with the fitted encoder window and 16 tokens
 * (like `deno task bench`), with batched STT (the default) and with STT_BATCH=1. Then the STT batch axis: N utterances transcribed one after another
 * against one batched run (scripts/lib/stt_batching.ts). Writes bench/capacity.json.
 *
 * Usage: `deno task bench:capacity [--quick] [--rounds N]`
 */
import { encodeV2, type V2Message } from "../shared/frame_codec.ts";
import { float32ToPcm, resample, SPEECH_RATE } from "../shared/audio.ts";
import { type Cli, parseCli, positiveInt, speak, startServerProcess, V2Client } from "./lib/mod.ts";
import { ALL_CAPABILITIES } from "./lib/audio_socket_clients.ts";
import { makeWhisperFixtures } from "./make_whisper_models.ts";
import { measureSttBatching } from "./lib/stt_batching.ts";
import { median, percentile, round } from "./bench_stats.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const CLI: Cli = {
  command: "bench:capacity",
  usage: "usage: deno task bench:capacity [--quick] [--rounds N]",
};
const ARGS = parseCli(CLI, {
  quick: { type: "boolean", default: false },
  rounds: { type: "string" },
});
/** Rounds per device count: enough for a per-device median. */
const ROUNDS = positiveInt(CLI, "rounds", ARGS.rounds, ARGS.quick ? 2 : 3);
const DEVICE_COUNTS = [20, 40];
/** A guard against a hung round, not a measurement. */
const ROUND_TIMEOUT_MS = 300_000;
/** The client pings like a gateway, or the server ends the connection as silent (60 s). */
const PING_MS = 5000;
/** Tokens decoded per utterance with the random model (as `deno task bench`). */
const BENCH_MAX_TOKENS = 16;
const PHRASE = "Hello, what time is it in the kitchen?";

interface TurnResult {
  device: string;
  answered: boolean;
  code?: string;
  firstReplyMs?: number;
  firstAudioMs?: number;
  queueMs?: number;
}

function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** One round: every device speaks at once; resolves when every turn ended or failed. */
async function round1(
  client: V2Client,
  devices: string[],
  pcm: Uint8Array,
  tag: string,
): Promise<TurnResult[]> {
  const order = shuffle(devices);
  const turnOf = (device: string) => `${tag}-${device}`;
  const messages: V2Message[] = [];
  for (const device of order) {
    const turn = turnOf(device);
    messages.push({ type: "start", turn, device, rate: 16000, ts: Date.now() });
    messages.push({ type: "audio", turn, seq: 0, rate: 16000, ts: Date.now(), pcm });
  }
  for (const device of order) messages.push({ type: "end", turn: turnOf(device), ts: Date.now() });
  const from = client.messages.length;
  const sentAt = performance.now();
  await client.conn.write(new Uint8Array(messages.flatMap((m) => [...encodeV2(m)])));
  const results: TurnResult[] = [];
  for (const device of order) {
    const turn = turnOf(device);
    const last = await client.next(
      (m) => (m.type === "end" || m.type === "error") && "turn" in m && m.turn === turn,
      ROUND_TIMEOUT_MS,
    );
    const mine = client.messages.map((m, i) => ({ m, at: client.receivedAt[i] }))
      .slice(from).filter(({ m }) => "turn" in m && m.turn === turn);
    const running = mine.findIndex(({ m }) => m.type === "state" && m.state === "running");
    const firstAudio = mine.find(({ m }) => m.type === "audio");
    const reply = mine.slice(Math.max(0, running)).find(({ m }) => m.type === "audio");
    results.push({
      device,
      answered: last.type === "end" && reply !== undefined,
      code: last.type === "error" ? last.code : undefined,
      firstReplyMs: reply ? reply.at - sentAt : undefined,
      firstAudioMs: firstAudio ? firstAudio.at - sentAt : undefined,
      queueMs: last.type === "end" ? last.stages?.queue_ms : undefined,
    });
  }
  return results;
}

function stats(values: number[]) {
  if (values.length === 0) return null;
  return {
    p50: round(median(values)),
    p95: round(percentile(values, 95)),
    max: round(Math.max(...values)),
  };
}

function jain(values: number[]): number {
  const sum = values.reduce((a, b) => a + b, 0);
  const squares = values.reduce((a, b) => a + b * b, 0);
  return squares === 0 ? 1 : round((sum * sum) / (values.length * squares), 3);
}

async function measure(label: string, env: Record<string, string>, pcm: Uint8Array) {
  console.log(`\n== ${label}`);
  const server = await startServerProcess(env);
  const out = [];
  try {
    for (const count of DEVICE_COUNTS) {
      const client = await V2Client.connect(
        server.audioPort,
        [...ALL_CAPABILITIES, "queue"],
        server.secret,
      );
      let pingId = 0;
      const pinger = setInterval(() => {
        client.send({ type: "ping", id: pingId++, ts: Date.now() }).catch(() => {});
      }, PING_MS);
      try {
        const devices = Array.from({ length: count }, (_, i) => `dev${String(i).padStart(2, "0")}`);
        // One unmeasured turn: compilation and session warm-up.
        await round1(client, devices.slice(0, 1), pcm, `warm${count}`);
        const turns: TurnResult[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          turns.push(...await round1(client, devices, pcm, `r${count}x${r}`));
        }
        const answered = turns.filter((t) => t.answered);
        const perDevice = devices.map((d) =>
          median(
            turns.filter((t) => t.device === d && t.queueMs !== undefined).map((t) => t.queueMs!),
          )
        ).filter((x) => Number.isFinite(x));
        const row = {
          devices: count,
          rounds: ROUNDS,
          turns: turns.length,
          answered: answered.length,
          answered_percent: round((100 * answered.length) / turns.length, 1),
          refused_busy: turns.filter((t) => t.code === "busy").length,
          other_errors: turns.filter((t) => t.code !== undefined && t.code !== "busy").length,
          first_reply_ms: stats(answered.map((t) => t.firstReplyMs!)),
          first_audio_incl_notice_ms: stats(answered.map((t) => t.firstAudioMs!)),
          queue_wait_ms: stats(answered.map((t) => t.queueMs ?? 0)),
          fairness: perDevice.length === 0 ? null : {
            per_device_median_wait_max_ms: round(Math.max(...perDevice)),
            per_device_median_wait_min_ms: round(Math.min(...perDevice)),
            max_over_min: round(Math.max(...perDevice) / Math.max(1, Math.min(...perDevice)), 2),
            // Jain's index over the per-device mean waits: 1 = all equal, 1/n = one device waits.
            jain_index_mean_wait: jain(devices.map((d) => {
              const waits = turns.filter((t) => t.device === d).map((t) => t.queueMs ?? 0);
              return waits.reduce((a, b) => a + b, 0) / Math.max(1, waits.length);
            })),
          },
        };
        console.log(JSON.stringify(row));
        out.push(row);
      } finally {
        clearInterval(pinger);
        client.close();
      }
    }
  } finally {
    await server.stop();
  }
  return { label, env, levels: out };
}

async function main() {
  Deno.chdir(ROOT);
  await Deno.mkdir("bench", { recursive: true });
  const { tinyRandom } = await makeWhisperFixtures(`${ROOT}models`);
  const wav = await speak(PHRASE);
  const pcm = float32ToPcm(resample(wav.samples, wav.rate, SPEECH_RATE));
  const whisper = {
    PIPELINE: "full",
    STT_MODEL_DIR: tinyRandom,
    STT_ENCODER_FRAMES: "fit",
    STT_MAX_TOKENS: String(BENCH_MAX_TOKENS),
  };
  const configurations = [
    await measure("PIPELINE=echo", { PIPELINE: "echo" }, pcm),
    await measure(
      "full, whisper-tiny-shaped (random weights), fit window, 16 tokens, batched STT",
      {
        ...whisper,
      },
      pcm,
    ),
    await measure("the same, STT one utterance at a time (STT_BATCH=1)", {
      ...whisper,
      STT_BATCH: "1",
    }, pcm),
  ];
  console.log("\n== STT batch axis (whisper-tiny-random, 2 threads)");
  const batching = [];
  for (const frames of [3000, 556]) {
    const rows = await measureSttBatching(tinyRandom, { frames, runs: ARGS.quick ? 1 : 3 });
    for (const row of rows) console.log(JSON.stringify(row));
    batching.push(...rows);
  }
  const report = {
    utterance_s: round(pcm.length / 2 / SPEECH_RATE, 2),
    cores: navigator.hardwareConcurrency,
    configurations,
    stt_batching: batching,
  };
  await Deno.writeTextFile("bench/capacity.json", JSON.stringify(report, null, 2) + "\n");
  console.log("\nwrote bench/capacity.json");
}

if (import.meta.main) await main();
