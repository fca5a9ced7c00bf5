/**
 * Protocol v2 (docs/protocol.md): every message is one JSON header line starting with `{`,
 * followed by `length` payload bytes when the header says so (PCM for audio, UTF-8 for text).
 * The first message on a v2 connection is a `hello`. Every message but hello/ping/pong/
 * connection errors names its turn. One table of header fields per message type (the messages
 * themselves are in `frame_v2_messages.ts`) serves the encoder and the decoder. Part of
 * `frame_codec.ts`, which re-exports what is public; import from there.
 */

import { concatBytes } from "./audio.ts";
import {
  checkId,
  checkPcmLength,
  checkRate,
  decodeUtf8,
  DEFAULT_FRAME_LIMITS,
  fail,
  type FrameLimits,
  show,
} from "./frame_checks.ts";
import {
  EOT_MAX_SILENCE_MS,
  EOT_MIN_SILENCE_MS,
  MAX_ERROR_CODE_CHARS,
  MAX_ERROR_MESSAGE_CHARS,
  MAX_IMAGE_BYTES,
  MAX_IMAGE_SIDE,
  TURN_COMPLETIONS,
  type V2Message,
  type V2MessageType,
} from "./frame_v2_messages.ts";

/** A nonce or an HMAC proof on the wire: 32 bytes as 64 lowercase hex digits (shared/audio_auth.ts). */
const HEX_256 = /^[0-9a-f]{64}$/;

const textEncoder = new TextEncoder();

/** At most this many `stages` entries on an end message. */
const MAX_STAGES = 16;
/** At most this many capabilities in a hello. */
const MAX_CAPABILITIES = 16;
/** Longest stage or capability name. */
const MAX_NAME_CHARS = 32;

/** A parsed header line. */
export type Json = Record<string, unknown>;

function field(header: Json, name: string): unknown {
  return Object.hasOwn(header, name) ? header[name] : undefined;
}

function nonNegative(header: Json, name: string, integer: boolean): number {
  const value = field(header, name);
  if (
    typeof value !== "number" || !Number.isFinite(value) || value < 0 ||
    (integer && !Number.isInteger(value))
  ) {
    fail(
      "bad_field",
      name,
      value,
      `${name} ${show(value)} is not a ${integer ? "non-negative integer" : "non-negative number"}`,
    );
  }
  return value;
}

function shortString(header: Json, name: string, maxChars: number): string {
  const value = field(header, name);
  if (typeof value !== "string" || value.length === 0 || value.length > maxChars) {
    fail(
      "bad_field",
      name,
      value,
      `${name} ${show(value)} is not a string of 1..${maxChars} characters`,
    );
  }
  return value;
}

function oneOf(header: Json, name: string, values: readonly string[]): string {
  const value = field(header, name);
  if (!values.includes(value as string)) {
    fail("bad_field", name, value, `${name} ${show(value)} is not one of ${values.join("|")}`);
  }
  return value as string;
}

function names(header: Json, name: string): string[] {
  const value = field(header, name);
  if (
    !Array.isArray(value) || value.length > MAX_CAPABILITIES ||
    !value.every((item) =>
      typeof item === "string" && item.length > 0 && item.length <= MAX_NAME_CHARS
    )
  ) {
    fail(
      "bad_field",
      name,
      value,
      `${name} ${show(JSON.stringify(value))} is not a list of short names`,
    );
  }
  return value as string[];
}

function stages(header: Json, name: string): Record<string, number> {
  const value = field(header, name);
  const entries = value !== null && typeof value === "object" && !Array.isArray(value)
    ? Object.entries(value)
    : undefined;
  if (
    entries === undefined || entries.length > MAX_STAGES ||
    !entries.every(([key, ms]) =>
      key.length <= MAX_NAME_CHARS && typeof ms === "number" && Number.isFinite(ms) && ms >= 0
    )
  ) {
    fail(
      "bad_field",
      "stages",
      value,
      `stages ${show(JSON.stringify(value))} is not a map of name to milliseconds`,
    );
  }
  return Object.fromEntries(entries);
}

/** The payload a v2 header announces, validated against the limits, before allocation. */
export function v2PayloadLength(type: V2MessageType, header: Json, limits: FrameLimits): number {
  const length = field(header, "length");
  if (type === "audio") {
    const declared = nonNegative(header, "length", true);
    checkPcmLength("length", declared, checkRate("rate", field(header, "rate")), limits);
    return declared;
  }
  if (type === "text") {
    const declared = nonNegative(header, "length", true);
    if (declared > limits.maxTextBytes) {
      fail(
        "payload_too_large",
        "length",
        declared,
        `length ${declared} exceeds ${limits.maxTextBytes} bytes of text`,
      );
    }
    return declared;
  }
  if (type === "image") {
    const declared = nonNegative(header, "length", true);
    if (declared === 0 || declared > MAX_IMAGE_BYTES) {
      fail(
        "payload_too_large",
        "length",
        declared,
        `image length ${declared} is not 1..${MAX_IMAGE_BYTES} bytes`,
      );
    }
    return declared;
  }
  if (length !== undefined) {
    fail(
      "bad_field",
      "length",
      length,
      `length ${show(length)} is not allowed on a ${type} message`,
    );
  }
  return 0;
}

/** Completes a message validated from its header with the payload that followed it. */
export function attachPayload(message: V2Message, payload: Uint8Array): V2Message {
  if (message.type === "audio") message.pcm = payload;
  else if (message.type === "text") message.text = decodeUtf8(payload, "text", "text payload");
  else if (message.type === "image") message.jpeg = payload;
  return message;
}

// ---------------------------------------------------------------------------------------------
// One table of header fields per message type, in wire order (the golden vectors rely on it):
// the encoder writes a header from it and the decoder validates one with it.

/** Validates header field `name`; throws {@link FrameError} naming it and its value. */
type FieldReader = (header: Json, name: string, limits: FrameLimits) => unknown;

/** A header field of message type `T`; `length` is the payload's size in bytes. */
interface Field<T extends V2Message> {
  name: Exclude<keyof T, "type" | "pcm" | "text" | "jpeg"> | "length";
  read: FieldReader;
  /** Left out of the header when the message does not carry it. */
  optional?: true;
}

type MessageOf<K extends V2MessageType> = Extract<V2Message, { type: K }>;

const id: FieldReader = (header, name, limits) => checkId(name, field(header, name), limits);
const rate: FieldReader = (header, name) => checkRate(name, field(header, name));
const count: FieldReader = (header, name) => nonNegative(header, name, true);
const ms: FieldReader = (header, name) => nonNegative(header, name, false);
/** Validated by {@link v2PayloadLength} before the payload is read. */
const length: FieldReader = (header, name) => field(header, name);
const version: FieldReader = (header, name) => {
  const value = field(header, name);
  if (value !== 2) {
    fail("bad_version", name, value, `version ${show(value)} is not supported, expected 2`);
  }
  return value;
};
const hex256: FieldReader = (header, name) => {
  const value = field(header, name);
  if (typeof value !== "string" || !HEX_256.test(value)) {
    fail("bad_field", name, value, `${name} ${show(value)} is not 64 lowercase hex digits`);
  }
  return value;
};
const allowed = (values: readonly string[]): FieldReader => (header, name) =>
  oneOf(header, name, values);
const text = (maxChars: number): FieldReader => (header, name) =>
  shortString(header, name, maxChars);

const silenceMs: FieldReader = (header, name) => {
  const value = field(header, name);
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < EOT_MIN_SILENCE_MS ||
    value > EOT_MAX_SILENCE_MS
  ) {
    fail(
      "bad_field",
      name,
      value,
      `${name} ${show(value)} is not an integer ${EOT_MIN_SILENCE_MS}..${EOT_MAX_SILENCE_MS}`,
    );
  }
  return value;
};
/** An id naming another turn than the message's own `turn`. */
const otherTurn: FieldReader = (header, name, limits) => {
  const value = checkId(name, field(header, name), limits);
  if (value === field(header, "turn")) {
    fail("bad_field", name, value, `${name} ${show(value)} names the turn itself`);
  }
  return value;
};
const side: FieldReader = (header, name) => {
  const value = nonNegative(header, name, true);
  if (value < 1 || value > MAX_IMAGE_SIDE) {
    fail("bad_field", name, value, `${name} ${value} is not 1..${MAX_IMAGE_SIDE} pixels`);
  }
  return value;
};
const fraction: FieldReader = (header, name) => {
  const value = nonNegative(header, name, false);
  if (value > 1) fail("bad_field", name, value, `${name} ${value} is not a fraction 0..1`);
  return value;
};
/** `[x, y, width, height]`, non-negative integers inside the image's `width`×`height`. */
const box: FieldReader = (header, name) => {
  const value = field(header, name);
  const [x, y, w, h] = Array.isArray(value) ? value : [];
  const ok = Array.isArray(value) && value.length === 4 &&
    value.every((v) => Number.isInteger(v) && v >= 0) &&
    x + w <= (field(header, "width") as number) && y + h <= (field(header, "height") as number);
  if (!ok) {
    fail(
      "bad_field",
      name,
      value,
      `box ${show(JSON.stringify(value))} is not [x, y, width, height] inside the image`,
    );
  }
  return value;
};

const TS = { name: "ts", read: ms } as const;
const TURN = { name: "turn", read: id } as const;
const LENGTH = { name: "length", read: length } as const;

/** Every v2 message type's header fields after `type`, in wire order. */
const V2_FIELDS: { readonly [K in V2MessageType]: readonly Field<MessageOf<K>>[] } = {
  hello: [
    { name: "version", read: version },
    { name: "role", read: allowed(["gateway", "server"]) },
    { name: "capabilities", read: names },
    TS,
    { name: "nonce", read: hex256, optional: true },
    { name: "proof", read: hex256, optional: true },
  ],
  auth: [{ name: "proof", read: hex256 }, TS],
  start: [
    TURN,
    { name: "device", read: id },
    { name: "rate", read: rate },
    { name: "continues", read: otherTurn, optional: true },
    TS,
  ],
  audio: [TURN, { name: "seq", read: count }, { name: "rate", read: rate }, TS, LENGTH],
  end: [TURN, TS, { name: "stages", read: stages, optional: true }],
  pause: [TURN, TS],
  cancel: [TURN, TS, { name: "played_ms", read: ms }],
  text: [TURN, { name: "kind", read: allowed(["transcript", "reply"]) }, TS, LENGTH],
  error: [
    { ...TURN, optional: true },
    { name: "request", read: id, optional: true },
    { name: "code", read: text(MAX_ERROR_CODE_CHARS) },
    { name: "message", read: text(MAX_ERROR_MESSAGE_CHARS) },
    TS,
  ],
  state: [
    TURN,
    { name: "state", read: allowed(["queued", "running"]) },
    { name: "position", read: count, optional: true },
    { name: "wait_ms", read: ms, optional: true },
    TS,
  ],
  eot: [
    TURN,
    { name: "completion", read: allowed(TURN_COMPLETIONS) },
    { name: "silence_ms", read: silenceMs },
    TS,
  ],
  commit: [TURN, TS],
  ping: [{ name: "id", read: count }, TS],
  pong: [{ name: "id", read: count }, TS],
  // Camera frames (docs/video.md).
  image: [
    { name: "device", read: id },
    { name: "reason", read: allowed(["motion", "grab"]) },
    { name: "request", read: id, optional: true },
    { name: "capture_ts", read: ms },
    { name: "width", read: side },
    { name: "height", read: side },
    { name: "box", read: box, optional: true },
    { name: "changed", read: fraction, optional: true },
    { name: "format", read: allowed(["jpeg"]) },
    TS,
    LENGTH,
  ],
  frame_request: [
    { name: "request", read: id },
    { name: "device", read: id },
    { name: "max_age_ms", read: ms },
    TS,
  ],
};

const V2_TYPES = Object.keys(V2_FIELDS) as readonly V2MessageType[];

function fieldsOf(type: V2MessageType): readonly Field<V2Message>[] {
  return V2_FIELDS[type] as readonly Field<V2Message>[];
}

/**
 * Validates a header against its type's table (`ts` first, then in wire order) and returns the
 * message with `payload` attached. Throws {@link FrameError} for the first bad field.
 */
export function buildV2(
  type: V2MessageType,
  header: Json,
  payload: Uint8Array,
  limits: FrameLimits,
): V2Message {
  const ts = ms(header, "ts", limits);
  const message: Json = { type };
  for (const { name, read, optional } of fieldsOf(type)) {
    if (name === "length" || (optional && field(header, name) === undefined)) continue;
    message[name] = name === "ts" ? ts : read(header, name, limits);
  }
  return attachPayload(message as unknown as V2Message, payload);
}

/** The header of `message`, its fields in wire order; `length` is the payload's size. */
function v2Header(message: V2Message, payloadLength: number): Json {
  const header: Json = { type: message.type };
  const values = message as unknown as Json;
  for (const { name, optional } of fieldsOf(message.type)) {
    if (name === "length") header.length = payloadLength;
    else if (!optional || values[name] !== undefined) header[name] = values[name];
  }
  return header;
}

/** Parses a v2 header line: its type and its fields, not yet validated. */
export function parseV2Header(line: string): { type: V2MessageType; header: Json } {
  let header: unknown;
  try {
    header = JSON.parse(line);
  } catch {
    fail("bad_json", "header", line, `v2 header is not valid JSON: ${show(line)}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail("bad_json", "header", line, `v2 header is not a JSON object: ${show(line)}`);
  }
  const type = (header as Json).type;
  if (!(V2_TYPES as readonly unknown[]).includes(type)) {
    fail("bad_type", "type", type, `type ${show(type)} is not one of ${V2_TYPES.join("|")}`);
  }
  return { type: type as V2MessageType, header: header as Json };
}

/**
 * Encodes one v2 message: its JSON header line, then its payload. Validates exactly as the
 * decoder does, so nothing this returns can be refused by a conforming peer.
 */
export function encodeV2(
  message: V2Message,
  limits: FrameLimits = DEFAULT_FRAME_LIMITS,
): Uint8Array {
  const payload = message.type === "audio"
    ? message.pcm
    : message.type === "text"
    ? textEncoder.encode(message.text)
    : message.type === "image"
    ? message.jpeg
    : new Uint8Array(0);
  const header = v2Header(message, payload.length);
  const line = textEncoder.encode(JSON.stringify(header) + "\n");
  if (line.length > limits.maxHeaderBytes) {
    fail(
      "header_too_long",
      "header",
      line.length,
      `header line of ${line.length} bytes exceeds ${limits.maxHeaderBytes}`,
    );
  }
  // Round-trip through the decoder's own validation so encoder and decoder cannot drift apart.
  v2PayloadLength(message.type, header, limits);
  buildV2(message.type, header, payload, limits);
  return concatBytes([line, payload]);
}
