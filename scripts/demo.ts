/**
 * `deno task demo`: NAILA end to end on one machine, with nothing configured. Starts the AI server
 * (which hosts the embedded MQTT broker) and the gateway as separate processes, then a simulated
 * device that connects over real WebRTC with MQTT signaling and speaks a few utterances made with
 * espeak-ng. Prints each turn (what was heard, what was answered, where the time went), a summary,
 * and stops everything it started.
 *
 * With Whisper weights in models/whisper-tiny.en the full pipeline runs; without them (no internet
 * here) it says so in one line and runs PIPELINE=echo, so the whole real-time path still works.
 */
import { DevicePeer, type Reply } from "../device/peer.ts";
import { voicedEndMs } from "../shared/audio.ts";
import { median } from "./bench_stats.ts";
import type { DeviceEvent } from "../shared/messages.ts";
import {
  type Cli,
  freePort,
  parseCli,
  speak,
  startGatewayProcess,
  startServerProcess,
} from "./lib/mod.ts";

/** The device page starts right after the gateway; its pairing link is logged then. */
const PAGE_LINK_TIMEOUT_MS = 15_000;
const ROOT = new URL("..", import.meta.url).pathname;
const WHISPER_DIR = `${ROOT}models/whisper-tiny.en`;
const UTTERANCES = [
  "What time is it?",
  "Set a timer for ten seconds.",
  "What day is it today?",
];
/** Spec default: 15 frames of 20 ms end an utterance. */
const SILENCE_WINDOW_MS = 300;
/** Per turn: the reply must have ended within this long after the user stopped. */
const TURN_TIMEOUT_MS = 20_000;
/** Quiet between turns, so a reply is not cut by the next question. */
const PAUSE_BETWEEN_TURNS_MS = 800;

async function whisperPresent(): Promise<boolean> {
  return await Deno.stat(`${WHISPER_DIR}/onnx/encoder_model.onnx`).then(() => true, () => false);
}

function describeLatency(event: DeviceEvent | undefined, deviceMs: number): string {
  const latency: Record<string, number> = (event?.type === "turn" ? event.latency_ms : undefined) ??
    {};
  const parts = [`silence window ${SILENCE_WINDOW_MS} ms`];
  const label: Record<string, string> = {
    gateway_ms: "gateway",
    transport_ms: "transport",
    queue_ms: "queue",
    stt_ms: "STT after the end",
    assistant_first_ms: "assistant",
    tts_first_ms: "TTS",
    echo_ms: "echo",
    first_reply_packet_ms: "first reply packet (gateway)",
  };
  for (const [key, name] of Object.entries(label)) {
    if (typeof latency[key] === "number") parts.push(`${name} ${Math.round(latency[key])} ms`);
  }
  if (latency.stt_speculative === 1 && typeof latency.stt_total_ms === "number") {
    parts.push(`(STT ran ${Math.round(latency.stt_total_ms)} ms while you paused)`);
  }
  parts.push(`first reply sample at the device ${Math.round(deviceMs)} ms`);
  return parts.join(" · ");
}

async function main(): Promise<number> {
  const full = await whisperPresent();
  if (!full) {
    console.log(
      "Whisper weights are missing (models/whisper-tiny.en; `deno task models` fetches them with internet): running PIPELINE=echo.",
    );
  }
  const pipeline = full ? "full" : "echo";
  console.log(`Starting the AI server (PIPELINE=${pipeline}, embedded MQTT broker)...`);
  const server = await startServerProcess({
    PIPELINE: pipeline,
    STT_MODEL_DIR: WHISPER_DIR,
  });
  let gateway: Awaited<ReturnType<typeof startGatewayProcess>> | undefined;
  let device: DevicePeer | undefined;
  const devicePeakMs: number[] = [];
  try {
    const httpPort = await freePort();
    console.log("Starting the gateway...");
    gateway = await startGatewayProcess({
      LOG_LEVEL: "info",
      MQTT_HOST: "127.0.0.1",
      MQTT_PORT: String(server.mqttPort),
      NAILA_DATA_DIR: server.dataDir,
      AI_SERVER_HOST: "127.0.0.1",
      AI_SERVER_PORT: String(server.audioPort),
      GATEWAY_WEB: "on",
      GATEWAY_HTTP_PORT: String(httpPort),
    });
    device = new DevicePeer({
      id: "demo_kitchen",
      mqtt: {
        host: "127.0.0.1",
        port: server.mqttPort,
        ...server.login({ device: "demo_kitchen" }),
      },
      hostAddresses: ["127.0.0.1"],
    });
    // The page needs this browser paired: the gateway prints its pairing link at start.
    const pairing = await gateway.waitForLog(
      (l) => l.msg.startsWith("device page pairing link"),
      PAGE_LINK_TIMEOUT_MS,
    );
    const pairQuery = new URL(String(pairing.fields?.link)).search;
    const connectStart = performance.now();
    await device.connect();
    console.log(
      `Device "demo_kitchen" connected over WebRTC in ${
        Math.round(performance.now() - connectStart)
      } ms ` +
        `(browser page: http://localhost:${httpPort}/${pairQuery} while the demo runs).\n`,
    );

    for (const [index, text] of UTTERANCES.entries()) {
      const speech = await speak(text);
      const repliesBefore = device.replies.length;
      const spoken = await device.speak(speech.samples, speech.rate);
      const event = await device.waitForEvent(
        (e) => e.type === "turn" && !device!.events.slice(0, index).includes(e),
        TURN_TIMEOUT_MS,
      ).catch(() => undefined);
      let reply: Reply | undefined;
      try {
        reply = await device.nextReply(TURN_TIMEOUT_MS, repliesBefore);
      } catch {
        reply = undefined;
      }
      // From the last speech sample the device sent, not the end of espeak-ng's trailing silence.
      const lastSpeechAt = spoken.firstPacketAt + voicedEndMs(speech.samples, speech.rate);
      const deviceMs = reply ? reply.startedAt - lastSpeechAt : NaN;
      if (reply) devicePeakMs.push(deviceMs);
      const heard = event && "transcript" in event ? event.transcript : undefined;
      const answered = event && "reply" in event ? event.reply : undefined;
      console.log(
        `Turn ${index + 1}: the device said "${text}" (${
          (speech.samples.length / speech.rate).toFixed(1)
        } s)`,
      );
      console.log(
        `  heard:    ${
          heard === undefined ? "(echo pipeline: no transcript)" : JSON.stringify(heard)
        }`,
      );
      console.log(
        `  answered: ${
          answered === undefined
            ? reply ? `${(reply.samples().length / 48000).toFixed(1)} s of audio` : "(no reply)"
            : JSON.stringify(answered)
        }`,
      );
      console.log(
        `  latency:  ${reply ? describeLatency(event, deviceMs) : "no reply audio arrived"}\n`,
      );
      await new Promise((resolve) => setTimeout(resolve, PAUSE_BETWEEN_TURNS_MS));
    }
  } finally {
    await device?.close();
    await gateway?.stop();
    await server.stop();
  }
  const answered = devicePeakMs.length;
  console.log(
    `Summary: ${answered}/${UTTERANCES.length} turns answered; first reply sample after the last ` +
      `speech sample: median ${
        Math.round(median(devicePeakMs))
      } ms (includes the ${SILENCE_WINDOW_MS} ms silence window).`,
  );
  return answered === UTTERANCES.length ? 0 : 1;
}

if (import.meta.main) {
  const cli: Cli = { command: "demo", usage: "usage: deno task demo   (no options)" };
  parseCli(cli, {});
  Deno.chdir(ROOT);
  Deno.exit(await main());
}
