/**
 * The TCP socket the gateway sends utterances to (spec 6.1), speaking both protocol versions of
 * docs/protocol.md on the same port; the first byte of a connection picks one.
 *
 * One utterance through the socket, in order: this listener accepts the connection →
 * `socket_connection.ts` decodes its frames → `v2_adapter.ts` (hello, ping, camera frames) →
 * `v2_turns.ts` (the turn table, with speculation on a pause) or `v1_adapter.ts` (the spec's
 * request chain) → the shared {@link InferenceQueue} → `pipeline.ts`, whose reply goes back the
 * same way.
 *
 * Every connection is independent: inference goes through the shared queue, writes are queued
 * per connection, and timers end frames that stall half-way, turns that never end, and silent
 * v2 connections. Nothing a peer sends can throw out of a connection's handler.
 *
 * Who may connect (spec 17.2): with `allow` set, only those addresses (others are closed at
 * once); with `secret` set, a peer must prove it (socket_auth.ts) within `authTimeoutMs`.
 * Connections not yet admitted have their own small cap ({@link DEFAULT_MAX_PENDING}): at that
 * cap the oldest of them makes room, so a flood of unauthenticated connections never takes a
 * slot from a gateway, nor keeps one out for longer than its handshake takes. Optional TLS
 * (`tls`: PEM certificate and key, Deno.listenTls).
 */
import { MAX_ORPHANED_COMMITS, PendingCommits } from "./turn_commits.ts";
import { MAX_UTTERANCE_MS } from "../shared/audio.ts";
import { DEFAULT_FRAME_LIMITS, type FrameLimits } from "../shared/frame_codec.ts";
import { ensureAudioSecret } from "../shared/audio_auth.ts";
import { inRanges, type IpRange, isLoopbackHost } from "../shared/ip_ranges.ts";
import type { Logger } from "../shared/log.ts";
import type { InferenceQueue } from "./inference_queue.ts";
import type { Notices } from "./notices.ts";
import type { CameraFrames } from "./camera_frames.ts";
import type { Pipeline } from "./pipeline.ts";
import { DEFAULT_AUTH_TIMEOUT_MS } from "./socket_auth.ts";
import { Connection, type ConnectionEvents } from "./socket_connection.ts";
import type { AudioSocketTimeouts, QueueNoticeTiming, SocketSettings } from "./socket_link.ts";

export type { AudioSocketTimeouts } from "./socket_link.ts";
export { V1_REPLY_RATE } from "./v1_adapter.ts";

/** A turn may take this long beyond the longest utterance to reach its `end` (slow links). */
const TURN_END_MARGIN_MS = 15_000;

/**
 * The audio socket's timeouts (ms): a frame's bytes within 10 s (spec 4.4), a v2 connection
 * silent 60 s is gone (the gateway pings every few seconds), a turn's `end` within the 30 s
 * utterance limit plus {@link TURN_END_MARGIN_MS}.
 */
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
/** Connections still authenticating at once; a gateway needs one for a round trip. */
export const DEFAULT_MAX_PENDING = 16;

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
  /** Not-yet-admitted connections held at once (default {@link DEFAULT_MAX_PENDING}). */
  maxPending?: number;
  /** The shared secret v2 peers must prove; unset = no authentication (an explicit opt-out). */
  secret?: string;
  /** Only these addresses may connect; empty or unset = any (then v1 is refused with a secret). */
  allow?: readonly IpRange[];
  /** Default {@link DEFAULT_AUTH_TIMEOUT_MS}. */
  authTimeoutMs?: number;
  /** PEM certificate (chain) and private key: serve TLS instead of plain TCP. */
  tls?: { cert: string; key: string };
  /** Security events (spec 17.3); default: a warn line `audit: <event>` in `log`. */
  audit?: (event: string, fields: Record<string, unknown>) => void;
}

/** What {@link socketAccessOptions} reads: the server config's `audioSocket`. */
export interface SocketAccessSettings {
  auth: boolean;
  allow: readonly IpRange[];
  tls?: { cert: string; key: string };
}

/**
 * The security options of {@link AudioSocketServer.listen} for a server: the data directory's
 * secret (made on first start) unless authentication is off, the allow-list, and the TLS files
 * read. Logs one warning line when the socket is reachable beyond loopback without
 * authentication. Throws when a TLS file cannot be read.
 */
export function socketAccessOptions(
  host: string,
  dataDir: string,
  settings: SocketAccessSettings,
  log?: Logger,
): Pick<AudioSocketOptions, "secret" | "allow" | "tls"> {
  const options: Pick<AudioSocketOptions, "secret" | "allow" | "tls"> = {
    allow: settings.allow,
  };
  if (settings.auth) options.secret = ensureAudioSecret(dataDir);
  else if (!isLoopbackHost(host)) {
    log?.warn(
      `audio socket on ${host} accepts any peer without authentication (AUDIO_SOCKET_AUTH=off)` +
        (settings.allow.length > 0 ? " from AUDIO_SOCKET_ALLOW" : ""),
    );
  }
  if (settings.tls) {
    options.tls = {
      cert: Deno.readTextFileSync(settings.tls.cert),
      key: Deno.readTextFileSync(settings.tls.key),
    };
  }
  return options;
}

/** The listening socket and its connections. */
export class AudioSocketServer {
  readonly hostname: string;
  readonly port: number;
  #listener: Deno.Listener<Deno.Conn<Deno.NetAddr>, Deno.NetAddr>;
  /** Admitted connections (authenticated, allow-listed, or no authentication configured). */
  #connections = new Set<Connection>();
  /** Connections not admitted yet, oldest first. */
  #pending = new Set<Connection>();
  #settings: SocketSettings;
  #maxConnections: number;
  #maxPending: number;
  #events: ConnectionEvents;
  #accepting: Promise<void>;

  private constructor(
    listener: Deno.Listener<Deno.Conn<Deno.NetAddr>, Deno.NetAddr>,
    options: AudioSocketOptions,
  ) {
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
      access: {
        secret: options.secret,
        allow: options.allow ?? [],
        authTimeoutMs: options.authTimeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS,
      },
      orphans: new PendingCommits({
        max: MAX_ORPHANED_COMMITS,
        onError: (turn, error) =>
          options.log?.error("cannot apply a turn's effects", { turn, error }),
      }),
    };
    this.#maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    const log = options.log;
    this.#events = {
      admitted: (connection) => this.#admitted(connection),
      audit: options.audit ?? ((event, fields) => log?.warn(`audit: ${event}`, fields)),
    };
    this.#accepting = this.#accept();
  }

  /** Starts listening on `options.host:options.port` (TLS when `options.tls` is set). */
  static listen(options: AudioSocketOptions): AudioSocketServer {
    const address = { hostname: options.host, port: options.port };
    const listener = options.tls
      ? Deno.listenTls({ ...address, cert: options.tls.cert, key: options.tls.key })
      : Deno.listen({ ...address, transport: "tcp" });
    return new AudioSocketServer(listener, options);
  }

  /** Whether peers must authenticate (a secret is set). */
  get authenticates(): boolean {
    return this.#settings.access.secret !== undefined;
  }

  /** Admitted connections open now. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Connections open now that are not admitted yet (authenticating). */
  get pending(): number {
    return this.#pending.size;
  }

  /** Stops listening, closes every connection and cancels their turns. */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    for (const connection of [...this.#connections, ...this.#pending]) {
      connection.close("server shutting down");
    }
    // Nobody can continue them now: their effects apply (an accepted request is not lost).
    this.#settings.orphans.commitAll();
    await this.#accepting;
  }

  /** A pending connection became admitted: it takes a full slot, if one is free. */
  #admitted(connection: Connection): void {
    this.#pending.delete(connection);
    if (this.#connections.size >= this.#maxConnections) this.#evictSilent();
    if (this.#connections.size >= this.#maxConnections) {
      this.#settings.log?.warn("connection refused: too many", { max: this.#maxConnections });
      connection.close(`too many connections (${this.#maxConnections})`);
      return;
    }
    this.#connections.add(connection);
  }

  /** Closes `conn` at once, ignoring a peer that is already gone. */
  #refuse(conn: Deno.Conn): void {
    try {
      conn.close();
    } catch {
      // Peer already gone.
    }
  }

  async #accept(): Promise<void> {
    const log = this.#settings.log;
    const { allow } = this.#settings.access;
    try {
      for await (const conn of this.#listener) {
        const address = conn.remoteAddr.hostname;
        if (allow.length > 0 && !inRanges(address, allow)) {
          this.#events.audit("address_refused", { address, detail: "not in AUDIO_SOCKET_ALLOW" });
          this.#refuse(conn);
          continue;
        }
        // An allow-listed address is trusted to hold a slot (a v1 gateway may stay quiet).
        const trusted = allow.length > 0;
        if (trusted && this.#connections.size >= this.#maxConnections) this.#evictSilent();
        if (trusted && this.#connections.size >= this.#maxConnections) {
          log?.warn("connection refused: too many", { max: this.#maxConnections });
          this.#refuse(conn);
          continue;
        }
        if (!trusted && this.#pending.size >= this.#maxPending) {
          // The oldest unauthenticated connection makes room; a real gateway authenticates in
          // a round trip, long before a flood could push it out.
          const oldest = this.#pending.values().next().value!;
          this.#pending.delete(oldest);
          oldest.close(`not authenticated, and ${this.#maxPending} connections are waiting`);
        }
        if ("setNoDelay" in conn) {
          try {
            (conn as Deno.TcpConn).setNoDelay(true);
          } catch {
            // Not fatal: only adds latency.
          }
        }
        const connection = new Connection(conn, this.#settings, this.#events, trusted);
        (trusted ? this.#connections : this.#pending).add(connection);
        connection.serve().finally(() => {
          this.#connections.delete(connection);
          this.#pending.delete(connection);
        });
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
