/**
 * Gateway benchmark (`deno task bench:gateway`, not a test): the real gateway process against a
 * real mosquitto, an AI-server double and werift device peers on loopback, measuring what issue
 * #3 budgets:
 *
 * - **added latency**: from the device sending its last speech packet to the utterance's `end`
 *   arriving on the AI server's TCP socket, minus the configured silence window
 *   (AUDIO_SILENCE_FRAMES × 20 ms), p50/p99, with and without packet loss, with one device and
 *   with many listening;
 * - **CPU** (% of one core, from /proc/<pid>/stat) and **RSS** of the gateway process, per device,
 *   at 1/5/10/20 devices while they listen (mic open, room noise) and in full duplex (a reply
 *   streaming to every device while its mic keeps sending);
 * - **capacity**: full-duplex devices added in steps until the gateway starts losing incoming
 *   packets, delivering fewer reply frames than real time, or sending them late (its playback
 *   clock's own lateness, from `naila/gateway/metrics`);
 * - **Silero** time per window and **Opus** encode/decode time per frame, in this process.
 *
 * Writes bench/gateway.json and prints a summary.
 *
 * Usage: deno task bench:gateway [--quick] [--capacity-only] [--capacity-levels=20,30] [--workers=N]
 *   [--deno-flags="--cpu-prof --cpu-prof-dir=/tmp/prof"]
 */
import { DevicePeer } from "../device/peer.ts";
import { resample, SPEECH_RATE } from "../shared/audio.ts";
import { delay } from "../shared/async.ts";
import {
  type Cli,
  parseCli,
  positiveInt,
  speak,
  startAiServerDouble,
  startGatewayProcess,
  startMosquitto,
} from "./lib/mod.ts";
import { percentile, round } from "./bench_stats.ts";
import { opusTimings, sileroTimings } from "./bench_gateway_micro.ts";
import { sampleProcess } from "./bench_process.ts";
import {
  type CapacityLevel,
  capacitySummary,
  gatewayMetrics,
  measureCapacity,
  METRICS_INTERVAL_MS,
} from "./bench_gateway_capacity.ts";

const CLI: Cli = {
  command: "bench:gateway",
  usage:
    "usage: deno task bench:gateway [--quick] [--capacity-only] [--capacity-levels=20,30] [--workers=N] [--deno-flags=...]",
};
const ARGS = parseCli(CLI, {
  /** Fewer levels, shorter windows: a smoke run. */
  quick: { type: "boolean", default: false },
  /** Only the capacity sweep; the other results in bench/gateway.json are kept. */
  "capacity-only": { type: "boolean", default: false },
  /** Full-duplex device counts of the capacity sweep, comma-separated. */
  "capacity-levels": { type: "string" },
  /** GATEWAY_WORKERS of the gateway under test (session worker threads; docs/scaling.md). */
  workers: { type: "string", default: "0" },
  /** Extra `deno run` flags of the gateway under test, space-separated (e.g. `--cpu-prof`). */
  "deno-flags": { type: "string" },
});
const QUICK = ARGS.quick;
const CAPACITY_ONLY = ARGS["capacity-only"];
/** Device counts of the issue's budget table. */
const LEVELS = QUICK ? [1, 5] : [1, 5, 10, 20];
/** CPU/RSS sampling window per level. */
const WINDOW_MS = QUICK ? 3000 : 6000;
/** Utterances per latency series. */
const UTTERANCES = QUICK ? 6 : 20;
/** Spec default AUDIO_SILENCE_FRAMES (15 × 20 ms). */
const SILENCE_FRAMES = 15;
const SILENCE_MS = SILENCE_FRAMES * 20;
/** A quiet room: about -50 dBFS of noise on every idle mic. */
const ROOM_NOISE_RMS = 0.003;
/** A noisier room, about -40 dBFS: above the gateway's -46 dBFS idle gate (audio_input.ts). */
const NOISY_ROOM_RMS = 0.01;
/** Packet loss of the lossy latency series. */
const LOSS = 0.05;
/** Full-duplex device counts of the capacity sweep; it stops after two failing in a row. */
const CAPACITY_LEVELS =
  ARGS["capacity-levels"]?.split(",").map((level) =>
    positiveInt(CLI, "capacity-levels", level, 0)
  ) ?? (QUICK ? [5, 10] : [20, 30, 40, 50, 60, 70, 80, 90, 100]);
/**
 * Sampling window of one capacity step: 600 reply frames per device, so the 1 % late-frame
 * criterion is not decided by two or three frames behind one garbage collection.
 */
const CAPACITY_WINDOW_MS = QUICK ? 3000 : 12_000;
/** bench/gateway.json key of the sweep: the main thread's and the session workers' kept apart. */
const CAPACITY_KEY = Number(ARGS.workers) > 0 ? "capacity_session_workers" : "capacity";
const ROOT = new URL("../", import.meta.url).pathname;
/** The full-duplex reply repeats the answer this often (~20 s): longer than either window. */
const LONG_REPEATS = 5;

/** Trims leading/trailing near-silence so "the last speech packet" is really speech. */
function trim(samples: Float32Array, threshold = 0.01): Float32Array {
  let start = 0, end = samples.length;
  while (start < end && Math.abs(samples[start]) < threshold) start++;
  while (end > start && Math.abs(samples[end - 1]) < threshold) end--;
  return samples.slice(start, end);
}

async function main() {
  const question = await speak("Turn on the lights in the kitchen, please.");
  const speech = trim(question.samples);
  const speech48k = resample(speech, question.rate, 48000);
  const speech16k = resample(speech, question.rate, SPEECH_RATE);
  const answer = await speak(
    "Okay, the kitchen lights are on now. Anything else I can do for you?",
  );
  const answer24k = resample(answer.samples, answer.rate, 24000);
  // A long reply for full duplex: streamed in real time like a TTS would.
  const long = new Float32Array(answer24k.length * LONG_REPEATS);
  for (let i = 0; i < LONG_REPEATS; i++) long.set(answer24k, i * answer24k.length);

  console.error("microbenchmarks...");
  const micro = opusTimings(speech16k, speech48k);
  const silero = await sileroTimings(speech16k);

  const broker = await startMosquitto();
  let replyMode: "none" | "short" | "long" = "none";
  const server = await startAiServerDouble({
    protocol: "v2",
    reply: () =>
      replyMode === "none"
        ? undefined
        : replyMode === "short"
        ? { samples: answer24k, rate: 24000 }
        : { samples: long, rate: 24000, chunkMs: 200, paceMs: 190 },
  });
  const gateway = await startGatewayProcess({
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(broker.port),
    AI_SERVER_PORT: String(server.port),
    AUDIO_SAMPLE_RATE: String(SPEECH_RATE),
    AUDIO_SILENCE_FRAMES: String(SILENCE_FRAMES),
    LOG_LEVEL: "warn",
    GATEWAY_METRICS_INTERVAL_MS: String(METRICS_INTERVAL_MS),
    GATEWAY_WORKERS: ARGS.workers,
    // No step may be refused by the gateway's device cap (default 64: a sweep went past it).
    GATEWAY_MAX_DEVICES: String(Math.max(...LEVELS, ...CAPACITY_LEVELS)),
  }, { waitReady: false, denoFlags: ARGS["deno-flags"]?.split(" ").filter((f) => f) });
  const metrics = await gatewayMetrics(broker.port);
  await delay(3000); // startup (module load, Silero session) settles before the baseline
  const devices: DevicePeer[] = [];
  const result: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: { cpus: navigator.hardwareConcurrency, deno: Deno.version.deno },
    settings: {
      workers: Number(ARGS.workers),
      silence_frames: SILENCE_FRAMES,
      sample_rate: SPEECH_RATE,
      room_noise_rms: ROOM_NOISE_RMS,
      window_ms: WINDOW_MS,
      vad: silero ? "silero" : "energy",
    },
    micro: {
      opus_encode_ms_per_frame: round(micro.encodeMs, 3),
      opus_decode_ms_per_frame: round(micro.decodeMs, 3),
      opus_conceal_ms_per_frame: round(micro.concealMs, 3),
      silero_ms_per_window: silero,
    },
  };
  try {
    // Warm-up: the first session compiles werift's code paths; a device that
    // came and went makes the baseline "a running gateway", not "a freshly started process".
    const warm = new DevicePeer({
      id: "warmup",
      mqtt: { host: "127.0.0.1", port: broker.port },
      hostAddresses: ["127.0.0.1"],
    });
    await warm.connect();
    replyMode = "short";
    await warm.speak(speech48k, 48000);
    await warm.nextReply(15_000);
    replyMode = "none";
    await warm.close();
    await delay(2000);
    const baseline = await sampleProcess(gateway.pid, WINDOW_MS);
    result.baseline = { cpu_percent: round(baseline.cpu), rss_mb: round(baseline.rss, 1) };
    console.error(`baseline: cpu ${baseline.cpu.toFixed(2)} %, rss ${baseline.rss.toFixed(1)} MB`);

    const addDevices = async (n: number, prefix = "bench", noise = ROOM_NOISE_RMS) => {
      while (devices.length < n) {
        const d = new DevicePeer({
          id: `${prefix}${devices.length}`,
          mqtt: { host: "127.0.0.1", port: broker.port },
          hostAddresses: ["127.0.0.1"],
          idleNoise: noise,
          decode: false,
        });
        devices.push(d);
        await d.connect();
      }
    };

    // Full duplex: every device speaks once; a long reply streams back in real time while every
    // mic keeps sending. Resolves when the replies are flowing; `finish` waits for their end.
    const startDuplex = async () => {
      replyMode = "long";
      const first = server.turns.length;
      const turnEvents = devices.map((d) => d.events.filter((e) => e.type === "turn").length);
      await Promise.all(devices.map((d) => d.speak(speech48k, 48000)));
      const deadline = performance.now() + 15_000;
      while (
        server.turns.slice(first).filter((t) => t.endedAt).length < devices.length &&
        performance.now() < deadline
      ) {
        await delay(20);
      }
      await delay(1000); // replies are flowing
      const turns = server.turns.slice(first);
      if (turns.filter((t) => t.endedAt).length < devices.length) {
        console.error(
          `no ended turn from: ${
            devices.filter((d) => !turns.some((t) => t.device === d.id && t.endedAt))
              .map((d) => `${d.id} (${d.connectionState}, ${d.packetsSent} sent)`).join(", ")
          }; gateway warnings: ${
            JSON.stringify(gateway.logs.filter((l) => l.level !== "info").slice(-10))
          }`,
        );
      }
      return {
        turns: turns.length,
        finish: async () => {
          replyMode = "none";
          const until = performance.now() + 30_000;
          while (
            devices.some((dev, i) =>
              dev.events.filter((e) => e.type === "turn").length <= turnEvents[i]
            ) && performance.now() < until
          ) {
            await delay(100);
          }
        },
      };
    };

    // The first turn from `index` on that ended: a turn cut off by a dropped connection is sent
    // again (gateway/ai_servers.ts), and the double then lists it twice.
    const endedTurnFrom = async (index: number) => {
      const deadline = performance.now() + 15_000;
      while (performance.now() < deadline) {
        const turn = server.turns.slice(index).find((t) => t.endedAt !== undefined);
        if (turn) return turn;
        await delay(10);
      }
      throw new Error(
        `no ended turn from #${index} within 15 s (${server.turns.length} turns); gateway: ${
          JSON.stringify(gateway.logs.filter((l) => l.level !== "info").slice(-10))
        }`,
      );
    };

    const latencySeries = async (label: string, speaker: DevicePeer, loss: number) => {
      const values: number[] = [];
      const hangover: number[] = [];
      const processing: number[] = [];
      for (let i = 0; i < UTTERANCES; i++) {
        const index = server.turns.length;
        const spoken = await speakWithLoss(speaker, speech48k, loss);
        const turn = await endedTurnFrom(index);
        values.push(turn.endedAt! - spoken.lastPacketAt - SILENCE_MS);
        // Split: how long the VAD still heard speech after the last speech packet (its
        // hangover), and what remains after the silence window: decoding, queueing, the socket.
        hangover.push(turn.endTs! - spoken.lastPacketWallMs);
        processing.push(turn.endedAtWall! - turn.endTs! - SILENCE_MS);
        await delay(200);
      }
      const entry = {
        utterances: values.length,
        p50_ms: round(percentile(values, 50)),
        p99_ms: round(percentile(values, 99)),
        max_ms: round(Math.max(...values)),
        min_ms: round(Math.min(...values)),
        vad_hangover_ms_p50: round(percentile(hangover, 50)),
        vad_hangover_ms_p99: round(percentile(hangover, 99)),
        after_silence_window_ms_p50: round(percentile(processing, 50)),
        after_silence_window_ms_p99: round(percentile(processing, 99)),
      };
      console.error(`latency ${label}: p50 ${entry.p50_ms} ms, p99 ${entry.p99_ms} ms`);
      return entry;
    };

    if (!CAPACITY_ONLY) {
      const latency: Record<string, unknown> = {};
      await addDevices(1);
      latency["1_device"] = await latencySeries("1 device", devices[0], 0);
      latency["1_device_5pct_loss"] = await latencySeries("1 device, 5% loss", devices[0], LOSS);

      const listening: Record<string, unknown> = {};
      const duplex: Record<string, unknown> = {};
      let previous = { n: 0, listen: baseline, duplex: baseline };
      for (const n of LEVELS) {
        await addDevices(n);
        await delay(1000);
        const s = await sampleProcess(gateway.pid, WINDOW_MS);
        listening[n] = {
          cpu_percent: round(s.cpu),
          cpu_percent_per_device: round(s.cpu / n),
          cpu_percent_per_added_device: round((s.cpu - previous.listen.cpu) / (n - previous.n)),
          rss_mb: round(s.rss, 1),
          rss_mb_per_device_above_baseline: round((s.rss - baseline.rss) / n),
          rss_mb_per_added_device: round((s.rss - previous.listen.rss) / (n - previous.n)),
        };
        console.error(`listening ${n}: ${JSON.stringify(listening[n])}`);
        const duplexRound = await startDuplex();
        const d = await sampleProcess(gateway.pid, WINDOW_MS);
        duplex[n] = {
          turns: duplexRound.turns,
          cpu_percent: round(d.cpu),
          cpu_percent_per_device: round(d.cpu / n),
          cpu_percent_per_added_device: round((d.cpu - previous.duplex.cpu) / (n - previous.n)),
          rss_mb: round(d.rss, 1),
          rss_mb_per_device_above_baseline: round((d.rss - baseline.rss) / n),
        };
        console.error(`duplex ${n}: ${JSON.stringify(duplex[n])}`);
        previous = { n, listen: s, duplex: d };
        await duplexRound.finish();
      }
      // The same devices listening with 5 % of their packets lost: concealment on every gap.
      for (const d of devices) d.loss = LOSS;
      await delay(1000);
      const lossy = await sampleProcess(gateway.pid, WINDOW_MS);
      for (const d of devices) d.loss = 0;
      result.listening_with_loss = {
        devices: devices.length,
        loss: LOSS,
        cpu_percent: round(lossy.cpu),
        cpu_percent_per_device: round(lossy.cpu / devices.length),
        rss_mb: round(lossy.rss, 1),
      };
      console.error(`listening with loss: ${JSON.stringify(result.listening_with_loss)}`);
      latency[`1_of_${devices.length}_devices_listening`] = await latencySeries(
        `1 of ${devices.length} listening`,
        devices[0],
        0,
      );
      result.latency = latency;
      result.listening = listening;
      result.full_duplex = duplex;

      // The same number of devices in a noisier room (above the idle gate): every frame is
      // resampled and scored by Silero, the listening cost of a busy home rather than a quiet one.
      const count = devices.length;
      for (const d of devices.splice(0)) await d.close({ announceOffline: true }).catch(() => {});
      await delay(2000);
      await addDevices(count, "noisy", NOISY_ROOM_RMS);
      await delay(1000);
      const noisy = await sampleProcess(gateway.pid, WINDOW_MS);
      result.listening_noisy_room = {
        devices: count,
        room_noise_rms: NOISY_ROOM_RMS,
        cpu_percent: round(noisy.cpu),
        cpu_percent_per_device: round(noisy.cpu / count),
        rss_mb: round(noisy.rss, 1),
      };
      console.error(`listening in a noisy room: ${JSON.stringify(result.listening_noisy_room)}`);
    }

    // Capacity: full-duplex devices in steps until the gateway loses or delays packets.
    for (const d of devices.splice(0)) await d.close({ announceOffline: true }).catch(() => {});
    await delay(2000);
    const levels: CapacityLevel[] = [];
    for (const n of CAPACITY_LEVELS) {
      await addDevices(n, "cap");
      await delay(1000);
      const duplexRound = await startDuplex();
      const sched = schedTimes(gateway.pid);
      const measured = await measureCapacity(devices, metrics, gateway.pid, CAPACITY_WINDOW_MS);
      const waited = schedTimes(gateway.pid);
      // Every device's utterance must also have reached the server.
      const level = {
        ...measured,
        ok: measured.ok && duplexRound.turns >= n,
        turns: duplexRound.turns,
        // How starved the machine left the gateway: of the time its threads were runnable, the
        // share spent waiting for a core (other processes' turn), and the 1-minute load average.
        gateway_runqueue_share: round(
          (waited.waitNs - sched.waitNs) /
            Math.max(1, waited.runNs - sched.runNs + waited.waitNs - sched.waitNs),
          3,
        ),
        load_average: Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]),
      };
      await duplexRound.finish();
      levels.push(level);
      console.error(`capacity ${n}: ${JSON.stringify(level)}`);
      // One failing step can be a noisy moment on a shared machine; two in a row are the limit.
      if (!level.ok && levels.at(-2)?.ok === false) break;
    }
    result[CAPACITY_KEY] = { workers: Number(ARGS.workers), ...capacitySummary(levels) };
  } finally {
    await metrics.close();
    for (const d of devices) await d.close({ announceOffline: false }).catch(() => {});
    await gateway.stop();
    await server.close();
    await broker.stop();
  }
  await Deno.mkdir(`${ROOT}bench`, { recursive: true });
  const path = `${ROOT}bench/gateway.json`;
  // The other mode's capacity sweep (main thread or session workers) is kept from the last file.
  const previous = await Deno.readTextFile(path).then(JSON.parse, () => ({}));
  const written = CAPACITY_ONLY
    ? { ...previous, [CAPACITY_KEY]: result[CAPACITY_KEY] }
    : { ...previous, ...result };
  await Deno.writeTextFile(path, JSON.stringify(written, null, 2) + "\n");
  console.log(JSON.stringify(CAPACITY_ONLY ? result[CAPACITY_KEY] : result, null, 2));
}

/**
 * Time the threads of process `pid` spent running and runnable-but-waiting for a core so far, in
 * ns, summed (/proc/<pid>/task/<tid>/schedstat; threads that ended are not counted).
 */
function schedTimes(pid: number): { runNs: number; waitNs: number } {
  let runNs = 0, waitNs = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const [run, wait] = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`)
        .split(" ").map(Number);
      runNs += run;
      waitNs += wait;
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return { runNs, waitNs };
}

/** Speaks with `loss` applied to this utterance only. */
async function speakWithLoss(device: DevicePeer, speech48k: Float32Array, loss: number) {
  device.loss = loss;
  try {
    return await device.speak(speech48k, 48000);
  } finally {
    device.loss = 0;
  }
}

await main();
