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
import { connectMqtt } from "../shared/mqtt.ts";
import type { DeviceEvent } from "../shared/messages.ts";
import { DevicePeer } from "../device/peer.ts";
import { loadWhisperWorker } from "../server/stt/worker_client.ts";
import type { SpeechToText } from "../server/stt/types.ts";
import { type LogLine, startGatewayProcess } from "./lib/gateway_process.ts";
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
/** Gateway metrics period: the receiver's counters are read after each conversation. */
const METRICS_INTERVAL_MS = 250;
/**
 * A device whose microphone fell this far behind real time within one conversation (this
 * process could not run its 20 ms clock: the machine is overloaded) does not behave like a real
 * one, whose audio clock never waits. Its microphone clock re-anchors after a stall instead of
 * sending the backlog (shared/media/frame_clock.ts), so its delay only grows; once the gateway
 * hears it more than AUDIO_STALL_HOLD_MS (1 s) behind, it feeds silence and drops the late
 * packets (as for a stalled device), which cuts every request. Such runs are reported apart.
 */
const DEVICE_LATE_MS = 100;

/** What the STT is to "hear" for the conversation in progress. */
let script: { first: string; whole: string; firstMs: number } = {
  first: "",
  whole: "",
  firstMs: 0,
};

/** One STT call of the conversation in progress: wall-clock times (Date.now()), audio length. */
interface SttCall {
  at: number;
  doneAt: number;
  audioMs: number;
  text: string;
}
let sttCalls: SttCall[] = [];

/**
 * The model runs for its cost; the text comes from the script: the first part for audio that
 * ends before the pause is over (the speculation at the pause), else the whole request.
 */
function scriptedStt(model: SpeechToText): SpeechToText {
  return {
    async transcribe(samples, options) {
      // Measured first: the worker takes the samples' buffer.
      const at = Date.now();
      const ms = (samples.length / STT_RATE) * 1000;
      const firstOnly = ms < script.firstMs + PRE_ROLL_MS + 250;
      const heard = await model.transcribe(samples, options);
      const text = firstOnly ? script.first : script.whole;
      sttCalls.push({ at, doneAt: Date.now(), audioMs: Math.round(ms), text });
      return { ...heard, text };
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
  // The conversation's story (utterance started/ended) for the report of a cut-off.
  LOG_LEVEL: "debug",
  GATEWAY_METRICS_INTERVAL_MS: String(METRICS_INTERVAL_MS),
});
/** The gateway's counters for the device: packets dropped as late, stalls, silence fed. */
let receiver = { late: 0, stalls: 0, silence_ms: 0 };
const mqtt = await connectMqtt({
  embedded: false,
  host: "127.0.0.1",
  port: server.mqttPort,
  ...server.login("server"),
}, { clientId: `bench-continuation-${crypto.randomUUID().slice(0, 8)}` });
mqtt.onMessage((topic, payload) => {
  if (topic.kind !== "gateway_metrics") return;
  const kitchen = JSON.parse(payload).devices?.kitchen;
  if (kitchen) {
    receiver = { late: kitchen.late, stalls: kitchen.stalls, silence_ms: kitchen.silence_ms };
  }
});
await mqtt.subscribe("naila/gateway/metrics");
const device = new DevicePeer({
  id: "kitchen",
  mqtt: { host: "127.0.0.1", port: server.mqttPort, ...server.login({ device: "kitchen" }) },
  hostAddresses: ["127.0.0.1"],
});
const log = createLogger("bench.continuation", { level: "info" });

/** What happened in one conversation, ms from its first speech packet (wall clock). */
function timeline(
  startedAt: number,
  events: DeviceEvent[],
  logs: LogLine[],
  stt: SttCall[],
): string[] {
  const rows: [number, string][] = [];
  const ms = (iso: string | undefined) => (iso ? Date.parse(iso) - startedAt : NaN);
  for (const e of events) {
    const what = e.type === "state" ? `state ${e.state}` : e.type;
    rows.push([ms(e.timestamp), `event ${what} ${"turn" in e ? e.turn ?? "" : ""}`.trim()]);
  }
  for (const line of logs) {
    if (!GATEWAY_MESSAGES.has(line.msg)) continue;
    rows.push([
      ms((line as { time?: string }).time),
      `gateway ${line.msg} ${JSON.stringify(line.fields ?? {})}`,
    ]);
  }
  for (const call of stt) {
    rows.push([
      call.at - startedAt,
      `stt ${call.audioMs} ms of audio → "${call.text}" in ${call.doneAt - call.at} ms`,
    ]);
  }
  return rows.sort((x, y) => x[0] - y[0]).map(([t, what]) => `${Math.round(t)} ${what}`);
}

/** Gateway log messages that tell a conversation's story (LOG_LEVEL=debug). */
const GATEWAY_MESSAGES = new Set([
  "utterance started",
  "utterance ended",
  "request continued",
  "barge-in",
  "turn failed",
  "replaying turns",
]);

/**
 * Speaks `samples` and waits until the conversation is over: the device is listening again and
 * no event came for {@link SETTLE_MS} (longer than the continuation grace) (a continuation or a second answer would have shown by
 * then). Returns the events, the first reply latency (last speech packet sent → first reply
 * packet received) and the timeline for a report of what went wrong.
 */
async function converse(samples: Float32Array, rate: number) {
  const since = device.events.length;
  const logsSince = gateway.logs.length;
  const replies = device.replies.length;
  sttCalls = [];
  const before = { ...receiver };
  const spoken = await device.speak(samples, rate);
  // How much longer than the speech itself the device took to send it.
  const micLagMs = spoken.lastPacketAt - spoken.firstPacketAt - (spoken.frames - 1) * 20;
  const startedAt = spoken.lastPacketWallMs - (samples.length / rate) * 1000;
  await waitFor(() => device.replies.length > replies, "a reply");
  const firstReplyMs = device.replies[replies].arrivals[0] - spoken.lastPacketAt;
  await waitFor(
    () => device.events.slice(since).some((e) => e.type === "turn"),
    "the turn event",
  );
  let count = device.events.length;
  let quietSince = performance.now();
  await waitFor(() => {
    if (device.events.length !== count) {
      count = device.events.length;
      quietSince = performance.now();
    }
    // The `turn` event of a reply that drained within the grace comes at its commit, after
    // the device went back to listening.
    const last = device.events.findLast((e) => e.type === "state");
    return last?.type === "state" && last.state === "listening" &&
      performance.now() - quietSince >= SETTLE_MS;
  }, "listening");
  const events = device.events.slice(since);
  // The next metrics carry this conversation's counters.
  await new Promise((resolve) => setTimeout(resolve, 2 * METRICS_INTERVAL_MS));
  return {
    events,
    firstReplyMs,
    micLagMs,
    gateway: {
      late: receiver.late - before.late,
      stalls: receiver.stalls - before.stalls,
      silence_ms: receiver.silence_ms - before.silence_ms,
    },
    story: () => timeline(startedAt, events, gateway.logs.slice(logsSince), sttCalls),
  };
}

/** Turns the user spoke in (a `user_speaking` state names them). */
const spokenTurns = (events: DeviceEvent[]) =>
  new Set(
    events.flatMap((e) =>
      e.type === "state" && e.state === "user_speaking" && e.turn ? [e.turn] : []
    ),
  );

/**
 * The answered turns of the user's speech: `turn` events of turns the user spoke in. A timer set
 * by an earlier conversation (five or ten minutes) may fire during a later one; its announcement
 * is a turn with no speech (`thinking` straight away) and is not an answer to this request.
 */
const turnsOf = (events: DeviceEvent[]) => {
  const spoken = spokenTurns(events);
  return events.filter((e) => e.type === "turn" && spoken.has(e.turn)) as Extract<
    DeviceEvent,
    { type: "turn" }
  >[];
};

/** `/proc/loadavg`'s 1-minute figure (the machine is shared: numbers beside it). */
function load1(): number {
  return round(Deno.loadavg()[0], 1);
}

/**
 * A run counted only when the device kept real time (see {@link DEVICE_LATE_MS}) and the
 * gateway heard its stream whole: no packet dropped as late, no stall, no silence fed.
 */
const onTime = (
  run: { micLagMs: number; gateway: { late: number; stalls: number; silence_ms: number } },
) =>
  run.micLagMs < DEVICE_LATE_MS && run.gateway.late === 0 && run.gateway.stalls === 0 &&
  run.gateway.silence_ms === 0;

try {
  await device.connect();
  // One conversation first, not measured: the JIT compiles the paths a turn takes.
  {
    const warmUp = await speak(COMMANDS[0]);
    script = { first: COMMANDS[0], whole: COMMANDS[0], firstMs: 1e9 };
    await converse(trimEnd(warmUp.samples), warmUp.rate);
  }
  const loads: number[] = [load1()];
  const latencies: number[] = [];
  const gatewayLatencies: number[] = [];
  let lateCommands = 0;
  for (const voice of VOICES) {
    for (const text of COMMANDS) {
      const speech = await speak(text, { voice });
      script = { first: text, whole: text, firstMs: 1e9 };
      const run = await converse(trimEnd(speech.samples), speech.rate);
      loads.push(load1());
      const turn = turnsOf(run.events)[0];
      log.info("complete", {
        voice,
        text,
        first_reply_ms: round(run.firstReplyMs, 1),
        device_mic_lag_ms: round(run.micLagMs, 1),
        gateway: run.gateway,
        latency: turn?.latency_ms,
      });
      if (!onTime(run)) {
        lateCommands++;
        continue;
      }
      latencies.push(run.firstReplyMs);
      const packet = turn?.latency_ms?.first_reply_packet_ms;
      if (packet !== undefined) gatewayLatencies.push(packet);
    }
  }
  const splits: Record<number, { runs: number; cutOffs: number; deviceLate: number }> = {};
  for (const pauseMs of PAUSES_MS) splits[pauseMs] = { runs: 0, cutOffs: 0, deviceLate: 0 };
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
        const run = await converse(trimEnd(samples), rate);
        loads.push(load1());
        const turns = turnsOf(run.events);
        // A barge-in on one of this request's own replies (not on a timer's announcement).
        const own = spokenTurns(run.events);
        const interrupted = run.events.filter((e) =>
          e.type === "interrupted" && own.has(e.turn)
        ).length;
        const cutOff = turns.length !== 1 || turns[0].transcript !== whole || interrupted > 0;
        const counted = onTime(run);
        if (!counted) splits[pauseMs].deviceLate++;
        else {
          splits[pauseMs].runs++;
          if (cutOff) splits[pauseMs].cutOffs++;
        }
        log.info("pause", {
          voice,
          whole,
          pause_ms: pauseMs,
          turns: turns.length,
          interrupted,
          transcript: turns.at(-1)?.transcript,
          cut_off: cutOff,
          device_mic_lag_ms: round(run.micLagMs, 1),
          gateway: run.gateway,
          ...(counted ? {} : { not_counted: "the device fell behind real time (load)" }),
          ...(cutOff ? { story: run.story() } : {}),
        });
      }
    }
  }
  const report = {
    note: "transcripts from the synthesizing script; whisper-tiny-shaped random-weight model " +
      "(fit window, 16 tokens) run on every utterance for its cost; GATEWAY_ECHO_GUARD=off",
    machine: `${navigator.hardwareConcurrency} cores, load average (1 min) during the run ` +
      `min ${Math.min(...loads)} median ${round(percentile(loads, 50), 1)} max ${
        Math.max(...loads)
      }`,
    not_counted: `runs where the device (this process) sent its speech ${DEVICE_LATE_MS} ms or ` +
      "more slower than real time, or the gateway dropped its packets as late or fed silence " +
      "for a stall: the machine was overloaded (a real device's audio clock does not wait)",
    voices: VOICES,
    complete_commands: {
      runs: latencies.length,
      not_counted: lateCommands,
      first_reply_ms_p50: round(percentile(latencies, 50), 1),
      first_reply_ms_p95: round(percentile(latencies, 95), 1),
      gateway_first_reply_packet_ms_p50: round(percentile(gatewayLatencies, 50), 1),
      gateway_first_reply_packet_ms_p95: round(percentile(gatewayLatencies, 95), 1),
    },
    false_cut_off: Object.fromEntries(
      Object.entries(splits).map(([pause, { runs, cutOffs, deviceLate }]) => [
        `${pause}ms`,
        {
          runs,
          cut_offs: cutOffs,
          rate: runs > 0 ? round(cutOffs / runs, 3) : null,
          not_counted: deviceLate,
        },
      ]),
    ),
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  await device.close().catch(() => {});
  await mqtt.close().catch(() => {});
  await gateway.stop();
  await server.close();
  model.close?.();
}
