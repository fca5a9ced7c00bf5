/**
 * What a protocol version of the audio socket needs from its connection, and what the connection
 * needs from a protocol version: the small interfaces between `socket_connection.ts` (bytes,
 * timers, writes) and `v1_adapter.ts` / `v2_adapter.ts` (what the frames mean). Neither side
 * imports the other; both import this.
 */
import type { Decoded, FrameLimits } from "../shared/frame_codec.ts";
import type { PendingCommits } from "./turn_commits.ts";
import type { IpRange } from "../shared/ip_ranges.ts";
import type { Logger } from "../shared/log.ts";
import { type InferenceQueue, QueueError } from "./inference_queue.ts";
import type { Notices } from "./notices.ts";
import type { CameraFrames } from "./camera_frames.ts";
import type { Pipeline } from "./pipeline.ts";

/** How long a peer may take, in ms. */
export interface AudioSocketTimeouts {
  /** From a frame's first byte to its last: 10 s, the gateway's own reply timeout (spec 4.4). */
  frameMs: number;
  /** Silence on a v2 connection: the gateway pings every few seconds, so 60 s means it is gone. */
  idleMs: number;
  /** From a v2 turn's `start` to its `end`: the 30 s utterance limit (spec 5.4) plus 15 s. */
  turnMs: number;
}

/** Who may use the audio socket (docs/protocol.md "Authentication", spec 17.2). */
export interface SocketAccess {
  /** The shared secret v2 peers prove with HMAC; undefined = no authentication (opted out). */
  secret: string | undefined;
  /** Addresses allowed to connect at all; empty = any address. */
  allow: readonly IpRange[];
  /** A connection not authenticated this long after it opened is closed. */
  authTimeoutMs: number;
}

/** When a waiting turn hears about its wait (docs/protocol.md "Waiting for inference"), ms. */
export interface QueueNoticeTiming {
  /** A turn still queued this long after its `end` gets the spoken "one moment" (QUEUE_NOTICE_MS). */
  noticeMs: number;
  /** A queued turn's `state` event is repeated at most this often, when its place changed. */
  updateMs: number;
}

/** What every connection of one audio socket shares. */
export interface SocketSettings {
  pipeline: Pipeline;
  queue: InferenceQueue;
  /** Spoken "one moment" and the overload apology; absent: both are sent without audio. */
  notices?: Notices;
  /** Camera frames (`image`, `frame_request`); absent: the server does not announce `image`. */
  cameras?: CameraFrames;
  queueTiming: QueueNoticeTiming;
  log: Logger | undefined;
  limits: FrameLimits;
  timeouts: AudioSocketTimeouts;
  access: SocketAccess;
  /**
   * Answered turns of closed connections, not committed yet: a reconnected gateway may continue
   * or commit them (turn_commits.ts). Shared by the socket's connections; turn ids are random
   * per gateway, and a continuation must name the same device.
   */
  orphans: PendingCommits;
}

/** The connection as a protocol version sees it. */
export interface ConnectionLink {
  /** `host:port` of the peer, for logs. */
  readonly peer: string;
  readonly settings: SocketSettings;
  /** False once the connection is closed or closing: replies are no longer written. */
  readonly open: boolean;
  /** Queues bytes for the peer, in order; dropped once the connection is not open. */
  send(bytes: Uint8Array): void;
  /** Closes at once, dropping unsent bytes; cancels the protocol's work. */
  close(reason: string): void;
  /** Reads nothing more and closes once everything queued so far is written. */
  closeAfterWrites(reason: string): void;
  /** Fields the server adds to its v2 hello (authentication: `nonce`, `proof`). */
  helloFields(): { nonce?: string; proof?: string };
}

/** One protocol version spoken on a connection (chosen by the connection's first byte). */
export interface SocketProtocol {
  /** True when the peer pings, so that silence means it is gone (v2). */
  readonly pinged: boolean;
  /** Handles one decoded frame; may throw only on a bug of ours. */
  receive(item: Decoded): void;
  /** The connection failed (bad bytes, a stalled frame, a bug): tell the peer if the protocol can. */
  fail(code: string, message: string): void;
  /** The connection is going away: abort every turn or request in flight. */
  stop(reason: string): void;
}

/** Logs a turn's failure: a queue refusal (busy, cancelled) is expected, anything else is not. */
export function logTurnError(
  link: ConnectionLink,
  device: string,
  turn: string,
  error: unknown,
): void {
  const log = link.settings.log;
  if (error instanceof QueueError) {
    log?.warn(`turn ${error.code}`, { peer: link.peer, device, turn });
  } else {
    log?.error("turn failed", { peer: link.peer, device, turn, error });
  }
}
