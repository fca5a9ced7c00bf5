/**
 * `deno task device`: a NAILA device from the command line — the werift device the tests use.
 * Test a gateway from a laptop, or load it with many devices.
 *
 *   deno task device --id kitchen --say "what time is it" --out reply.wav
 *   deno task device --wav question.wav --turns 3 --mqtt-host pi.local
 *   deno task device --devices 20 --say "hello" --turns 5
 *
 * MQTT login: --mqtt-username/--mqtt-password (or MQTT_USERNAME/MQTT_PASSWORD, printed by
 * `deno task devices add ID`), and --mqtt-ca (MQTT_CA) for TLS. Without them, on the server's
 * machine, the device's login comes from the data directory (NAILA_DATA_DIR, default ./data),
 * added there on first use: no step on one machine.
 *   deno task device --camera front.jpg --id front_cam --zone front_door   (scripts/device_media.ts)
 *   deno task device --upload photo.jpg --question "what do you see?"
 *   deno task device --recording message.ogg --id kitchen
 *   deno task device --video walk.ivf --id hallway --zone hallway [--seconds 60] [--devices 4]
 *     (a camera: VP8 from the IVF file, looped, beside the microphone; docs/video.md)
 */
import { DevicePeer } from "../device/peer.ts";
import { readWav, voicedEndMs, writeWav } from "../shared/audio.ts";
import { localDeviceLogin, withStoredLogin } from "../shared/credentials.ts";
import { idProblem } from "../shared/ids.ts";
import { readIvf } from "../shared/video/ivf.ts";
import { type Cli, parseCli, positiveInt, speak, usageError } from "./lib/mod.ts";
import { describeAnswer, runCamera, sendRecording, sendUpload } from "./device_media.ts";

const CLI: Cli = {
  command: "device",
  usage: `usage: deno task device [--id ID] (--say TEXT | --wav FILE) [--out reply.wav] [--turns N]
       [--devices N] [--mqtt-host HOST] [--mqtt-port PORT] [--host-address IP] [--timeout-ms MS]
       [--mqtt-username ID --mqtt-password PW] [--mqtt-ca ca.pem] [--mqtt-tls] [--data-dir DIR]
   or: deno task device --camera PHOTO… [--id ID] [--zone ZONE]
   or: deno task device --upload PHOTO [--question TEXT] | --recording FILE [--id ID]
   or: deno task device --video FILE.ivf [--id ID] [--zone ZONE] [--seconds N] [--devices N]`,
};
/** How long to wait for each reply to finish. */
const DEFAULT_TIMEOUT_MS = 20_000;

function fail(message: string): never {
  usageError(CLI, message);
}

async function main() {
  const values = parseCli(CLI, {
    camera: { type: "string", multiple: true },
    video: { type: "string" },
    seconds: { type: "string" },
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
    "mqtt-username": { type: "string", default: Deno.env.get("MQTT_USERNAME") },
    "mqtt-password": { type: "string", default: Deno.env.get("MQTT_PASSWORD") },
    "mqtt-ca": { type: "string", default: Deno.env.get("MQTT_CA") },
    "mqtt-tls": { type: "boolean", default: Deno.env.get("MQTT_TLS") === "true" },
    "data-dir": { type: "string", default: Deno.env.get("NAILA_DATA_DIR") ?? "./data" },
    "host-address": { type: "string", multiple: true },
    "timeout-ms": { type: "string" },
  });
  const problem = idProblem(values.id);
  if (problem) fail(`--id ${JSON.stringify(values.id)} ${problem}`);
  const turns = positiveInt(CLI, "turns", values.turns, 1);
  const count = positiveInt(CLI, "devices", values.devices, 1);
  const port = positiveInt(CLI, "mqtt-port", values["mqtt-port"], 1883);
  const timeoutMs = positiveInt(CLI, "timeout-ms", values["timeout-ms"], DEFAULT_TIMEOUT_MS);
  // With TLS and no CA given, the CA the server generated on this machine (if any).
  const tls = values["mqtt-tls"] || values["mqtt-ca"] !== undefined
    ? withStoredLogin(
      { embedded: false, host: "", port: 0, username: "", tls: {} },
      values["data-dir"],
      { role: "gateway" },
    ).tls
    : undefined;
  if (tls && values["mqtt-ca"] !== undefined) tls.ca = values["mqtt-ca"];
  const loginFor = (id: string) =>
    values["mqtt-username"] !== undefined
      ? { username: values["mqtt-username"], password: values["mqtt-password"] ?? "" }
      : localDeviceLogin(values["data-dir"], id, (line) => console.log(line));
  const brokerFor = (id: string) => ({
    host: values["mqtt-host"],
    port,
    ...loginFor(id),
    ...(tls ? { tls } : {}),
  });
  if (values.camera) {
    return await runCamera(brokerFor(values.id), {
      id: values.id,
      zone: values.zone,
      photos: values.camera,
    });
  }
  if (values.upload || values.recording) {
    const answer = values.upload
      ? await sendUpload(brokerFor(values.id), {
        path: values.upload,
        question: values.question,
        timeoutMs,
      })
      : await sendRecording(brokerFor(values.id), {
        device: values.id,
        path: values.recording!,
        timeoutMs,
      });
    console.log(describeAnswer(answer));
    if (!answer.ok) Deno.exitCode = 1;
    return;
  }
  const video = values.video === undefined ? undefined : {
    ivf: await Deno.readFile(values.video).then(readIvf).catch((e) =>
      fail(`--video ${values.video}: ${e.message}`)
    ),
  };
  const ids = count === 1
    ? [values.id]
    : Array.from({ length: count }, (_, i) => `${values.id}_${i + 1}`);
  const devicePeer = (id: string) =>
    new DevicePeer({
      id,
      mqtt: brokerFor(id),
      hostAddresses: values["host-address"],
      video,
      zone: values.zone,
    });
  if (video && values.say === undefined && values.wav === undefined) {
    const seconds = values.seconds === undefined
      ? undefined
      : positiveInt(CLI, "seconds", values.seconds, 1);
    return await streamCameras(ids.map(devicePeer), seconds);
  }
  if ((values.say === undefined) === (values.wav === undefined)) {
    fail("give exactly one of --say or --wav");
  }
  const speech = values.say !== undefined ? await speak(values.say) : readWav(
    await Deno.readFile(values.wav!).catch((e) => fail(`--wav ${values.wav}: ${e.message}`)),
  );

  if (values["mqtt-username"] !== undefined && count > 1) {
    fail("--mqtt-username is one device's login: use it without --devices");
  }
  const devices = ids.map(devicePeer);
  try {
    await Promise.all(devices.map((d) => d.connect()));
    console.log(
      `${count} device(s) connected to the gateway via ${tls ? "mqtts" : "mqtt"}://${
        values["mqtt-host"]
      }:${port}`,
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

/** Cameras streaming until Ctrl-C, or for `seconds`; prints frames sent every 10 s. */
async function streamCameras(devices: DevicePeer[], seconds: number | undefined): Promise<void> {
  const stopped = Promise.withResolvers<void>();
  const onSignal = () => stopped.resolve();
  Deno.addSignalListener("SIGINT", onSignal);
  const timer = seconds === undefined ? undefined : setTimeout(onSignal, seconds * 1000);
  const report = setInterval(() => {
    for (const d of devices) {
      console.log(`${d.id}: ${d.camera?.framesSent ?? 0} video frames sent`);
    }
  }, 10_000);
  try {
    await Promise.all(devices.map((d) => d.connect()));
    console.log(`${devices.length} camera(s) streaming; Ctrl-C stops`);
    await stopped.promise;
  } finally {
    clearTimeout(timer);
    clearInterval(report);
    Deno.removeSignalListener("SIGINT", onSignal);
    await Promise.all(devices.map((d) => d.close()));
  }
}

if (import.meta.main) await main();
