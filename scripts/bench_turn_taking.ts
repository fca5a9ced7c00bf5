/**
 * `deno task bench:turns`: the gateway audio-path half of issue 9's turn-taking benchmark, with
 * the real server (`PIPELINE=echo`: the reply is the utterance itself, so what reached the server
 * is measurable), the real gateway, werift devices speaking espeak-ng in three voices, and a relay
 * on the AI link (scripts/lib/ai_tap.ts) that decodes what the gateway sent.
 *
 * - Stall + burst: a 400 ms packet hold at a random point mid-request, then all packets at once.
 *   A false cut-off is a request that reached the server as more than one turn, was cancelled,
 *   or carried less than 90 % of the spoken audio.
 * - Speaker echo: the device mixes the reply back into its mic at −6, −10, −14, −20 dB with 50,
 *   150 and 250 ms delay. A false barge-in is a cancel of the reply or any further turn.
 * - Barge-in reaction: the user talks over the reply (echo −10 dB / 150 ms) at the reply's level,
 *   1.5 s into it: user onset → the last reply packet at the device, and → the cancel at the
 *   server.
 *
 * Writes bench/turn_taking.json and prints a summary. `--quick`: one voice.
 */
import { DevicePeer, type Reply } from "../device/peer.ts";
import { delay } from "../shared/async.ts";
import { type AiTap, startAiTap } from "./lib/ai_tap.ts";
import { type Cli, parseCli, speak, startGatewayProcess, startServerProcess } from "./lib/mod.ts";
import { percentile, round } from "./bench_stats.ts";
import type { MqttLogin } from "../shared/credentials.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const CLI: Cli = { command: "bench:turns", usage: "usage: deno task bench:turns [--quick]" };
const ARGS = parseCli(CLI, { quick: { type: "boolean", default: false } });
const VOICES = ARGS.quick ? ["en-us"] : ["en-us", "en-gb", "en-us+f3"];
const ECHO_GAINS_DB = [-6, -10, -14, -20];
const ECHO_DELAYS_MS = [50, 150, 250];
/** Stall runs per voice, all devices at once. */
const STALLS_PER_VOICE = 4;
/**
 * Devices speaking at once. This 2-core machine is shared with other work: with 12 devices
 * replying at once the playback clock and the device peers fall behind each other and the
 * echo timing smears (seen: false barge-ins at −10 dB); two at a time measures the echo path.
 */
const CONCURRENCY = Number(Deno.env.get("BENCH_TURNS_CONCURRENCY") ?? 2);
/** Barge-in runs per voice. */
const BARGE_INS_PER_VOICE = 2;
const STALL_MS = 400;
const REPLY_TIMEOUT_MS = 30_000;
/** After a reply, time for a false turn to show up. */
const SETTLE_MS = 1500;
/** Share of the spoken audio a whole request carries. */
const WHOLE = 0.9;
/** How far into the reply the user talks over it. */
const BARGE_IN_AFTER_MS = 1500;

const REQUEST =
  "Please turn on the kitchen lights and then set a timer for five minutes for the pasta.";
const INTERRUPTION = "Stop, that is enough, thank you.";

interface World {
  tap: AiTap;
  mqttPort: number;
  /** MQTT login of a device, from the server's data dir (logins are required). */
  login: (device: string) => MqttLogin;
  devices: DevicePeer[];
}

let serial = 0;
async function device(w: World, options: Partial<ConstructorParameters<typeof DevicePeer>[0]>) {
  const id = `bench_${++serial}`;
  const peer = new DevicePeer({
    id,
    mqtt: { host: "127.0.0.1", port: w.mqttPort, ...w.login(id) },
    hostAddresses: ["127.0.0.1"],
    ...options,
  });
  w.devices.push(peer);
  await peer.connect();
  return peer;
}

async function replyOf(peer: DevicePeer, index: number): Promise<Reply> {
  return await peer.nextReply(REPLY_TIMEOUT_MS, index);
}

/** Runs `jobs` at most {@link CONCURRENCY} at a time; results in order. */
async function pool<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const index = next++;
      results[index] = await jobs[index]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, jobs.length) }, worker));
  return results;
}

/** One request with a stall; returns whether it was cut. */
async function stallRun(w: World, voice: { samples: Float32Array; rate: number }) {
  const peer = await device(w, {});
  const spokenMs = (voice.samples.length / voice.rate) * 1000;
  const at = 800 + Math.random() * (spokenMs - 1600);
  const spoken = peer.speak(voice.samples, voice.rate);
  await delay(at);
  await peer.holdPackets(STALL_MS);
  await spoken;
  await replyOf(peer, 0).catch(() => undefined);
  await delay(SETTLE_MS);
  const turns = w.tap.turnsOf(peer.id);
  await peer.close();
  const whole = turns.length === 1 && turns[0].cancelledPlayedMs === undefined &&
    turns[0].audioMs >= WHOLE * spokenMs;
  return { stallAtMs: round(at), turns: turns.length, cut: !whole };
}

/** One request on a device with speaker echo; returns whether the reply was barged into. */
async function echoRun(
  w: World,
  voice: { samples: Float32Array; rate: number },
  gainDb: number,
  delayMs: number,
) {
  const peer = await device(w, { echo: { gainDb, delayMs } });
  await peer.speak(voice.samples, voice.rate);
  const reply = await replyOf(peer, 0).catch(() => undefined);
  await delay(SETTLE_MS);
  const turns = w.tap.turnsOf(peer.id);
  await peer.close();
  const falseBargeIn = turns.length !== 1 || turns[0].cancelledPlayedMs !== undefined;
  return {
    gainDb,
    delayMs,
    turns: turns.length,
    replyMs: reply ? round(reply.samples().length / 48) : 0,
    serverReplyMs: round(turns[0]?.replyMs ?? 0),
    cancelledAtPlayedMs: turns[0]?.cancelledPlayedMs,
    falseBargeIn,
  };
}

/** The user talks over the reply; reaction times in ms. */
async function bargeInRun(
  w: World,
  request: { samples: Float32Array; rate: number },
  interruption: { samples: Float32Array; rate: number },
) {
  const peer = await device(w, { echo: { gainDb: -10, delayMs: 150 } });
  const index = peer.replies.length;
  await peer.speak(request.samples, request.rate);
  const deadline = performance.now() + REPLY_TIMEOUT_MS;
  while (peer.replies.length === index && performance.now() < deadline) await delay(10);
  const reply = peer.replies[index];
  if (!reply) return { stopped: false };
  await delay(BARGE_IN_AFTER_MS);
  const onset = performance.now();
  await peer.speak(interruption.samples, interruption.rate);
  await peer.waitForEvent((e) => e.type === "interrupted", 10_000).catch(() => undefined);
  await delay(500);
  const turn = w.tap.turnsOf(peer.id)[0];
  const lastPacket = reply.arrivals.at(-1)!;
  if (turn?.cancelledAt === undefined) return { stopped: false };
  return {
    stopped: true,
    lastReplyPacketMs: round(lastPacket - onset),
    cancelAtServerMs: round(turn.cancelledAt - onset),
    playedMs: turn.cancelledPlayedMs,
  };
}

const server = await startServerProcess({ PIPELINE: "echo" });
const tap = await startAiTap(server.audioPort);
const gateway = await startGatewayProcess({
  MQTT_HOST: "127.0.0.1",
  MQTT_PORT: String(server.mqttPort),
  AI_SERVER_HOST: "127.0.0.1",
  AI_SERVER_PORT: String(tap.port),
  AUDIO_SAMPLE_RATE: "16000",
  NAILA_DATA_DIR: server.dataDir,
});
const w: World = {
  tap,
  mqttPort: server.mqttPort,
  login: (id) => server.login({ device: id }),
  devices: [],
};
const results: Record<string, unknown[]> = { stall: [], echo: [], barge_in: [] };
try {
  for (const voice of VOICES) {
    const request = await speak(REQUEST, { voice });
    const interruption = await speak(INTERRUPTION, { voice });
    console.log(`voice ${voice}: stalls`);
    const stalls = await pool(
      Array.from({ length: STALLS_PER_VOICE }, () => () => stallRun(w, request)),
    );
    results.stall.push(...stalls.map((r) => ({ voice, ...r })));
    console.log(`voice ${voice}: echo`);
    const echoes = await pool(
      ECHO_GAINS_DB.flatMap((g) => ECHO_DELAYS_MS.map((d) => () => echoRun(w, request, g, d))),
    );
    results.echo.push(...echoes.map((r) => ({ voice, ...r })));
    console.log(`voice ${voice}: barge-in`);
    for (let i = 0; i < BARGE_INS_PER_VOICE; i++) {
      results.barge_in.push({ voice, ...(await bargeInRun(w, request, interruption)) });
    }
    for (const peer of w.devices.splice(0)) await peer.close().catch(() => {});
  }
} finally {
  for (const peer of w.devices) await peer.close().catch(() => {});
  await gateway.stop();
  await tap.close();
  await server.stop();
}

type Row = Record<string, unknown>;
const stall = results.stall as Row[];
const echo = results.echo as Row[];
const barge = results.barge_in as Row[];
const falseBy = (gain: number) => {
  const runs = echo.filter((r) => r.gainDb === gain);
  return `${runs.filter((r) => r.falseBargeIn).length}/${runs.length}`;
};
const stopped = barge.filter((r) => r.stopped);
const reaction = stopped.map((r) => r.lastReplyPacketMs as number);
const summary = {
  voices: VOICES,
  stall_false_cutoffs: `${stall.filter((r) => r.cut).length}/${stall.length}`,
  echo_false_barge_ins: Object.fromEntries(ECHO_GAINS_DB.map((g) => [`${g}dB`, falseBy(g)])),
  barge_in_stopped: `${stopped.length}/${barge.length}`,
  barge_in_last_reply_packet_ms: {
    p50: round(percentile(reaction, 50)),
    max: round(Math.max(...reaction)),
  },
  barge_in_cancel_at_server_ms_p50: round(
    percentile(stopped.map((r) => r.cancelAtServerMs as number), 50),
  ),
};
console.log(JSON.stringify(summary, null, 2));
await Deno.writeTextFile(
  `${ROOT}bench/turn_taking.json`,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      concurrency: CONCURRENCY,
      // The machine is shared: the load at the end of the run, beside the numbers.
      load_average: Deno.loadavg().map((l) => round(l, 1)),
      summary,
      runs: results,
    },
    null,
    2,
  ) + "\n",
);
