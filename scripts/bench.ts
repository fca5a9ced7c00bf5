/**
 * `deno task bench`: the numbers a reader can trust, in bench/report.json and bench/report.md.
 *
 * 1. First-reply latency end to end: real server and gateway processes, a werift device speaking
 *    espeak-ng utterances over WebRTC; from the last speech sample the device sent to the first
 *    reply packet it received, p50/p95 over ≥ 20 turns, with the per-stage breakdown the gateway
 *    reports on each turn — for PIPELINE=echo and for the full pipeline with the
 *    whisper-tiny-shaped model (random weights: its words are meaningless, its cost is real).
 * 2. The component benchmarks, each its own script and JSON file: the gateway (added latency, CPU
 *    and RSS per device at 1/5/10/20 devices, Silero and Opus timings), the server (end of
 *    utterance to first reply byte) and STT (3 s utterance, where the time goes).
 *
 * Usage: deno task bench [--quick] [--e2e-only]   (--quick: fewer turns and levels, a smoke run)
 */
import { DevicePeer } from "../device/peer.ts";
import { voicedEndMs } from "../shared/audio.ts";
import { makeWhisperFixtures } from "./make_whisper_models.ts";
import { startGatewayProcess } from "../tests/helpers/gateway_process.ts";
import { startServerProcess } from "../tests/helpers/server_process.ts";
import { speak } from "../tests/helpers/speech.ts";
import { percentile, round } from "./bench_stats.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const QUICK = Deno.args.includes("--quick");
/** Only the end-to-end runs; keeps the component JSON files from their last run. */
const E2E_ONLY = Deno.args.includes("--e2e-only");
/** Measured turns per pipeline (the issue asks for at least 20), after warm-up turns. */
const TURNS = QUICK ? 6 : 24;
const WARMUP_TURNS = 2;
/** Spec default silence window: AUDIO_SILENCE_FRAMES 15 × 20 ms. */
const SILENCE_MS = 300;
/** A reply counts as lost after this long. */
const REPLY_TIMEOUT_MS = 20_000;
/** Quiet between turns so one reply ends before the next question. */
const PAUSE_MS = 400;
/** Random weights never predict end-of-text: cap the decoder near a short command's length. */
const BENCH_MAX_TOKENS = 16;
const PHRASES = [
  "What time is it?",
  "Turn on the kitchen lights.",
  "What is the date today?",
  "Set a timer for five minutes.",
];

interface PipelineRun {
  label: string;
  env: Record<string, string>;
}

interface E2eResult {
  label: string;
  turns: number;
  lost: number;
  first_reply_ms: { p50: number; p95: number; min: number; max: number };
  /** Median of each stage the gateway reported on its turn events. */
  stages_median_ms: Record<string, number>;
}

async function measurePipeline(
  run: PipelineRun,
  phrases: { samples: Float32Array; rate: number }[],
) {
  const server = await startServerProcess({ LOG_LEVEL: "info", ...run.env });
  let gateway: Awaited<ReturnType<typeof startGatewayProcess>> | undefined;
  let device: DevicePeer | undefined;
  const latencies: number[] = [];
  const stages: Record<string, number[]> = {};
  let lost = 0;
  try {
    gateway = await startGatewayProcess({
      MQTT_HOST: "127.0.0.1",
      MQTT_PORT: String(server.mqttPort),
      AI_SERVER_HOST: "127.0.0.1",
      AI_SERVER_PORT: String(server.audioPort),
    });
    device = new DevicePeer({
      id: "bench_device",
      mqtt: { host: "127.0.0.1", port: server.mqttPort },
      hostAddresses: ["127.0.0.1"],
      idleNoise: 0.003,
    });
    await device.connect();
    for (let turn = 0; turn < WARMUP_TURNS + TURNS; turn++) {
      const phrase = phrases[turn % phrases.length];
      const before = device.replies.length;
      const eventsBefore = device.events.length;
      const spoken = await device.speak(phrase.samples, phrase.rate);
      const lastSpeechAt = spoken.firstPacketAt + voicedEndMs(phrase.samples, phrase.rate);
      const reply = await device.nextReply(REPLY_TIMEOUT_MS, before).catch(() => undefined);
      const event = await device.waitForEvent(
        (e) => e.type === "turn" && device!.events.indexOf(e) >= eventsBefore,
        2000,
      ).catch(() => undefined);
      if (turn < WARMUP_TURNS) continue;
      if (!reply) {
        lost++;
        continue;
      }
      latencies.push(reply.startedAt - lastSpeechAt);
      if (event?.type === "turn") {
        for (const [key, value] of Object.entries(event.latency_ms ?? {})) {
          (stages[key] ??= []).push(value);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
    }
  } finally {
    await device?.close();
    await gateway?.stop();
    await server.stop();
  }
  const result: E2eResult = {
    label: run.label,
    turns: latencies.length,
    lost,
    first_reply_ms: {
      p50: round(percentile(latencies, 50), 1),
      p95: round(percentile(latencies, 95), 1),
      min: round(Math.min(...latencies), 1),
      max: round(Math.max(...latencies), 1),
    },
    stages_median_ms: Object.fromEntries(
      Object.entries(stages).map(([key, values]) => [key, round(percentile(values, 50), 1)]),
    ),
  };
  console.log(`e2e ${run.label}: ${JSON.stringify(result)}`);
  return result;
}

async function runScript(script: string): Promise<unknown> {
  const name = script.replace("bench_", "");
  if (E2E_ONLY) {
    return JSON.parse(await Deno.readTextFile(`${ROOT}bench/${name}.json`).catch(() => "null"));
  }
  console.log(`\n== ${script}`);
  const status = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `scripts/${script}.ts`, ...(QUICK ? ["--quick"] : [])],
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) return { error: `${script} exited with ${status.code}` };
  return JSON.parse(await Deno.readTextFile(`${ROOT}bench/${name}.json`));
}

async function machine() {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  return {
    cpu: cpuinfo.match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown",
    cores: navigator.hardwareConcurrency,
    deno: Deno.version.deno,
    date: new Date().toISOString(),
  };
}

function markdown(report: Record<string, unknown>): string {
  const e2e = report.e2e as E2eResult[];
  const lines = [
    "# NAILA benchmark report",
    "",
    `Machine: ${
      JSON.stringify(report.machine)
    }. Medians and percentiles over repeated runs on a shared, noisy`,
    "machine; compare ratios rather than single numbers.",
    "",
    "## First reply: last speech sample sent → first reply packet received (device side)",
    "",
    `Includes the ${SILENCE_MS} ms silence window that decides the user has stopped.`,
    "",
    "| pipeline | turns | lost | p50 ms | p95 ms | stages (median ms, as the gateway reports them) |",
    "|---|---|---|---|---|---|",
    ...e2e.map((r) =>
      `| ${r.label} | ${r.turns} | ${r.lost} | ${r.first_reply_ms.p50} | ${r.first_reply_ms.p95} | ${
        Object.entries(r.stages_median_ms).map(([k, v]) => `${k} ${v}`).join(", ")
      } |`
    ),
    "",
    "Target (spec 16.1): p50 ≤ 500 ms with the full pipeline and a whisper-tiny-sized model.",
    "",
  ];
  for (const part of ["gateway", "server", "stt"]) {
    lines.push(`## ${part}`, "", "```json", JSON.stringify(report[part], null, 2), "```", "");
  }
  return lines.join("\n");
}

async function main() {
  Deno.chdir(ROOT);
  await Deno.mkdir("bench", { recursive: true });
  const { tinyRandom } = await makeWhisperFixtures(`${ROOT}models`);
  const phrases = await Promise.all(PHRASES.map((text) => speak(text)));
  const e2e = [];
  const runs: PipelineRun[] = [
    { label: "PIPELINE=echo", env: { PIPELINE: "echo" } },
    {
      label: "full: whisper-tiny-shaped (random weights) + built-in assistant + espeak-ng",
      env: {
        PIPELINE: "full",
        STT_MODEL_DIR: tinyRandom,
        STT_ENCODER_FRAMES: "fit",
        STT_MAX_TOKENS: String(BENCH_MAX_TOKENS),
      },
    },
  ];
  for (const run of runs) e2e.push(await measurePipeline(run, phrases));
  const report = {
    machine: await machine(),
    e2e,
    gateway: await runScript("bench_gateway"),
    server: await runScript("bench_server"),
    stt: await runScript("bench_stt"),
  };
  await Deno.writeTextFile("bench/report.json", JSON.stringify(report, null, 2) + "\n");
  await Deno.writeTextFile("bench/report.md", markdown(report));
  console.log("\nwrote bench/report.json and bench/report.md");
}

if (import.meta.main) await main();
