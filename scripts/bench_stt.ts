/**
 * STT benchmark: time to transcribe a 3 s utterance with the whisper-tiny-shaped model of random
 * weights (scripts/make_whisper_models.ts; its text is meaningless, its FLOPs are whisper-tiny's),
 * median over repeated runs, split into front end, encoder, the decoder's first step (prompt +
 * cross-attention keys/values) and each further token. Writes bench/stt.json.
 *
 * Two encoder windows are measured: the standard 30 s window (what the onnx-community export
 * accepts as published) and "fit" (the utterance + a 2.56 s margin, whisper.cpp's audio_ctx
 * trick), for which loadWhisper slices the export's positional embeddings at load time
 * (encoder_window.ts); the generated model is shaped like the standard export, so both rows take
 * the real code path.
 *
 * `deno task bench:stt [--runs N]`
 */

import { join } from "node:path";
import { makeWhisperFixtures } from "./make_whisper_models.ts";
import { loadWhisper, type WhisperOptions } from "../server/stt/whisper.ts";
import type { SpeechToText, Transcript } from "../server/stt/types.ts";
import { resample, SPEECH_RATE } from "../shared/audio.ts";
import { type Cli, parseCli, positiveInt, speak } from "./lib/mod.ts";
import { median, percentile, round } from "./bench_stats.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** The reference utterance length. */
const UTTERANCE_SECONDS = 3;
/** Tokens decoded per run: a 3 s command ("set a timer for ten minutes") is 6–10 tokens. */
const TOKENS = 10;
/** Runs before measuring: the first runs allocate onnxruntime's arenas. */
const WARMUP_RUNS = 2;
const DEFAULT_RUNS = 15;

interface Row {
  total_ms: number;
  frontend_ms: number;
  encoder_ms: number;
  decoder_ms: number;
  tokens: number;
}

async function utterance(): Promise<Float32Array> {
  const out = new Float32Array(UTTERANCE_SECONDS * SPEECH_RATE);
  try {
    const wav = await speak("Set a timer for ten minutes, please.");
    out.set(resample(wav.samples, wav.rate, SPEECH_RATE).subarray(0, out.length));
    return out;
  } catch {
    // espeak-ng missing: any audible signal times the same.
  }
  for (let i = 0; i < out.length; i++) out[i] = 0.3 * Math.sin(i * 0.05) * Math.sin(i * 0.0007);
  return out;
}

async function measure(stt: SpeechToText, audio: Float32Array, runs: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (let i = 0; i < WARMUP_RUNS + runs; i++) {
    const started = performance.now();
    const { timings }: Transcript = await stt.transcribe(audio);
    const total = performance.now() - started;
    if (i >= WARMUP_RUNS) rows.push({ total_ms: total, ...timings });
  }
  return rows;
}

function summarize(rows: Row[]) {
  const pick = (key: keyof Row) => rows.map((r) => r[key]);
  const oneDecimal = (x: number) => round(x, 1);
  return {
    median: {
      total_ms: oneDecimal(median(pick("total_ms"))),
      frontend_ms: oneDecimal(median(pick("frontend_ms"))),
      encoder_ms: oneDecimal(median(pick("encoder_ms"))),
      decoder_ms: oneDecimal(median(pick("decoder_ms"))),
      tokens: median(pick("tokens")),
    },
    p90_total_ms: oneDecimal(percentile(pick("total_ms"), 90)),
    /** The least-disturbed run of each part: what the code costs when nothing else runs. */
    min: {
      total_ms: oneDecimal(Math.min(...pick("total_ms"))),
      frontend_ms: oneDecimal(Math.min(...pick("frontend_ms"))),
      encoder_ms: oneDecimal(Math.min(...pick("encoder_ms"))),
      decoder_ms: oneDecimal(Math.min(...pick("decoder_ms"))),
    },
  };
}

/** 1-minute load average: other processes on these 2 cores inflate every number. */
async function loadAverage(): Promise<number | null> {
  try {
    return Number((await Deno.readTextFile("/proc/loadavg")).split(" ")[0]);
  } catch {
    return null;
  }
}

async function cpuModel(): Promise<string> {
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    return info.match(/model name\s*:\s*(.+)/)?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
}

if (import.meta.main) {
  const cli: Cli = { command: "bench:stt", usage: "usage: deno task bench:stt [--runs N]" };
  const runs = positiveInt(
    cli,
    "runs",
    parseCli(cli, { runs: { type: "string" } }).runs,
    DEFAULT_RUNS,
  );
  const { tinyRandom } = await makeWhisperFixtures(join(ROOT, "models"), { log: console.log });
  const audio = await utterance();
  const loadBefore = await loadAverage();
  const windows: { name: string; encoderFrames: WhisperOptions["encoderFrames"] }[] = [
    { name: "30 s window (standard export)", encoderFrames: 3000 },
    { name: "fit window (utterance + 2.56 s; positions sliced at load)", encoderFrames: "fit" },
  ];
  const results = [];
  for (const { name, encoderFrames } of windows) {
    const loadStarted = performance.now();
    const full = await loadWhisper(tinyRandom, { encoderFrames, maxTokens: TOKENS });
    const loadMs = performance.now() - loadStarted;
    const oneToken = await loadWhisper(tinyRandom, { encoderFrames, maxTokens: 1 });
    const decoded = summarize(await measure(full, audio, runs));
    const firstStep = summarize(await measure(oneToken, audio, runs)).median.decoder_ms;
    const perToken = (decoded.median.decoder_ms - firstStep) / (decoded.median.tokens - 1);
    const result = {
      name,
      encoder_frames: encoderFrames,
      load_ms: Math.round(loadMs),
      ...decoded,
      decoder_first_step_ms: firstStep,
      decoder_per_token_ms: round(perToken),
    };
    results.push(result);
    const m = decoded.median;
    console.log(
      `${name}: total ${m.total_ms} ms (p90 ${decoded.p90_total_ms}) = front end ${m.frontend_ms}` +
        ` + encoder ${m.encoder_ms} + decoder ${m.decoder_ms} (first step ${firstStep}, then ` +
        `${result.decoder_per_token_ms} ms/token × ${m.tokens - 1})`,
    );
  }
  const report = {
    what:
      `STT of a ${UTTERANCE_SECONDS} s utterance, ${TOKENS} tokens decoded, median of ${runs} runs`,
    model: "whisper-tiny-random: whisper-tiny.en's architecture and sizes with RANDOM weights " +
      "(meaningless text; timing only)",
    machine: {
      cpu: await cpuModel(),
      cores: navigator.hardwareConcurrency,
      threads: 2,
      load_average_before: loadBefore,
      load_average_after: await loadAverage(),
    },
    date: new Date().toISOString(),
    results,
  };
  await Deno.mkdir(join(ROOT, "bench"), { recursive: true });
  await Deno.writeTextFile(join(ROOT, "bench", "stt.json"), JSON.stringify(report, null, 2) + "\n");
  console.log(`wrote bench/stt.json`);
}
