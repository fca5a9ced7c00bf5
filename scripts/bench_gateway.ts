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
 * - **Silero** time per window and **Opus** encode/decode time per frame, in this process.
 *
 * Writes bench/gateway.json and prints a summary.
 *
 * Usage: deno run -A scripts/bench_gateway.ts [--quick]
 */
import { DevicePeer } from "../device/peer.ts";
import { OPUS_FRAME_SAMPLES, OpusDecoder, OpusEncoder } from "../gateway/opus_codec.ts";
import { SILERO_CONTEXT, SILERO_WINDOW, SileroSession } from "../gateway/vad.ts";
import { resample } from "../shared/audio.ts";
import { delay } from "../shared/async.ts";
import { startAiServerDouble } from "../tests/helpers/ai_server_double.ts";
import { sileroModelPath, startGatewayProcess } from "../tests/helpers/gateway_process.ts";
import { startMosquitto } from "../tests/helpers/mosquitto.ts";
import { speak } from "../tests/helpers/speech.ts";
import { percentile, round } from "./bench_stats.ts";

const QUICK = Deno.args.includes("--quick");
/** Device counts of the budget table. */
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
/** Linux clock ticks per second for /proc/<pid>/stat (getconf CLK_TCK). */
const CLK_TCK = 100;
const ROOT = new URL("../", import.meta.url).pathname;
/** The full-duplex reply repeats the answer this often: longer than the sampling window. */
const LONG_REPEATS = 3;

function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function rssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
  return kb / 1024;
}

async function sampleGateway(pid: number, ms: number): Promise<{ cpu: number; rss: number }> {
  const t0 = performance.now();
  const c0 = cpuTicks(pid);
  await delay(ms);
  const c1 = cpuTicks(pid);
  const elapsed = (performance.now() - t0) / 1000;
  return { cpu: ((c1 - c0) / CLK_TCK / elapsed) * 100, rss: rssMb(pid) };
}

/** Trims leading/trailing near-silence so "the last speech packet" is really speech. */
function trim(samples: Float32Array, threshold = 0.01): Float32Array {
  let start = 0, end = samples.length;
  while (start < end && Math.abs(samples[start]) < threshold) start++;
  while (end > start && Math.abs(samples[end - 1]) < threshold) end--;
  return samples.slice(start, end);
}

function microbenchmarks(speech16k: Float32Array, speech48k: Float32Array) {
  const encoder = new OpusEncoder();
  const decoder = new OpusDecoder();
  const frames = Math.floor(speech48k.length / OPUS_FRAME_SAMPLES);
  const packets: Uint8Array[] = [];
  const rounds = 5;
  for (let i = 0; i < frames; i++) {
    decoder.decode(
      encoder.encode(speech48k.subarray(i * OPUS_FRAME_SAMPLES, (i + 1) * OPUS_FRAME_SAMPLES)),
    );
  } // warm-up: the WASM tiers up on first use
  let t = performance.now();
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < frames; i++) {
      const p = encoder.encode(
        speech48k.subarray(i * OPUS_FRAME_SAMPLES, (i + 1) * OPUS_FRAME_SAMPLES),
      );
      if (r === 0) packets.push(p);
    }
  }
  const encodeMs = (performance.now() - t) / (rounds * frames);
  t = performance.now();
  for (let r = 0; r < rounds; r++) for (const p of packets) decoder.decode(p);
  const decodeMs = (performance.now() - t) / (rounds * packets.length);
  t = performance.now();
  for (let r = 0; r < rounds * 10; r++) decoder.conceal();
  const concealMs = (performance.now() - t) / (rounds * 10);
  encoder.close();
  decoder.close();
  return { speech16k: speech16k.length, encodeMs, decodeMs, concealMs };
}

async function sileroBench(speech16k: Float32Array) {
  const path = sileroModelPath();
  if (!path) return null;
  const session = await SileroSession.load(path);
  const state = new Float32Array(256);
  const input = new Float32Array(SILERO_CONTEXT + SILERO_WINDOW);
  const times: number[] = [];
  for (let round = 0; round < 5; round++) {
    for (let at = 0; at + SILERO_WINDOW <= speech16k.length; at += SILERO_WINDOW) {
      input.copyWithin(0, SILERO_WINDOW, SILERO_WINDOW + SILERO_CONTEXT);
      input.set(speech16k.subarray(at, at + SILERO_WINDOW), SILERO_CONTEXT);
      const t = performance.now();
      await session.run(input.slice(), state);
      times.push(performance.now() - t);
    }
  }
  await session.close();
  return {
    windows: times.length,
    p50_ms: round(percentile(times, 50), 3),
    p99_ms: round(percentile(times, 99), 3),
    mean_ms: round(times.reduce((a, b) => a + b, 0) / times.length, 3),
  };
}

async function main() {
  const question = await speak("Turn on the lights in the kitchen, please.");
  const speech = trim(question.samples);
  const speech48k = resample(speech, question.rate, 48000);
  const speech16k = resample(speech, question.rate, 16000);
  const answer = await speak(
    "Okay, the kitchen lights are on now. Anything else I can do for you?",
  );
  const answer24k = resample(answer.samples, answer.rate, 24000);
  // A long reply for full duplex: streamed in real time like a TTS would.
  const long = new Float32Array(answer24k.length * LONG_REPEATS);
  for (let i = 0; i < LONG_REPEATS; i++) long.set(answer24k, i * answer24k.length);

  console.error("microbenchmarks...");
  const micro = microbenchmarks(speech16k, speech48k);
  const silero = await sileroBench(speech16k);

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
    AUDIO_SAMPLE_RATE: "16000",
    AUDIO_SILENCE_FRAMES: String(SILENCE_FRAMES),
    LOG_LEVEL: "warn",
  }, { waitReady: false });
  await delay(3000); // startup (module load, Silero session) settles before the baseline
  const devices: DevicePeer[] = [];
  const result: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: { cpus: navigator.hardwareConcurrency, deno: Deno.version.deno },
    settings: {
      silence_frames: SILENCE_FRAMES,
      sample_rate: 16000,
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
    // Warm-up: the first session compiles werift's and opusscript's code paths; a device that
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
    const baseline = await sampleGateway(gateway.pid, WINDOW_MS);
    result.baseline = { cpu_percent: round(baseline.cpu), rss_mb: round(baseline.rss, 1) };
    console.error(`baseline: cpu ${baseline.cpu.toFixed(2)} %, rss ${baseline.rss.toFixed(1)} MB`);

    const addDevices = async (n: number) => {
      while (devices.length < n) {
        const d = new DevicePeer({
          id: `bench${devices.length}`,
          mqtt: { host: "127.0.0.1", port: broker.port },
          hostAddresses: ["127.0.0.1"],
          idleNoise: ROOM_NOISE_RMS,
          decode: false,
        });
        devices.push(d);
        await d.connect();
      }
    };

    const latencySeries = async (label: string, speaker: DevicePeer, loss: number) => {
      const values: number[] = [];
      const hangover: number[] = [];
      const processing: number[] = [];
      for (let i = 0; i < UTTERANCES; i++) {
        const index = server.turns.length;
        const spoken = await speakWithLoss(speaker, speech48k, loss);
        const turn = await server.nextTurn(15_000, index);
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
      const s = await sampleGateway(gateway.pid, WINDOW_MS);
      listening[n] = {
        cpu_percent: round(s.cpu),
        cpu_percent_per_device: round(s.cpu / n),
        cpu_percent_per_added_device: round((s.cpu - previous.listen.cpu) / (n - previous.n)),
        rss_mb: round(s.rss, 1),
        rss_mb_per_device_above_baseline: round((s.rss - baseline.rss) / n),
        rss_mb_per_added_device: round((s.rss - previous.listen.rss) / (n - previous.n)),
      };
      console.error(`listening ${n}: ${JSON.stringify(listening[n])}`);
      // Full duplex: every device speaks once; a long reply streams back in real time while
      // every mic keeps sending.
      replyMode = "long";
      const first = server.turns.length;
      const turnEvents = devices.map((d) => d.events.filter((e) => e.type === "turn").length);
      await Promise.all(devices.slice(0, n).map((d) => d.speak(speech48k, 48000)));
      const deadline = performance.now() + 15_000;
      while (
        server.turns.slice(first).filter((t) => t.endedAt).length < n &&
        performance.now() < deadline
      ) {
        await delay(20);
      }
      await delay(1000); // replies are flowing
      const d = await sampleGateway(gateway.pid, WINDOW_MS);
      duplex[n] = {
        turns: server.turns.slice(first).length,
        cpu_percent: round(d.cpu),
        cpu_percent_per_device: round(d.cpu / n),
        cpu_percent_per_added_device: round((d.cpu - previous.duplex.cpu) / (n - previous.n)),
        rss_mb: round(d.rss, 1),
        rss_mb_per_device_above_baseline: round((d.rss - baseline.rss) / n),
      };
      console.error(`duplex ${n}: ${JSON.stringify(duplex[n])}`);
      previous = { n, listen: s, duplex: d };
      replyMode = "none";
      // Wait for every reply to finish before the next level.
      const until = performance.now() + 30_000;
      while (
        devices.slice(0, n).some((dev, i) =>
          dev.events.filter((e) => e.type === "turn").length <= turnEvents[i]
        ) && performance.now() < until
      ) {
        await delay(100);
      }
    }
    // The same devices listening with 5 % of their packets lost: concealment on every gap.
    for (const d of devices) d.loss = LOSS;
    await delay(1000);
    const lossy = await sampleGateway(gateway.pid, WINDOW_MS);
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
    while (devices.length < count) {
      const d = new DevicePeer({
        id: `noisy${devices.length}`,
        mqtt: { host: "127.0.0.1", port: broker.port },
        hostAddresses: ["127.0.0.1"],
        idleNoise: NOISY_ROOM_RMS,
        decode: false,
      });
      devices.push(d);
      await d.connect();
    }
    await delay(1000);
    const noisy = await sampleGateway(gateway.pid, WINDOW_MS);
    result.listening_noisy_room = {
      devices: count,
      room_noise_rms: NOISY_ROOM_RMS,
      cpu_percent: round(noisy.cpu),
      cpu_percent_per_device: round(noisy.cpu / count),
      rss_mb: round(noisy.rss, 1),
    };
    console.error(`listening in a noisy room: ${JSON.stringify(result.listening_noisy_room)}`);
  } finally {
    for (const d of devices) await d.close({ announceOffline: false }).catch(() => {});
    await gateway.stop();
    await server.close();
    await broker.stop();
  }
  await Deno.mkdir(`${ROOT}bench`, { recursive: true });
  await Deno.writeTextFile(`${ROOT}bench/gateway.json`, JSON.stringify(result, null, 2) + "\n");
  console.log(JSON.stringify(result, null, 2));
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
