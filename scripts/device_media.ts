/**
 * The media modes of `deno task device` (scripts/device.ts):
 *
 *   deno task device --camera front.jpg yard.png --id front_cam --zone front_door
 *       a camera answering the server's snapshot requests with these photos, until Ctrl-C
 *   deno task device --upload photo.jpg --question "Is there a cup?"
 *       an upload (spec 11.9), printing the server's answer
 *   deno task device --recording message.ogg --id kitchen
 *       a voice message or video clip (spec 11.6: .ogg/.opus, .wav, .mp3, .mp4, .webm)
 */
import { Buffer } from "node:buffer";
import { extname } from "node:path";
import { loadPhoto, startCamera } from "../device/camera.ts";
import type { MediaAnswer } from "../shared/messages.ts";
import type { MqttConfig } from "../shared/config.ts";
import { connectMqtt } from "../shared/mqtt.ts";
import { topicFilter } from "../shared/topics.ts";

/** Where the broker is, with the device's login and TLS settings when it needs them. */
export type BrokerAddress = Pick<MqttConfig, "host" | "port"> & Partial<MqttConfig>;

/** Recording formats by file extension. */
const RECORDING_FORMATS = {
  ".ogg": ["audio", "opus"],
  ".opus": ["audio", "opus"],
  ".wav": ["audio", "wav"],
  ".mp3": ["audio", "mp3"],
  ".mp4": ["video", "mp4"],
  ".webm": ["video", "webm"],
} as const;

/** Runs a camera until SIGINT/SIGTERM. */
export async function runCamera(
  broker: BrokerAddress,
  options: { id: string; zone?: string; photos: string[] },
): Promise<void> {
  const photos = await Promise.all(options.photos.map(loadPhoto));
  const camera = await startCamera({ id: options.id, zone: options.zone, mqtt: broker, photos });
  console.log(
    `camera "${options.id}"${
      options.zone ? ` in zone ${options.zone}` : ""
    } serving ${photos.length} photo(s) via mqtt://${broker.host}:${broker.port}; Ctrl-C to stop`,
  );
  let reported = 0;
  const timer = setInterval(() => {
    for (; reported < camera.requests.length; reported++) {
      console.log(`snapshot request ${camera.requests[reported]} answered`);
    }
  }, 200);
  await new Promise<void>((resolve) => {
    Deno.addSignalListener("SIGINT", resolve);
    Deno.addSignalListener("SIGTERM", resolve);
  });
  clearInterval(timer);
  await camera.close();
}

async function publishAndWait(
  broker: BrokerAddress,
  timeoutMs: number,
  send: (mqtt: Awaited<ReturnType<typeof connectMqtt>>) => Promise<void>,
  filter: string,
): Promise<MediaAnswer> {
  const mqtt = await connectMqtt({ embedded: false, ...broker }, {
    clientId: `naila-device-media-${crypto.randomUUID().slice(0, 8)}`,
  });
  try {
    const answer = new Promise<MediaAnswer>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no answer on ${filter} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      mqtt.onMessage((topic, payload) => {
        if (topic.kind !== "upload_response" && topic.kind !== "device_media_response") return;
        clearTimeout(timer);
        resolve(JSON.parse(payload));
      });
    });
    await mqtt.subscribe(filter);
    await send(mqtt);
    return await answer;
  } finally {
    await mqtt.close();
  }
}

/** Publishes an upload with a question and returns the server's answer. */
export async function sendUpload(
  broker: BrokerAddress,
  options: { path: string; question?: string; timeoutMs: number },
): Promise<MediaAnswer> {
  const photo = await loadPhoto(options.path);
  const session = `cli_${crypto.randomUUID().slice(0, 8)}`;
  return await publishAndWait(
    broker,
    options.timeoutMs,
    (mqtt) =>
      mqtt.publish({ kind: "upload_image", session }, {
        session_id: session,
        media_type: "image",
        format: photo.format,
        filename: options.path.split("/").pop()!.slice(0, 255),
        ...(options.question ? { context: options.question } : {}),
        data: Buffer.from(photo.bytes).toString("base64"),
      }),
    topicFilter("upload_response", { session }),
  );
}

/** Publishes a recording from `device` and returns the server's answer. */
export async function sendRecording(
  broker: BrokerAddress,
  options: { device: string; path: string; timeoutMs: number },
): Promise<MediaAnswer> {
  const extension = extname(options.path).toLowerCase();
  const kind = RECORDING_FORMATS[extension as keyof typeof RECORDING_FORMATS];
  if (kind === undefined) {
    throw new Error(
      `${options.path}: extension ${extension || "(none)"} is not one of ${
        Object.keys(RECORDING_FORMATS).join(" ")
      }`,
    );
  }
  const data = Buffer.from(await Deno.readFile(options.path)).toString("base64");
  const common = {
    request_id: `cli_${crypto.randomUUID().slice(0, 8)}`,
    duration_ms: 0,
    timestamp: new Date().toISOString(),
    data,
  };
  return await publishAndWait(
    broker,
    options.timeoutMs,
    (mqtt) =>
      mqtt.publish(
        { kind: "device_recording", device: options.device },
        kind[0] === "audio"
          ? { ...common, media_type: "audio", format: kind[1] }
          : { ...common, media_type: "video", format: kind[1] },
      ),
    topicFilter("device_media_response", { device: options.device }),
  );
}

/** One line for an answer. */
export function describeAnswer(answer: MediaAnswer): string {
  if (!answer.ok) return `error ${answer.error?.code}: ${answer.error?.message}`;
  const heard = answer.transcript ? `heard "${answer.transcript}"; ` : "";
  return `${heard}answer: ${answer.answer || "(none)"}`;
}
