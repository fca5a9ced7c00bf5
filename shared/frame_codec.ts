/**
 * The gateway ↔ AI-server wire protocol, both versions, in one module (docs/protocol.md).
 *
 * - **v1** is spec section 4.2 byte for byte: `{device}|{length}|{rate}|{request}\n` followed by
 *   `length` bytes of int16 mono little-endian PCM, in both directions.
 * - **v2** streams: every message is one JSON header line starting with `{`, followed by
 *   `length` payload bytes when the header says so (PCM for audio, UTF-8 for text). The first
 *   message on a v2 connection is a `hello`. Every message but hello/ping/pong/connection errors
 *   names its turn.
 *
 * One incremental {@link FrameDecoder} reads both: bytes may arrive in any chunking and frames
 * may be coalesced. Every limit is checked before anything of the announced size is allocated,
 * and every problem is a {@link FrameError} naming the field and the value.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder();
 * const bytes = encodeV1({ device: "kitchen", rate: 16000, request: "r1", pcm: new Uint8Array(4) });
 * decoder.push(bytes); // [{ version: 1, frame: { device: "kitchen", ... } }]
 * ```
 */

import { idProblem, MAX_ID_BYTES } from "./ids.ts";

/** Sample rates a frame may carry (issue #2); 22.05/44.1 kHz sources are resampled first. */
export const ALLOWED_SAMPLE_RATES = [8000, 16000, 24000, 48000] as const;
export type SampleRate = typeof ALLOWED_SAMPLE_RATES[number];

/** Bounds on what a peer may announce; every one is checked before any allocation. */
export interface FrameLimits {
  /** Longest header line including its `\n`. */
  maxHeaderBytes: number;
  /** Longest audio one frame may carry, in seconds at the frame's own rate. */
  maxAudioSeconds: number;
  /** Longest UTF-8 text payload (transcript, reply text). */
  maxTextBytes: number;
  /** Longest device, request or turn id in UTF-8 bytes. */
  maxIdBytes: number;
}

export const DEFAULT_FRAME_LIMITS: Readonly<FrameLimits> = Object.freeze({
  /** 1 KiB: a v1 header is under 150 bytes and a v2 header under 400. */
  maxHeaderBytes: 1024,
  /** 30 s: the gateway's maximum utterance length (spec 5.4), so one frame holds one utterance. */
  maxAudioSeconds: 30,
  /** 16 KiB: several paragraphs of reply text. */
  maxTextBytes: 16 * 1024,
  maxIdBytes: MAX_ID_BYTES,
});

/** Why a frame could not be decoded or encoded. */
export type FrameErrorCode =
  | "header_too_long"
  | "bad_utf8"
  | "header_fields"
  | "bad_id"
  | "bad_number"
  | "bad_sample_rate"
  | "payload_too_large"
  | "odd_pcm_length"
  | "bad_json"
  | "bad_type"
  | "bad_field"
  | "not_hello"
  | "bad_version"
  | "decoder_failed";

/** The one error kind this module raises: names the field and the offending value. */
export class FrameError extends Error {
  override name = "FrameError";
  constructor(
    readonly code: FrameErrorCode,
    readonly field: string,
    readonly value: unknown,
    message: string,
  ) {
    super(message);
  }
}

/** One v1 frame (spec 4.2): the same shape for requests and responses. */
export interface V1Frame {
  device: string;
  rate: SampleRate;
  request: string;
  /** int16 mono little-endian PCM; empty means "nothing to say" in a response. */
  pcm: Uint8Array;
}

/** Optional features a v2 peer announces in its hello. */
export const V2_CAPABILITIES = [
  "stream",
  "cancel",
  "text",
  "ping",
  "stages",
  "speculate",
] as const;

/** Who started the connection (`gateway`) and who answers (`server`). */
export type Role = "gateway" | "server";

/** First message on a v2 connection, in both directions. */
export interface HelloMessage {
  type: "hello";
  version: 2;
  role: Role;
  capabilities: string[];
  /** Sender's wall clock, ms since the Unix epoch (may carry fractions); on every message. */
  ts: number;
}
/** Gateway → server: a user started speaking; audio of this turn follows at `rate`. */
export interface StartMessage {
  type: "start";
  turn: string;
  device: string;
  rate: SampleRate;
  ts: number;
}
/** Either way: a chunk of a turn's audio (user speech in, reply speech out). */
export interface AudioMessage {
  type: "audio";
  turn: string;
  /** 0, 1, 2, ... per turn and direction, so a gap or repeat is visible. */
  seq: number;
  rate: SampleRate;
  ts: number;
  pcm: Uint8Array;
}
/**
 * Gateway → server: the utterance ended (`ts` = when its last speech sample was captured).
 * Server → gateway: the reply is complete; `stages` carries per-stage milliseconds.
 */
export interface EndMessage {
  type: "end";
  turn: string;
  ts: number;
  stages?: Record<string, number>;
}
/**
 * Gateway → server: the user went quiet inside the turn; `end` may follow. A server with the
 * `speculate` capability may start STT on the audio so far, and discards it if more audio comes.
 */
export interface PauseMessage {
  type: "pause";
  turn: string;
  ts: number;
}
/** Gateway → server: barge-in or hang-up; `played_ms` is how much of the reply the user heard. */
export interface CancelMessage {
  type: "cancel";
  turn: string;
  ts: number;
  played_ms: number;
}
/** Server → gateway: what was heard (`transcript`) and what is being answered (`reply`). */
export interface TextMessage {
  type: "text";
  turn: string;
  kind: "transcript" | "reply";
  ts: number;
  text: string;
}
/** Either way: something went wrong, for one turn or (without `turn`) for the connection. */
export interface ErrorMessage {
  type: "error";
  turn?: string;
  code: string;
  message: string;
  ts: number;
}
/** Liveness probe; the peer answers with a pong carrying the same id. */
export interface PingMessage {
  type: "ping";
  id: number;
  ts: number;
}
export interface PongMessage {
  type: "pong";
  id: number;
  ts: number;
}

export type V2Message =
  | HelloMessage
  | StartMessage
  | AudioMessage
  | EndMessage
  | PauseMessage
  | CancelMessage
  | TextMessage
  | ErrorMessage
  | PingMessage
  | PongMessage;

export type V2MessageType = V2Message["type"];
const V2_TYPES: readonly V2MessageType[] = [
  "hello",
  "start",
  "audio",
  "end",
  "pause",
  "cancel",
  "text",
  "error",
  "ping",
  "pong",
];

/** What the decoder yields: a v1 frame or a v2 message. */
export type Decoded = { version: 1; frame: V1Frame } | { version: 2; message: V2Message };

/** Longest error text a v2 error message carries, so its header always fits the line limit. */
export const MAX_ERROR_MESSAGE_CHARS = 300;
/** Longest `code` string in an error message. */
const MAX_ERROR_CODE_CHARS = 40;
/** At most this many `stages` entries on an end message. */
const MAX_STAGES = 16;
/** At most this many capabilities in a hello. */
const MAX_CAPABILITIES = 16;
/** Longest stage or capability name. */
const MAX_NAME_CHARS = 32;

const NEWLINE = 0x0a;
const EMPTY_PAYLOAD = new Uint8Array(0);
const OPEN_BRACE = 0x7b;
const textEncoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function fail(code: FrameErrorCode, field: string, value: unknown, message: string): never {
  throw new FrameError(code, field, value, message);
}

function show(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function checkId(field: string, value: unknown, limits: FrameLimits): string {
  const problem = idProblem(value, limits.maxIdBytes);
  if (problem !== undefined) fail("bad_id", field, value, `${field} ${show(value)} ${problem}`);
  return value as string;
}

function checkRate(field: string, value: unknown): SampleRate {
  if (!(ALLOWED_SAMPLE_RATES as readonly unknown[]).includes(value)) {
    fail(
      "bad_sample_rate",
      field,
      value,
      `${field} ${show(value)} is not allowed, expected one of ${ALLOWED_SAMPLE_RATES.join("|")}`,
    );
  }
  return value as SampleRate;
}

/** Largest PCM payload a frame at `rate` may carry under `limits`. */
export function maxPcmBytes(rate: SampleRate, limits: FrameLimits = DEFAULT_FRAME_LIMITS): number {
  return Math.floor(limits.maxAudioSeconds * rate) * 2;
}

function checkPcmLength(field: string, length: number, rate: SampleRate, limits: FrameLimits) {
  const max = maxPcmBytes(rate, limits);
  if (length > max) {
    fail(
      "payload_too_large",
      field,
      length,
      `${field} ${length} exceeds ${max} bytes (${limits.maxAudioSeconds} s at ${rate} Hz)`,
    );
  }
  if (length % 2 !== 0) {
    fail("odd_pcm_length", field, length, `${field} ${length} is odd, int16 PCM needs even`);
  }
}

// ---------------------------------------------------------------------------------------------
// v1

/** A v1 number field: plain decimal digits only (no sign, no spaces), at most `maxDigits`. */
function checkDecimal(name: string, text: string, maxDigits: number): void {
  if (text.length === 0 || text.length > maxDigits || !/^[0-9]+$/.test(text)) {
    fail("bad_number", name, text, `${name} ${show(text)} is not a decimal integer`);
  }
}

function parseV1Header(
  line: string,
  limits: FrameLimits,
): { head: Omit<V1Frame, "pcm">; length: number } {
  const fields = line.split("|");
  if (fields.length !== 4) {
    fail(
      "header_fields",
      "header",
      line,
      `frame header has ${fields.length} fields, expected 4 (device|length|rate|request): ${
        show(line)
      }`,
    );
  }
  const [deviceText, lengthText, rateText, requestText] = fields;
  const device = checkId("device", deviceText, limits);
  checkDecimal("audio_length", lengthText, 10);
  checkDecimal("sample_rate", rateText, 6);
  const rate = checkRate("sample_rate", Number(rateText));
  const request = checkId("request_id", requestText, limits);
  const length = Number(lengthText);
  checkPcmLength("audio_length", length, rate, limits);
  return { head: { device, rate, request }, length };
}

/** Encodes one v1 frame (spec 4.2). Throws {@link FrameError} when a field is invalid. */
export function encodeV1(frame: V1Frame, limits: FrameLimits = DEFAULT_FRAME_LIMITS): Uint8Array {
  checkId("device", frame.device, limits);
  checkRate("sample_rate", frame.rate);
  checkId("request_id", frame.request, limits);
  checkPcmLength("audio_length", frame.pcm.length, frame.rate, limits);
  const header = textEncoder.encode(
    `${frame.device}|${frame.pcm.length}|${frame.rate}|${frame.request}\n`,
  );
  const out = new Uint8Array(header.length + frame.pcm.length);
  out.set(header, 0);
  out.set(frame.pcm, header.length);
  return out;
}

// ---------------------------------------------------------------------------------------------
// v2

type Json = Record<string, unknown>;

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

function oneOf<T extends string>(header: Json, name: string, allowed: readonly T[]): T {
  const value = field(header, name);
  if (!allowed.includes(value as T)) {
    fail("bad_field", name, value, `${name} ${show(value)} is not one of ${allowed.join("|")}`);
  }
  return value as T;
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

function stages(header: Json): Record<string, number> | undefined {
  const value = field(header, "stages");
  if (value === undefined) return undefined;
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
function v2PayloadLength(type: V2MessageType, header: Json, limits: FrameLimits): number {
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

function decodeText(payload: Uint8Array): string {
  try {
    return strictUtf8.decode(payload);
  } catch {
    fail(
      "bad_utf8",
      "text",
      payload.length,
      `text payload of ${payload.length} bytes is not valid UTF-8`,
    );
  }
}

/** Completes a message validated from its header with the payload that followed it. */
function attachPayload(message: V2Message, payload: Uint8Array): V2Message {
  if (message.type === "audio") message.pcm = payload;
  else if (message.type === "text") message.text = decodeText(payload);
  return message;
}

function buildV2(
  type: V2MessageType,
  header: Json,
  payload: Uint8Array,
  limits: FrameLimits,
): V2Message {
  const ts = nonNegative(header, "ts", false);
  switch (type) {
    case "hello": {
      if (field(header, "version") !== 2) {
        fail(
          "bad_version",
          "version",
          field(header, "version"),
          `version ${show(field(header, "version"))} is not supported, expected 2`,
        );
      }
      return {
        type,
        version: 2,
        role: oneOf(header, "role", ["gateway", "server"] as const),
        capabilities: names(header, "capabilities"),
        ts,
      };
    }
    case "start":
      return {
        type,
        turn: checkId("turn", field(header, "turn"), limits),
        device: checkId("device", field(header, "device"), limits),
        rate: checkRate("rate", field(header, "rate")),
        ts,
      };
    case "audio":
      return {
        type,
        turn: checkId("turn", field(header, "turn"), limits),
        seq: nonNegative(header, "seq", true),
        rate: checkRate("rate", field(header, "rate")),
        ts,
        pcm: payload,
      };
    case "end": {
      const message: EndMessage = {
        type,
        turn: checkId("turn", field(header, "turn"), limits),
        ts,
      };
      const timings = stages(header);
      if (timings !== undefined) message.stages = timings;
      return message;
    }
    case "pause":
      return { type, turn: checkId("turn", field(header, "turn"), limits), ts };
    case "cancel":
      return {
        type,
        turn: checkId("turn", field(header, "turn"), limits),
        ts,
        played_ms: nonNegative(header, "played_ms", false),
      };
    case "text":
      return {
        type,
        turn: checkId("turn", field(header, "turn"), limits),
        kind: oneOf(header, "kind", ["transcript", "reply"] as const),
        ts,
        text: decodeText(payload),
      };
    case "error": {
      const message: ErrorMessage = {
        type,
        code: shortString(header, "code", MAX_ERROR_CODE_CHARS),
        message: shortString(header, "message", MAX_ERROR_MESSAGE_CHARS),
        ts,
      };
      const turn = field(header, "turn");
      if (turn !== undefined) message.turn = checkId("turn", turn, limits);
      return message;
    }
    case "ping":
    case "pong":
      return { type, id: nonNegative(header, "id", true), ts };
  }
}

function parseV2Header(line: string): { type: V2MessageType; header: Json } {
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

/** Serializes the header fields of `message` in a fixed order (the golden vectors rely on it). */
function v2Header(message: V2Message, payloadLength: number): Json {
  switch (message.type) {
    case "hello":
      return {
        type: message.type,
        version: message.version,
        role: message.role,
        capabilities: message.capabilities,
        ts: message.ts,
      };
    case "start":
      return {
        type: message.type,
        turn: message.turn,
        device: message.device,
        rate: message.rate,
        ts: message.ts,
      };
    case "audio":
      return {
        type: message.type,
        turn: message.turn,
        seq: message.seq,
        rate: message.rate,
        ts: message.ts,
        length: payloadLength,
      };
    case "end":
      return message.stages === undefined
        ? { type: message.type, turn: message.turn, ts: message.ts }
        : { type: message.type, turn: message.turn, ts: message.ts, stages: message.stages };
    case "pause":
      return { type: message.type, turn: message.turn, ts: message.ts };
    case "cancel":
      return {
        type: message.type,
        turn: message.turn,
        ts: message.ts,
        played_ms: message.played_ms,
      };
    case "text":
      return {
        type: message.type,
        turn: message.turn,
        kind: message.kind,
        ts: message.ts,
        length: payloadLength,
      };
    case "error":
      return message.turn === undefined
        ? { type: message.type, code: message.code, message: message.message, ts: message.ts }
        : {
          type: message.type,
          turn: message.turn,
          code: message.code,
          message: message.message,
          ts: message.ts,
        };
    case "ping":
    case "pong":
      return { type: message.type, id: message.id, ts: message.ts };
  }
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
  const out = new Uint8Array(line.length + payload.length);
  out.set(line, 0);
  out.set(payload, line.length);
  return out;
}

/** An error message whose text is cut to fit the header limit; for answering bad input. */
export function errorMessage(
  code: string,
  message: string,
  options: { turn?: string; ts?: number } = {},
): ErrorMessage {
  const error: ErrorMessage = {
    type: "error",
    code: code.slice(0, MAX_ERROR_CODE_CHARS),
    message: (message.length > 0 ? message : code).slice(0, MAX_ERROR_MESSAGE_CHARS),
    ts: options.ts ?? Date.now(),
  };
  if (options.turn !== undefined && idProblem(options.turn) === undefined) {
    error.turn = options.turn;
  }
  return error;
}

// ---------------------------------------------------------------------------------------------
// The incremental decoder

/** Options for {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** `auto` (default, servers): the first line picks v1 or v2. Clients know what they speak. */
  version?: 1 | 2 | "auto";
  limits?: Partial<FrameLimits>;
}

/**
 * Reads frames from a byte stream in any chunking. After the first error the stream cannot be
 * re-synchronized (a payload of unknown length may follow), so every later push throws
 * `decoder_failed`: answer with an error (v2) or close (v1).
 */
export class FrameDecoder {
  readonly limits: Readonly<FrameLimits>;
  #version: 1 | 2 | undefined;
  #sawHello = false;
  #failed: FrameError | undefined;
  #header: Uint8Array;
  #headerFill = 0;
  /** The frame whose payload is being read, or undefined while reading a header. */
  #pending:
    | { finish: (payload: Uint8Array) => Decoded; payload: Uint8Array; fill: number }
    | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.limits = Object.freeze({ ...DEFAULT_FRAME_LIMITS, ...options.limits });
    this.#version = options.version === "auto" || options.version === undefined
      ? undefined
      : options.version;
    this.#header = new Uint8Array(this.limits.maxHeaderBytes);
  }

  /** 1 or 2 once known (immediately for clients, after the first line for `auto`). */
  get version(): 1 | 2 | undefined {
    return this.#version;
  }

  /** Bytes held for a frame not yet complete; never more than the limits allow. */
  get bufferedBytes(): number {
    return this.#headerFill + (this.#pending?.fill ?? 0);
  }

  /** Feeds bytes; returns every frame they complete, in order. Throws {@link FrameError}. */
  push(chunk: Uint8Array): Decoded[] {
    if (this.#failed) {
      fail(
        "decoder_failed",
        "stream",
        this.#failed.code,
        `stream already failed: ${this.#failed.message}`,
      );
    }
    try {
      return this.#consume(chunk);
    } catch (error) {
      this.#failed = error instanceof FrameError
        ? error
        : new FrameError("bad_field", "frame", String(error), `unexpected decoder error: ${error}`);
      this.#headerFill = 0;
      this.#pending = undefined;
      throw this.#failed;
    }
  }

  #consume(chunk: Uint8Array): Decoded[] {
    const out: Decoded[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      const pending = this.#pending;
      if (pending) {
        const take = Math.min(pending.payload.length - pending.fill, chunk.length - offset);
        pending.payload.set(chunk.subarray(offset, offset + take), pending.fill);
        pending.fill += take;
        offset += take;
        if (pending.fill === pending.payload.length) {
          this.#pending = undefined;
          out.push(pending.finish(pending.payload));
        }
        continue;
      }
      const newline = chunk.indexOf(NEWLINE, offset);
      const end = newline === -1 ? chunk.length : newline + 1;
      const lineBytes = this.#headerFill + end - offset;
      if (lineBytes > this.limits.maxHeaderBytes) {
        fail(
          "header_too_long",
          "header",
          lineBytes,
          `header line exceeds ${this.limits.maxHeaderBytes} bytes without a newline`,
        );
      }
      this.#header.set(chunk.subarray(offset, end), this.#headerFill);
      this.#headerFill += end - offset;
      offset = end;
      if (newline === -1) break;
      const line = this.#header.subarray(0, this.#headerFill - 1);
      this.#headerFill = 0;
      const frame = this.#startFrame(line);
      if (frame) out.push(frame);
    }
    return out;
  }

  /** Parses a header line; returns the frame if it has no payload, else arms `#pending`. */
  #startFrame(lineBytes: Uint8Array): Decoded | undefined {
    if (this.#version === undefined) this.#version = lineBytes[0] === OPEN_BRACE ? 2 : 1;
    let line: string;
    try {
      line = strictUtf8.decode(lineBytes);
    } catch {
      fail(
        "bad_utf8",
        "header",
        lineBytes.length,
        `header line of ${lineBytes.length} bytes is not valid UTF-8`,
      );
    }
    const limits = this.limits;
    let length: number;
    let finish: (payload: Uint8Array) => Decoded;
    if (this.#version === 1) {
      const parsed = parseV1Header(line, limits);
      length = parsed.length;
      finish = (pcm) => ({ version: 1, frame: { ...parsed.head, pcm } });
    } else {
      const { type, header } = parseV2Header(line);
      if (!this.#sawHello && type !== "hello") {
        fail("not_hello", "type", type, `first v2 message is ${show(type)}, expected "hello"`);
      }
      this.#sawHello = true;
      length = v2PayloadLength(type, header, limits);
      // Validated once, from the header, before any payload is read; the payload is attached.
      const message = buildV2(type, header, EMPTY_PAYLOAD, limits);
      if (length === 0) return { version: 2, message };
      finish = (payload) => ({ version: 2, message: attachPayload(message, payload) });
    }
    if (length === 0) return finish(new Uint8Array(0));
    this.#pending = { finish, payload: new Uint8Array(length), fill: 0 };
    return undefined;
  }
}
