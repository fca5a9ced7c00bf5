/**
 * Protocol v2's messages (docs/protocol.md): what each message type carries, field by field,
 * with the capabilities a hello may announce, the limits of the fields, and the error message
 * to answer bad input with. `frame_v2.ts` validates, encodes and decodes them. Part of
 * `frame_codec.ts`, which re-exports what is public; import from there.
 */

import type { SampleRate } from "./frame_checks.ts";
import { idProblem } from "./ids.ts";

/** Optional features a v2 peer announces in its hello. */
export const V2_CAPABILITIES = [
  "stream",
  "cancel",
  "text",
  "ping",
  "stages",
  "speculate",
  "queue",
  "continue",
  "eot",
  // Camera frames (docs/video.md): `image` and `frame_request`.
  "image",
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
  /** Authentication (docs/protocol.md): the sender's fresh nonce, 64 hex digits. */
  nonce?: string;
  /** Server only: HMAC-SHA256 proof that it knows the secret, over both nonces (64 hex digits). */
  proof?: string;
}
/** Gateway → server, right after the server's hello: the gateway's HMAC proof (64 hex digits). */
export interface AuthMessage {
  type: "auth";
  proof: string;
  ts: number;
}
/**
 * Gateway → server: a user started speaking; audio of this turn follows at `rate`. With
 * `continues` (only to a server that announced `continue`), the turn supersedes the named
 * earlier turn of the same device and carries the whole request: that turn's audio, then this
 * one's (docs/turn_taking.md section 1).
 */
export interface StartMessage {
  type: "start";
  turn: string;
  device: string;
  rate: SampleRate;
  continues?: string;
  ts: number;
}
/** How finished the request heard so far sounds (server/end_of_turn.ts). */
export type TurnCompletion = "complete" | "incomplete" | "unknown";
/** The completions an `eot` may carry. */
export const TURN_COMPLETIONS: readonly TurnCompletion[] = ["complete", "incomplete", "unknown"];
/** Shortest silence an `eot` may ask for: one 20 ms frame. */
export const EOT_MIN_SILENCE_MS = 20;
/** Longest silence an `eot` may ask for, ms. */
export const EOT_MAX_SILENCE_MS = 5000;
/**
 * Server → gateway, only when both hellos announced `eot`: the end-of-turn hint after a
 * `pause`. `silence_ms` (integer, 20..5000) is the silence, counted from the last speech sample,
 * the gateway should require before `end`.
 */
export interface EotMessage {
  type: "eot";
  turn: string;
  completion: TurnCompletion;
  silence_ms: number;
  ts: number;
}
/**
 * Gateway → server, only when both hellos announced `continue`: the turn can no longer be
 * continued; the server applies its staged side effects and records it.
 */
export interface CommitMessage {
  type: "commit";
  turn: string;
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
  /** The `frame_request` this error answers (it ends only that request). */
  request?: string;
  code: string;
  message: string;
  ts: number;
}
/** Where a turn stands on the server, after its `end`: waiting for inference, or running. */
export type TurnState = "queued" | "running";
/**
 * Server → gateway, only when both hellos announced `queue`: the turn's place in the server's
 * inference queue. `queued` comes when the turn must wait (and again when its place changes,
 * at most every few seconds), with `position` (turns that run before it) and `wait_ms` (the
 * server's estimate); `running` when inference starts.
 */
export interface StateMessage {
  type: "state";
  turn: string;
  state: TurnState;
  position?: number;
  wait_ms?: number;
  ts: number;
}
/** Liveness probe; the peer answers with a pong carrying the same id. */
export interface PingMessage {
  type: "ping";
  id: number;
  ts: number;
}
/** The answer to a {@link PingMessage}: its `id`; `ts` is the answerer's clock (ms since the epoch). */
export interface PongMessage {
  type: "pong";
  id: number;
  ts: number;
}

// Camera frames (issue 13, docs/video.md): turn-independent, v2 only.

/** Most bytes of one `image` payload: a 1920×1080 JPEG at quality 80 is 200–400 KB. */
export const MAX_IMAGE_BYTES = 512 * 1024;
/** Largest frame side an `image` may announce (VP8 allows 16383; no camera NAILA takes). */
export const MAX_IMAGE_SIDE = 4096;

/** Why the gateway sent an `image`: motion, or the answer to a `frame_request`. */
export type ImageReason = "motion" | "grab";

/**
 * Gateway → server, with the `image` capability on both hellos: one JPEG camera frame of
 * `device`, independent of any turn. `capture_ts` is when the gateway decoded it (ms since the
 * epoch); `box` is `[x, y, width, height]` of the motion in frame pixels, `changed` the changed
 * fraction (0..1), both only with `reason` `motion`; `request` only with `reason` `grab`.
 */
export interface ImageMessage {
  type: "image";
  device: string;
  reason: ImageReason;
  request?: string;
  capture_ts: number;
  width: number;
  height: number;
  box?: [number, number, number, number];
  changed?: number;
  format: "jpeg";
  ts: number;
  jpeg: Uint8Array;
}

/** Server → gateway: send `device`'s latest frame (no older than `max_age_ms`) as an `image`
 * of reason `grab` with the same `request`, or an `error` naming the request (spec 11.4). */
export interface FrameRequestMessage {
  type: "frame_request";
  request: string;
  device: string;
  max_age_ms: number;
  ts: number;
}

/** Every v2 message (docs/protocol.md "v2 — streaming, barge-in, text, timings"). */
export type V2Message =
  | HelloMessage
  | AuthMessage
  | StartMessage
  | AudioMessage
  | EndMessage
  | PauseMessage
  | CancelMessage
  | TextMessage
  | ErrorMessage
  | StateMessage
  | EotMessage
  | CommitMessage
  | PingMessage
  | PongMessage
  | ImageMessage
  | FrameRequestMessage;

/** The `type` field of a v2 message: what the decoder dispatches on. */
export type V2MessageType = V2Message["type"];

/** Longest error text a v2 error message carries, so its header always fits the line limit. */
export const MAX_ERROR_MESSAGE_CHARS = 300;
/** Longest `code` string in an error message. */
export const MAX_ERROR_CODE_CHARS = 40;

/** An error message whose text is cut to fit the header limit; for answering bad input. */
export function errorMessage(
  code: string,
  message: string,
  options: { turn?: string; request?: string; ts?: number } = {},
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
  if (options.request !== undefined && idProblem(options.request) === undefined) {
    error.request = options.request;
  }
  return error;
}
