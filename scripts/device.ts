/**
 * `deno task device`: a NAILA device from the command line — the werift device the tests use.
 * Test a gateway from a laptop, or load it with many devices.
 *
 *   deno task device --id kitchen --say "what time is it" --out reply.wav
 *   deno task device --wav question.wav --turns 3 --mqtt-host pi.local
 *   deno task device --devices 20 --say "hello" --turns 5
 *   deno task device --camera front.jpg --id front_cam --zone front_door   (scripts/device_media.ts)
 *   deno task device --upload photo.jpg --question "what do you see?"
 *   deno task device --recording message.ogg --id kitchen
 */
import { parseArgs } from "node:util";
import { DevicePeer } from "../device/peer.ts";
import { readWav, voicedEndMs, writeWav } from "../shared/audio.ts";
import { idProblem } from "../shared/ids.ts";
import { speak } from "../tests/helpers/speech.ts";
import { describeAnswer, runCamera, sendRecording, sendUpload } from "./device_media.ts";

const USAGE =
  `usage: deno task device [--id ID] (--say TEXT | --wav FILE) [--out reply.wav] [--turns N]
       [--devices N] [--mqtt-host HOST] [--mqtt-port PORT] [--host-address IP] [--timeout-ms MS]
   or: deno task device --camera PHOTO… [--id ID] [--zone ZONE]
   or: deno task device --upload PHOTO [--question TEXT] | --recording FILE [--id ID]`;
/** How long to wait for each reply to finish. */
const DEFAULT_TIMEOUT_MS = 20_000;

function fail(message: string): never {
  console.error(`device: ${message}\n${USAGE}`);
  Deno.exit(2);
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^[1-9][0-9]*$/.test(text)) {
    fail(`--${name} ${JSON.stringify(text)} is not a positive integer`);
  }
  return Number(text);
}

async function main() {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      camera: { type: "string", multiple: true },
      zone: { type: "string" },
      upload: { type: "string" },
      question: { type: "string" },
      recording: { type: "string" },
      id: { type: "string", default: "cli_device" },
      say: { type: "string" },
      wav: { type: "string" },
      out: { type: "string" },
      turns: { type: "string" },
      devices: { type: "string" },
      "mqtt-host": { type: "string", default: Deno.env.get("MQTT_HOST") ?? "127.0.0.1" },
      "mqtt-port": { type: "string", default: Deno.env.get("MQTT_PORT") ?? "1883" },
      "host-address": { type: "string", multiple: true },
      "timeout-ms": { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const broker = {
    host: values["mqtt-host"],
    port: positiveInt("mqtt-port", values["mqtt-port"], 1883),
  };
  const mediaTimeoutMs = positiveInt("timeout-ms", values["timeout-ms"], DEFAULT_TIMEOUT_MS);
  const idProblemText = idProblem(values.id);
  if (idProblemText) fail(`--id ${JSON.stringify(values.id)} ${idProblemText}`);
  if (values.camera) {
    return await runCamera(broker, {
      id: values.id,
      zone: values.zone,
      photos: [...values.camera, ...positionals],
    });
  }
  if (values.upload || values.recording) {
    const answer = values.upload
      ? await sendUpload(broker, {
        path: values.upload,
        question: values.question,
        timeoutMs: mediaTimeoutMs,
      })
      : await sendRecording(broker, {
        device: values.id,
        path: values.recording!,
        timeoutMs: mediaTimeoutMs,
      });
    console.log(describeAnswer(answer));
    if (!answer.ok) Deno.exitCode = 1;
    return;
  }
  if (positionals.length > 0) fail(`unexpected ${positionals.join(" ")}`);
  if ((values.say === undefined) === (values.wav === undefined)) {
    fail("give exactly one of --say or --wav");
  }
  const turns = positiveInt("turns", values.turns, 1);
  const count = positiveInt("devices", values.devices, 1);
  const port = positiveInt("mqtt-port", values["mqtt-port"], 1883);
  const timeoutMs = positiveInt("timeout-ms", values["timeout-ms"], DEFAULT_TIMEOUT_MS);
  const speech = values.say !== undefined ? await speak(values.say) : readWav(
    await Deno.readFile(values.wav!).catch((e) => fail(`--wav ${values.wav}: ${e.message}`)),
  );

  const ids = count === 1
    ? [values.id]
    : Array.from({ length: count }, (_, i) => `${values.id}_${i + 1}`);
  const devices = ids.map((id) =>
    new DevicePeer({
      id,
      mqtt: { host: values["mqtt-host"], port },
      hostAddresses: values["host-address"],
    })
  );
  try {
    await Promise.all(devices.map((d) => d.connect()));
    console.log(
      `${count} device(s) connected to the gateway via mqtt://${values["mqtt-host"]}:${port}`,
    );
    const results = await Promise.all(devices.map(async (device) => {
      const latencies: number[] = [];
      for (let turn = 1; turn <= turns; turn++) {
        const before = device.replies.length;
        const spoken = await device.speak(speech.samples, speech.rate);
        const reply = await device.nextReply(timeoutMs, before).catch(() => undefined);
        const event = device.events.findLast((e) => e.type === "turn");
        const lastSpeechAt = spoken.firstPacketAt + voicedEndMs(speech.samples, speech.rate);
        const ms = reply ? Math.round(reply.startedAt - lastSpeechAt) : undefined;
        if (ms !== undefined) latencies.push(ms);
        const text = event && "reply" in event && event.reply ? ` "${event.reply}"` : "";
        console.log(
          `${device.id} turn ${turn}: ${
            reply
              ? `${
                (reply.samples().length / 48000).toFixed(1)
              } s reply${text}, first reply sample ${ms} ms after the last speech sample`
              : "no reply"
          }`,
        );
      }
      return { device, latencies };
    }));
    if (values.out) {
      const audio = devices[0].receivedAudio();
      await Deno.writeFile(values.out, writeWav(audio, 48000));
      console.log(`wrote ${(audio.length / 48000).toFixed(1)} s of reply audio to ${values.out}`);
    }
    const missing = results.reduce((n, r) => n + turns - r.latencies.length, 0);
    if (missing > 0) {
      console.error(`${missing} of ${turns * count} turns got no reply`);
      Deno.exitCode = 1;
    }
  } finally {
    await Promise.all(devices.map((d) => d.close()));
  }
}

if (import.meta.main) await main();
