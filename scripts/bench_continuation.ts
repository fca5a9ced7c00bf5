/**
 * `deno run -A scripts/bench_continuation.ts [--quick]` (issue 9, protocol half): turn-taking
 * with the `eot` fast path and continuation, on the real path: the real server (in this process:
 * full pipeline, built-in assistant, espeak-ng TTS, the whisper-tiny-shaped model of random
 * weights with the fitted encoder window and 16 tokens, in its worker thread), the real gateway
 * process, and a werift device speaking espeak-ng speech over WebRTC on loopback, in three voices.
 *
 * Real Whisper weights cannot be fetched here: each utterance's text is taken from the script
 * that synthesized it (the model still runs on every utterance for its cost) — the report says so
 * beside the numbers. The gateway runs with `GATEWAY_ECHO_GUARD=off` (the device plays nothing
 * into its microphone; the echo guard is measured elsewhere).
 *
 * Reported:
 * - complete commands: first reply p50/p95, from the last speech sample leaving the device to
 *   the first reply packet arriving at it (the speech is trimmed of espeak's trailing silence);
 * - two-part commands with a pause of 300-800 ms at a phrase boundary: false cut-off rate (the
 *   request answered in more than one turn, or the answer's transcript not the whole request).
 */
import { createLogger } from "../shared/log.ts";
import type { DeviceEvent } from "../shared/messages.ts";
import { DevicePeer } from "../device/peer.ts";
import { loadWhisperWorker } from "../server/stt/worker_client.ts";
import type { SpeechToText } from "../server/stt/types.ts";
import { startGatewayProcess } from "./lib/gateway_process.ts";
import { startLoopbackServer } from "./lib/loopback_server.ts";
import { speak } from "./lib/speech.ts";
import { makeWhisperFixtures } from "./make_whisper_models.ts";
import { percentile, round } from "./bench_stats.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const QUICK = Deno.args.includes("--quick");
const VOICES = QUICK ? ["en-us"] : ["en-us", "en-gb", "en-us+f3"];
/** Commands the built-in engine recognizes in full (the `eot` hint is `complete`). */
const COMMANDS = [
  "Turn on the kitchen lights.",
  "Set a timer for five minutes.",
  "What time is it?",
  "Turn off the hall lights.",
  "Set the volume to forty.",
];
/** Two-part commands split at a phrase boundary. */
const TWO_PART: [string, string][] = [
  ["Turn on the kitchen lights", "and set a timer for five minutes."],
  ["Set a timer for", "ten minutes."],
];
const PAUSES_MS = [300, 400, 500, 600, 800];
/** Tokens decoded per utterance with the random model (as `deno task bench`). */
const BENCH_MAX_TOKENS = 16;
/** espeak-ng's trailing silence is below this level. */
const SILENCE_LEVEL = 0.01;
/** A conversation's end to end guard, not a measurement. */
const TURN_TIMEOUT_MS = 30_000;
/** After the answer, time for a second (split) answer to show up. */
const SETTLE_MS = 1200;
/** Whisper's rate. */
const STT_RATE = 16000;
/** Pre-roll the gateway adds before speech, ms (gateway/utterance_segmenter.ts PRE_ROLL_MS). */
const PRE_ROLL_MS = 300;

/** What the STT is to "hear" for the conversation in progress. */
let script: { first: string; whole: string; firstMs: number } = {
  first: "",
  whole: "",
  firstMs: 0,
};

/**
 * The model runs for its cost; the text comes from the script: the first part for audio that
 * ends before the pause is over (the speculation at the pause), else the whole request.
 */
function scriptedStt(model: SpeechToText): SpeechToText {
  return {
    async transcribe(samples, options) {
      // Measured first: the worker takes the samples' buffer.
      const ms = (samples.length / STT_RATE) * 1000;
      const firstOnly = ms < script.firstMs + PRE_ROLL_MS + 250;
      const heard = await model.transcribe(samples, options);
      return { ...heard, text: firstOnly ? script.first : script.whole };
    },
    close: async () => await model.close?.(),
  };
}

/** `samples` without the trailing silence, so the last sample sent is the last speech. */
function trimEnd(samples: Float32Array): Float32Array {
  let end = samples.length;
  while (end > 0 && Math.abs(samples[end - 1]) < SILENCE_LEVEL) end--;
  return samples.subarray(0, end);
}

function trimStart(samples: Float32Array): Float32Array {
  let start = 0;
  while (start < samples.length && Math.abs(samples[start]) < SILENCE_LEVEL) start++;
  return samples.subarray(start);
}

async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + TURN_TIMEOUT_MS;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const { tinyRandom } = await makeWhisperFixtures(`${ROOT}models`);
const model = await loadWhisperWorker(tinyRandom, {
  encoderFrames: "fit",
  maxTokens: BENCH_MAX_TOKENS,
});
const server = await startLoopbackServer({ PIPELINE: "full" }, { stt: scriptedStt(model) });
const { dataDir } = server;
const gateway = await startGatewayProcess({
  MQTT_HOST: "127.0.0.1",
  MQTT_PORT: String(server.mqttPort),
  NAILA_DATA_DIR: dataDir,
  AI_SERVER_HOST: "127.0.0.1",
  AI_SERVER_PORT: String(server.audioPort),
  AUDIO_SAMPLE_RATE: "16000",
  GATEWAY_ECHO_GUARD: "off",
});
const device = new DevicePeer({
  id: "kitchen",
  mqtt: { host: "127.0.0.1", port: server.mqttPort, ...server.login({ device: "kitchen" }) },
  hostAddresses: ["127.0.0.1"],
});
const log = createLogger("bench.continuation", { level: "info" });

/** Speaks `samples`, waits for the answer; returns the events and the first reply latency. */
async function converse(samples: Float32Array, rate: number) {
  const since = device.events.length;
  const replies = device.replies.length;
  await device.speak(samples, rate);
  const lastSpeechAt = performance.now();
  await waitFor(() => device.replies.length > replies, "a reply");
  const firstReplyMs = device.replies[replies].arrivals[0] - lastSpeechAt;
  await waitFor(
    () => device.events.slice(since).some((e) => e.type === "turn"),
    "the turn event",
  );
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  // Listening again after the last answer: its reply has played, the next run cannot barge in.
  const answered = () => device.events.findLastIndex((e) => e.type === "turn");
  await waitFor(
    () =>
      device.events.slice(answered()).some((e) => e.type === "state" && e.state === "listening"),
    "listening",
  );
  return { events: device.events.slice(since), firstReplyMs };
}

const turnsOf = (events: DeviceEvent[]) =>
  events.filter((e) => e.type === "turn") as Extract<DeviceEvent, { type: "turn" }>[];

try {
  await device.connect();
  const latencies: number[] = [];
  const gatewayLatencies: number[] = [];
  for (const voice of VOICES) {
    for (const text of COMMANDS) {
      const speech = await speak(text, { voice });
      script = { first: text, whole: text, firstMs: 1e9 };
      const { events, firstReplyMs } = await converse(trimEnd(speech.samples), speech.rate);
      latencies.push(firstReplyMs);
      const turn = turnsOf(events)[0];
      const packet = turn?.latency_ms?.first_reply_packet_ms;
      if (packet !== undefined) gatewayLatencies.push(packet);
      log.info("complete", {
        voice,
        text,
        first_reply_ms: round(firstReplyMs, 1),
        latency: turn?.latency_ms,
      });
    }
  }
  const splits: Record<number, { runs: number; cutOffs: number }> = {};
  for (const pauseMs of PAUSES_MS) splits[pauseMs] = { runs: 0, cutOffs: 0 };
  for (const voice of VOICES) {
    for (const [first, second] of TWO_PART) {
      const a = trimEnd((await speak(first, { voice })).samples);
      const b = trimStart((await speak(second, { voice })).samples);
      const rate = (await speak(first, { voice })).rate;
      for (const pauseMs of PAUSES_MS) {
        const gap = Math.round((rate * pauseMs) / 1000);
        const samples = new Float32Array(a.length + gap + b.length);
        samples.set(a);
        samples.set(b, a.length + gap);
        const whole = `${first} ${second}`;
        script = { first, whole, firstMs: (a.length / rate) * 1000 };
        const { events } = await converse(trimEnd(samples), rate);
        const turns = turnsOf(events);
        const interrupted = events.filter((e) => e.type === "interrupted").length;
        const cutOff = turns.length !== 1 || turns[0].transcript !== whole || interrupted > 0;
        splits[pauseMs].runs++;
        if (cutOff) splits[pauseMs].cutOffs++;
        log.info("pause", {
          voice,
          whole,
          pause_ms: pauseMs,
          turns: turns.length,
          interrupted,
          transcript: turns.at(-1)?.transcript,
          cut_off: cutOff,
        });
      }
    }
  }
  const report = {
    note: "transcripts from the synthesizing script; whisper-tiny-shaped random-weight model " +
      "(fit window, 16 tokens) run on every utterance for its cost; GATEWAY_ECHO_GUARD=off",
    voices: VOICES,
    complete_commands: {
      runs: latencies.length,
      first_reply_ms_p50: round(percentile(latencies, 50), 1),
      first_reply_ms_p95: round(percentile(latencies, 95), 1),
      gateway_first_reply_packet_ms_p50: round(percentile(gatewayLatencies, 50), 1),
      gateway_first_reply_packet_ms_p95: round(percentile(gatewayLatencies, 95), 1),
    },
    false_cut_off: Object.fromEntries(
      Object.entries(splits).map((
        [pause, { runs, cutOffs }],
      ) => [`${pause}ms`, { runs, cut_offs: cutOffs, rate: round(cutOffs / runs, 3) }]),
    ),
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  await device.close().catch(() => {});
  await gateway.stop();
  await server.close();
  model.close?.();
}
