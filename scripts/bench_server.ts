/**
 * `deno task bench:server`: how long the AI server takes from the end of an utterance on the
 * socket (the v2 `end` message leaving the client) to the first byte of reply audio arriving,
 * measured on the real server process over loopback, median over many turns:
 *
 * - `echo`: PIPELINE=echo (transport + queue + framing only; v1 round trip too).
 * - `full_fixture`: PIPELINE=full with the generated Whisper fixture (STT ≈ free), the built-in
 *   assistant and espeak-ng — the latency the server adds around STT.
 * - `full_tiny_random`: the same with the full-size whisper-tiny-shaped random-weight model when
 *   `models/whisper-tiny-random/` exists, so STT costs what real whisper-tiny costs. Its text is
 *   meaningless, so the assistant answers with its fallback sentence; it rarely ends, so it
 *   decodes up to 128 tokens. `full_tiny_random_fit_16_tokens` caps that at 16 tokens (a short
 *   command's length) with the encoder window fitted to the utterance.
 *
 * Writes bench/server.json. Usage: `deno task bench:server [--turns 25]`.
 */
import { existsSync } from "node:fs";
import { float32ToPcm, resample, SPEECH_RATE } from "../shared/audio.ts";
import {
  type Cli,
  parseCli,
  parseV1Responses,
  positiveInt,
  readUntil,
  sendTurn,
  speak,
  startServerProcess,
  v1Request,
  V2Client,
} from "./lib/mod.ts";
import { median, percentile, round } from "./bench_stats.ts";

/** Turns per configuration (the brief asks for at least 20). */
const DEFAULT_TURNS = 25;
/** Unmeasured turns first: module compilation, onnxruntime session warm-up, page cache. */
const WARMUP_TURNS = 3;
/** A turn that takes longer than this is a failure, not a data point. */
const TURN_TIMEOUT_MS = 30_000;

const root = new URL("../", import.meta.url).pathname;
const CLI: Cli = { command: "bench:server", usage: "usage: deno task bench:server [--turns N]" };
const turns = positiveInt(
  CLI,
  "turns",
  parseCli(CLI, { turns: { type: "string" } }).turns,
  DEFAULT_TURNS,
);

interface Summary {
  n: number;
  median_ms: number;
  p90_ms: number;
  min_ms: number;
  max_ms: number;
}

function summarize(values: number[]): Summary {
  return {
    n: values.length,
    median_ms: round(median(values)),
    p90_ms: round(percentile(values, 90)),
    min_ms: round(Math.min(...values)),
    max_ms: round(Math.max(...values)),
  };
}

/** Runs `turns` v2 turns; returns end→first-audio times and the medians of the server stages. */
async function benchV2(
  env: Record<string, string>,
  utterance: Uint8Array,
): Promise<
  { first_audio: Summary; end_to_end: Summary; stages_median_ms: Record<string, number> }
> {
  const server = await startServerProcess(env);
  const firstAudio: number[] = [];
  const complete: number[] = [];
  const stages: Record<string, number[]> = {};
  try {
    const client = await V2Client.connect(server.audioPort, undefined, server.secret);
    try {
      for (let i = 0; i < WARMUP_TURNS + turns; i++) {
        const turn = `b${i}`;
        const start = client.messages.length;
        // start + audio chunks + end; the clock starts when the `end` write has returned.
        await sendTurn(client, { turn, rate: SPEECH_RATE, pcm: utterance });
        const sentAt = performance.now();
        await client.next((m) => m.type === "audio" && m.turn === turn, TURN_TIMEOUT_MS);
        const audioIndex = client.messages.findIndex((m, k) =>
          k >= start && m.type === "audio" && m.turn === turn
        );
        const end = await client.next((m) => m.type === "end" && m.turn === turn, TURN_TIMEOUT_MS);
        const endIndex = client.messages.indexOf(end);
        if (i < WARMUP_TURNS) continue;
        firstAudio.push(client.receivedAt[audioIndex] - sentAt);
        complete.push(client.receivedAt[endIndex] - sentAt);
        for (const [name, ms] of Object.entries(end.type === "end" ? end.stages ?? {} : {})) {
          (stages[name] ??= []).push(ms);
        }
      }
    } finally {
      client.close();
    }
  } finally {
    await server.stop();
  }
  return {
    first_audio: summarize(firstAudio),
    end_to_end: summarize(complete),
    stages_median_ms: Object.fromEntries(
      Object.entries(stages).map(([name, values]) => [name, summarize(values).median_ms]),
    ),
  };
}

/** v1 (echo): request fully written → response fully read. */
async function benchV1Echo(utterance: Uint8Array): Promise<Summary> {
  const server = await startServerProcess({ PIPELINE: "echo", AUDIO_SOCKET_ALLOW: "127.0.0.1" });
  const times: number[] = [];
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.audioPort });
    conn.setNoDelay(true);
    try {
      for (let i = 0; i < WARMUP_TURNS + turns; i++) {
        await conn.write(
          v1Request({ device: "bench", rate: SPEECH_RATE, request: `r${i}`, pcm: utterance }),
        );
        const sentAt = performance.now();
        await readUntil(conn, (b) => parseV1Responses(b).length === 1, TURN_TIMEOUT_MS);
        if (i >= WARMUP_TURNS) times.push(performance.now() - sentAt);
      }
    } finally {
      conn.close();
    }
  } finally {
    await server.stop();
  }
  return summarize(times);
}

const wav = await speak("What time is it?");
const utterance = float32ToPcm(resample(wav.samples, wav.rate, SPEECH_RATE));
const utteranceSeconds = utterance.length / 2 / SPEECH_RATE;
console.error(
  `utterance: "What time is it?" ${utteranceSeconds.toFixed(2)} s at 16 kHz; ${turns} turns each`,
);

const results: Record<string, unknown> = {};
console.error("echo (v2)...");
results.echo = await benchV2({ PIPELINE: "echo" }, utterance);
console.error("echo (v1 round trip)...");
results.echo_v1_round_trip = await benchV1Echo(utterance);
const fixture = `${root}models/whisper-fixture`;
if (existsSync(`${fixture}/onnx`)) {
  console.error("full, Whisper fixture + built-in assistant + espeak-ng...");
  results.full_fixture = await benchV2({ PIPELINE: "full", STT_MODEL_DIR: fixture }, utterance);
} else {
  results.full_fixture = { skipped: "models/whisper-fixture missing (deno task setup makes it)" };
}
const random = `${root}models/whisper-tiny-random`;
if (existsSync(`${random}/onnx`)) {
  console.error("full, whisper-tiny-shaped random weights + built-in assistant + espeak-ng...");
  results.full_tiny_random = await benchV2({ PIPELINE: "full", STT_MODEL_DIR: random }, utterance);
  // Random weights rarely emit <|endoftext|>, so the run above decodes up to 128 tokens; a real
  // "what time is it" is ~6 tokens. Capping at 16 and fitting the encoder window to the
  // utterance estimates what real whisper-tiny costs with the server's fastest settings.
  console.error("full, whisper-tiny-shaped random weights, STT_ENCODER_FRAMES=fit, 16 tokens...");
  results.full_tiny_random_fit_16_tokens = await benchV2({
    PIPELINE: "full",
    STT_MODEL_DIR: random,
    STT_ENCODER_FRAMES: "fit",
    STT_MAX_TOKENS: "16",
  }, utterance);
} else {
  results.full_tiny_random = { skipped: "models/whisper-tiny-random missing" };
}

const report = {
  measured_at: new Date().toISOString(),
  what: "ms from the v2 `end` leaving the client to the first reply `audio` message decoded by " +
    "the client (first_audio), and to the reply's `end` (end_to_end), real server process over " +
    "loopback; stages_median_ms are the server's own stage durations from the `end` message",
  machine: {
    cpus: navigator.hardwareConcurrency,
    deno: Deno.version.deno,
    os: `${Deno.build.os}-${Deno.build.arch}`,
  },
  utterance: { text: "What time is it?", seconds: round(utteranceSeconds) },
  warmup_turns: WARMUP_TURNS,
  results,
};
await Deno.mkdir(`${root}bench`, { recursive: true });
await Deno.writeTextFile(`${root}bench/server.json`, JSON.stringify(report, null, 2) + "\n");
console.log(JSON.stringify(report, null, 2));
