/**
 * The TCP socket the gateway sends utterances to (spec 6.1), speaking both protocol versions of
 * docs/protocol.md on the same port; the first byte of a connection picks one.
 *
 * One utterance through the socket, in order: this listener accepts the connection →
 * `socket_connection.ts` decodes its frames → `v2_turns.ts` (the turn table, with speculation
 * on a pause) or `v1_adapter.ts` (the spec's request chain) → the shared
 * {@link InferenceQueue} → `pipeline.ts`, whose reply goes back the same way.
 *
 * Every connection is independent: inference goes through the shared queue, writes are queued
 * per connection, and timers end frames that stall half-way, turns that never end, and silent
 * v2 connections. Nothing a peer sends can throw out of a connection's handler.
 */
import { MAX_UTTERANCE_MS } from "../shared/audio.ts";
import { DEFAULT_FRAME_LIMITS, type FrameLimits } from "../shared/frame_codec.ts";
import type { Logger } from "../shared/log.ts";
import type { InferenceQueue } from "./inference_queue.ts";
import type { Notices } from "./notices.ts";
import type { CameraFrames } from "./camera_frames.ts";
import type { Pipeline } from "./pipeline.ts";
import { Connection } from "./socket_connection.ts";
import type { AudioSocketTimeouts, QueueNoticeTiming, SocketSettings } from "./socket_link.ts";

export type { AudioSocketTimeouts } from "./socket_link.ts";
export { V1_REPLY_RATE } from "./v1_adapter.ts";

/** A turn may take this long beyond the longest utterance to reach its `end` (slow links). */
const TURN_END_MARGIN_MS = 15_000;

export const DEFAULT_TIMEOUTS: Readonly<AudioSocketTimeouts> = Object.freeze({
  frameMs: 10_000,
  idleMs: 60_000,
  turnMs: MAX_UTTERANCE_MS + TURN_END_MARGIN_MS,
});

/**
 * "One moment" after 1.5 s of waiting: a silence that long after speaking already feels like
 * the assistant did not hear; `state` updates every 2 s keep a gateway's 10 s timeout re-armed.
 */
export const DEFAULT_QUEUE_TIMING: Readonly<QueueNoticeTiming> = Object.freeze({
  noticeMs: 1500,
  updateMs: 2000,
});

/** Connections served at once; a home has a gateway or two, so 32 only stops a flood. */
export const DEFAULT_MAX_CONNECTIONS = 32;

/** Options of {@link AudioSocketServer.listen}. */
export interface AudioSocketOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  pipeline: Pipeline;
  queue: InferenceQueue;
  notices?: Notices;
  /** Camera frames from gateways (server/camera_frames.ts). */
  cameras?: CameraFrames;
  queueTiming?: Partial<QueueNoticeTiming>;
  log?: Logger;
  limits?: Partial<FrameLimits>;
  timeouts?: Partial<AudioSocketTimeouts>;
  maxConnections?: number;
}

/** The listening socket and its connections. */
export class AudioSocketServer {
  readonly hostname: string;
  readonly port: number;
  #listener: Deno.TcpListener;
  #connections = new Set<Connection>();
  #settings: SocketSettings;
  #maxConnections: number;
  #accepting: Promise<void>;

  private constructor(listener: Deno.TcpListener, options: AudioSocketOptions) {
    this.#listener = listener;
    this.hostname = listener.addr.hostname;
    this.port = listener.addr.port;
    this.#settings = {
      pipeline: options.pipeline,
      queue: options.queue,
      notices: options.notices,
      cameras: options.cameras,
      queueTiming: { ...DEFAULT_QUEUE_TIMING, ...options.queueTiming },
      log: options.log,
      limits: { ...DEFAULT_FRAME_LIMITS, ...options.limits },
      timeouts: { ...DEFAULT_TIMEOUTS, ...options.timeouts },
    };
    this.#maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#accepting = this.#accept();
  }

  /** Starts listening on `options.host:options.port`. */
  static listen(options: AudioSocketOptions): AudioSocketServer {
    const listener = Deno.listen({ hostname: options.host, port: options.port, transport: "tcp" });
    return new AudioSocketServer(listener, options);
  }

  /** Connections open now. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Stops listening, closes every connection and cancels their turns. */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    for (const connection of this.#connections) connection.close("server shutting down");
    await this.#accepting;
  }

  async #accept(): Promise<void> {
    const log = this.#settings.log;
    try {
      for await (const conn of this.#listener) {
        if (this.#connections.size >= this.#maxConnections) this.#evictSilent();
        if (this.#connections.size >= this.#maxConnections) {
          log?.warn("connection refused: too many", { max: this.#maxConnections });
          try {
            conn.close();
          } catch {
            // Peer already gone.
          }
          continue;
        }
        try {
          conn.setNoDelay(true);
        } catch {
          // Not fatal: only adds latency.
        }
        const connection = new Connection(conn, this.#settings);
        this.#connections.add(connection);
        connection.serve().finally(() => this.#connections.delete(connection));
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) {
        log?.error("audio socket stopped accepting", { error });
      }
    }
  }

  /**
   * At the limit, the oldest connection that never sent a byte makes room: otherwise idle
   * connections could hold every slot and lock the gateway out. No first-byte timeout instead:
   * a v1 gateway may stay quiet until its first utterance, and it keeps its slot until needed.
   */
  #evictSilent(): void {
    for (const connection of this.#connections) {
      if (!connection.silent) continue;
      this.#connections.delete(connection);
      connection.close("evicted: never sent a byte, and the connection limit was reached");
      return;
    }
  }
}
