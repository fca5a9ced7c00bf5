/**
 * A simulated MQTT camera (spec 11.5): announces itself with the "camera" capability and its
 * zone, and answers each snapshot request on `naila/devices/{id}/media/request` with the next of
 * its real photos on `media/snapshot`, echoing the request_id. Used by `deno task device
 * --camera`, the media tests and the media benchmark.
 *
 * @example
 * ```ts
 * const camera = await startCamera({ id: "front_cam", zone: "front_door",
 *   mqtt: { host: "127.0.0.1", port: 1883 }, photos: [await loadPhoto("person.jpg")] });
 * // ... the server requests snapshots
 * await camera.close();
 * ```
 */
import { Buffer } from "node:buffer";
import type { MqttConfig } from "../shared/config.ts";
import { parseMediaRequest } from "../shared/messages.ts";
import { connectMqtt, type NailaMqtt } from "../shared/mqtt.ts";
import { topicFilter } from "../shared/topics.ts";

/** One photo the camera serves. */
export interface CameraPhoto {
  format: "jpeg" | "png" | "webp";
  width: number;
  height: number;
  bytes: Uint8Array;
}

/** Options of {@link startCamera}. */
export interface CameraOptions {
  id: string;
  zone?: string;
  mqtt: Pick<MqttConfig, "host" | "port"> & Partial<MqttConfig>;
  /** Served in turn, one per request. */
  photos: CameraPhoto[];
  /** Answer nothing (a camera that hangs), for timeout tests. */
  silent?: boolean;
}

/** A running simulated camera. */
export interface Camera {
  /** Snapshot requests answered so far. */
  readonly served: number;
  /** The request ids received, in order. */
  readonly requests: readonly string[];
  close(): Promise<void>;
}

/** Reads a photo file; its format from the magic bytes, its size from the header. */
export async function loadPhoto(path: string): Promise<CameraPhoto> {
  const bytes = await Deno.readFile(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] === 0x89 && bytes[1] === 0x50) {
    return { format: "png", width: view.getUint32(16), height: view.getUint32(20), bytes };
  }
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    // Walk the JPEG segments to the start-of-frame marker, which holds the size.
    let at = 2;
    while (at + 9 < bytes.length) {
      const marker = bytes[at + 1];
      const length = view.getUint16(at + 2);
      if (
        marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc
      ) {
        return {
          format: "jpeg",
          height: view.getUint16(at + 5),
          width: view.getUint16(at + 7),
          bytes,
        };
      }
      at += 2 + length;
    }
  }
  if (String.fromCharCode(...bytes.subarray(8, 12)) === "WEBP") {
    throw new Error(`${path}: give the camera a JPEG or PNG (WebP sizes are not read here)`);
  }
  throw new Error(`${path} is not a JPEG or PNG photo`);
}

/** Connects, announces the camera (retained status) and starts answering requests. */
export async function startCamera(options: CameraOptions): Promise<Camera> {
  const { id } = options;
  if (options.photos.length === 0) throw new Error("a camera needs at least one photo");
  const mqtt: NailaMqtt = await connectMqtt({ embedded: false, ...options.mqtt }, {
    clientId: `naila-camera-${id}-${crypto.randomUUID().slice(0, 8)}`,
    will: {
      topic: { kind: "device_status", device: id },
      message: { device_id: id, online: false },
    },
  });
  const encoded = options.photos.map((photo) => ({
    ...photo,
    data: Buffer.from(photo.bytes.buffer, photo.bytes.byteOffset, photo.bytes.byteLength)
      .toString("base64"),
  }));
  const requests: string[] = [];
  let served = 0;
  mqtt.onMessage((topic, payload) => {
    if (topic.kind !== "device_media_request" || topic.device !== id) return;
    const request = parseMediaRequest(payload);
    if (!request.ok || request.value.request_type !== "snapshot") return;
    requests.push(request.value.request_id);
    if (options.silent) return;
    const photo = encoded[served++ % encoded.length];
    mqtt.publish({ kind: "device_snapshot", device: id }, {
      request_id: request.value.request_id,
      media_type: "image",
      format: photo.format,
      width: photo.width,
      height: photo.height,
      timestamp: new Date().toISOString(),
      data: photo.data,
    }).catch(() => {
      // Broker gone: the camera's owner closes it.
    });
  });
  await mqtt.subscribe(topicFilter("device_media_request", { device: id }));
  await mqtt.publish({ kind: "device_status", device: id }, {
    device_id: id,
    online: true,
    capabilities: ["camera"],
    ...(options.zone ? { zone: options.zone } : {}),
    timestamp: new Date().toISOString(),
  });
  return {
    get served() {
      return served;
    },
    requests,
    async close() {
      await mqtt.publish({ kind: "device_status", device: id }, {
        device_id: id,
        online: false,
        timestamp: new Date().toISOString(),
      }).catch(() => {});
      await mqtt.close();
    },
  };
}
