/**
 * What the media side needs from MQTT: typed publish and subscribe. `server/mqtt_link.ts`'s
 * MqttLink provides both; the media modules depend on this small interface only.
 */
import { Buffer } from "node:buffer";
import type { TopicMessages } from "../../shared/messages.ts";
import type { Topic, TopicKind, TopicOf } from "../../shared/topics.ts";

/** Typed MQTT publish/subscribe (QoS and retain come from `shared/topics.ts`). */
export interface MediaLink {
  publish<K extends TopicKind>(topic: TopicOf<K>, message: TopicMessages[K]): Promise<void>;
  /** Subscribes to one or more filters; `handler` sees every NAILA message: check its kind. */
  subscribe(filter: string | string[], handler: (topic: Topic, payload: string) => void): void;
}

/** A media payload that cannot be used: a stable code and a sentence naming what was wrong. */
export class MediaError extends Error {
  override name = "MediaError";
  constructor(
    readonly code:
      | "bad_message"
      | "too_large"
      | "unsupported_format"
      | "not_image"
      | "not_audio"
      | "not_video"
      | "timeout"
      | "unknown_request"
      | "busy"
      | "no_camera"
      | "unavailable",
    message: string,
  ) {
    super(message);
  }
}

/**
 * Decodes a schema-checked base64 payload, refusing it before decoding when it would exceed
 * `maxBytes` (MediaConfig's upload size).
 * @throws {MediaError} "too_large".
 */
export function decodeMedia(base64: string, maxBytes: number, what: string): Uint8Array {
  const padding = base64.endsWith("==") ? 2 : base64.endsWith("=") ? 1 : 0;
  const bytes = (base64.length / 4) * 3 - padding;
  if (bytes > maxBytes) {
    throw new MediaError(
      "too_large",
      `${what} is ${bytes} bytes, at most ${maxBytes} allowed (MEDIA_MAX_UPLOAD_BYTES)`,
    );
  }
  const buffer = Buffer.from(base64, "base64");
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** Base64 of `bytes` for a message's `data` field. */
export function encodeMedia(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}
