/**
 * The gateway's TCP connection to the AI server (spec 4.2-4.4, docs/protocol.md), without any
 * turn in it: connect, the protocol's hello, pings, a bounded write queue, and reconnects.
 *
 * - One connection (Deno.connect), reopened after any failure with exponential backoff and
 *   jitter ({@link backoffDelay}); devices' WebRTC sessions do not depend on it.
 * - A protocol with a hello (v2) is ready once the server's hello came (within
 *   {@link HELLO_TIMEOUT_MS}); it is pinged every {@link PING_INTERVAL_MS}, and no pong within
 *   {@link PONG_TIMEOUT_MS} of a ping closes and reopens the connection.
 * - More than {@link MAX_QUEUED_BYTES} waiting to be written means the server stopped reading:
 *   the connection is dropped and reopened.
 * - Decoded frames are routed by the protocol adapter (ai_protocol.ts); a turn's reply items go
 *   to {@link ConnectionEvents.turn}.
 * - With a `secret` (docs/protocol.md "Authentication"): the hello carries a fresh nonce, the
 *   server's hello must carry a proof of the same secret over both nonces (else the server is
 *   not ours and nothing is sent to it), and the gateway answers with its own proof in `auth`.
 *   Optional TLS (`tls.caCerts`: the CA that signed the server's certificate).
 *
 * @example
 * ```ts
 * const connection = new AiConnection({ host, port, protocol: V2_PROTOCOL, log }, events);
 * connection.start();
 * connection.send(bytes);
 * ```
 */
import { backoffDelay } from "../shared/async.ts";
import { gatewayProof, newNonce, proofMatches, serverProof } from "../shared/audio_auth.ts";
import { encodeV2 } from "../shared/frame_codec.ts";
import { type Decoded, FrameDecoder, type FrameRequestMessage } from "../shared/frame_codec.ts";
import type { Logger } from "../shared/log.ts";
import type { AiProtocol, TurnReply } from "./ai_protocol.ts";
import { MAX_UTTERANCE_MS } from "./utterance_segmenter.ts";

/** docs/protocol.md: "the gateway pings every few seconds". */
export const PING_INTERVAL_MS = 5_000;
/** No pong this long after a ping means the server is hung: reconnect. */
export const PONG_TIMEOUT_MS = 5_000;
/** First reconnect after 100 ms: a restarting server is back quickly. */
export const RECONNECT_MIN_MS = 100;
/** Reconnect attempts back off up to 5 s apart. */
export const RECONNECT_MAX_MS = 5_000;
/** Half of each wait is randomized so several gateways don't reconnect in step. */
const RECONNECT_JITTER = 0.5;
/** A server that does not say hello within 5 s is not a v2 server. */
const HELLO_TIMEOUT_MS = 5_000;
/** Longest wait for a last error message to be written before closing anyway. */
const CLOSE_FLUSH_MS = 1000;
/** The highest utterance rate (Hz) and int16 bytes: the largest v1 frame's size per second. */
const MAX_BYTES_PER_SECOND = 48_000 * 2;
/**
 * Bytes waiting for the socket before the server counts as not reading: three of the longest
 * utterances (30 s at 48 kHz, one v1 frame each). Past it the connection is dropped and reopened.
 */
export const MAX_QUEUED_BYTES = 3 * (MAX_UTTERANCE_MS / 1000) * MAX_BYTES_PER_SECOND;
/** Socket reads of up to 64 KiB: a second of 16 kHz PCM in a few reads, reused for all. */
const READ_BUFFER_BYTES = 64 * 1024;

/** Options of {@link AiConnection}. */
export interface AiConnectionOptions {
  host: string;
  port: number;
  protocol: AiProtocol;
  log: Logger;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  /**
   * The audio-socket secret to authenticate with (v2), or a function read at each connect (the
   * server on this machine may create it after the gateway started); unset = no authentication.
   */
  secret?: string | (() => string | undefined);
  /** Connect with TLS, trusting these PEM CA certificates (the system's when empty). */
  tls?: { caCerts: string[] };
}

/** What the connection tells its owner. */
export interface ConnectionEvents {
  /** The link is ready for turns (after the hellos, where the protocol has them). */
  ready(): void;
  /** Reply items of turn `id`. */
  turn(id: string, replies: TurnReply[]): void;
  /** The link is gone (`why`); `wasReady`: it had been ready. */
  lost(why: string, wasReady: boolean): void;
  /** The server asks for a camera's latest frame (docs/video.md). */
  frameRequest?(message: FrameRequestMessage): void;
}

/** See the module doc. */
export class AiConnection {
  #o: AiConnectionOptions;
  #protocol: AiProtocol;
  #events: ConnectionEvents;
  #log: Logger;
  #conn: Deno.Conn | undefined;
  #ready = false;
  #closed = false;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setTimeout> | undefined;
  #pongTimer: ReturnType<typeof setTimeout> | undefined;
  #pingId = 0;
  #awaitingPong: { id: number; sentAt: number } | undefined;
  #serverCapabilities = new Set<string>();
  #writeQueue: Uint8Array[] = [];
  /** Bytes in {@link #writeQueue} plus what is left of the one being written. */
  #queuedBytes = 0;
  /** Set when the connection is about to be dropped: nothing more is queued for it. */
  #sendsStopped = false;
  /** The running drain of {@link #writeQueue}, if any. */
  #drain: Promise<void> | undefined;
  /** Round-trip of the last pong, ms. */
  lastRttMs: number | undefined;
  /** Connections made so far. */
  connections = 0;

  constructor(options: AiConnectionOptions, events: ConnectionEvents) {
    this.#o = options;
    this.#protocol = options.protocol;
    this.#events = events;
    this.#log = options.log;
  }

  /** True when turns can be sent (connected, and the hellos exchanged). */
  get ready(): boolean {
    return this.#ready;
  }

  /** Whether the server announced `capability` in its (last) hello. */
  serverCan(capability: string): boolean {
    return this.#serverCapabilities.has(capability);
  }

  /** Starts connecting (and reconnecting forever until {@link close}). */
  start(): void {
    void this.#connect();
  }

  /** Stops for good: closes the socket and stops timers; `lost` says `why`. */
  close(why: string): void {
    this.#closed = true;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#teardown(why);
  }

  /** Drops the current connection (`why`) and reconnects. */
  reconnect(why: string): void {
    this.#dropConnection(this.#conn, why);
  }

  /** Queues bytes for the socket, in order; dropped when not connected. */
  send(bytes: Uint8Array): void {
    const conn = this.#conn;
    if (!conn || this.#sendsStopped || bytes.length === 0) return;
    if (this.#queuedBytes + bytes.length > MAX_QUEUED_BYTES) {
      this.#log.warn("AI server is not reading", { queued: this.#queuedBytes });
      this.#sendsStopped = true;
      // Not from inside the caller's turn method: its handlers must not run re-entrantly.
      queueMicrotask(() => this.#dropConnection(conn, "write queue full"));
      return;
    }
    this.#queuedBytes += bytes.length;
    this.#writeQueue.push(bytes);
    this.#drain ??= this.#drainWrites();
  }

  async #drainWrites(): Promise<void> {
    const conn = this.#conn;
    try {
      while (this.#writeQueue.length > 0 && conn && conn === this.#conn) {
        const bytes = this.#writeQueue.shift()!;
        let written = 0;
        while (written < bytes.length) {
          const n = await conn.write(bytes.subarray(written));
          written += n;
          if (conn === this.#conn) this.#queuedBytes -= n;
        }
      }
    } catch (error) {
      if (conn === this.#conn) {
        this.#log.warn("AI server write failed", { error: (error as Error).message });
      }
      this.#dropConnection(conn, "write failed");
    } finally {
      this.#drain = undefined;
      // Bytes queued for a newer connection while this drain waited on the old one.
      if (this.#writeQueue.length > 0 && this.#conn) this.#drain = this.#drainWrites();
    }
  }

  /** Waits until everything queued so far is written, or `timeoutMs` (a peer not reading). */
  async #flushWrites(timeoutMs: number): Promise<void> {
    if (!this.#drain) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs));
    await Promise.race([this.#drain, timeout]);
    clearTimeout(timer);
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const { host, port } = this.#o;
    let conn: Deno.Conn;
    try {
      conn = this.#o.tls
        ? await Deno.connectTls({ hostname: host, port, caCerts: this.#o.tls.caCerts })
        : await Deno.connect({ hostname: host, port });
    } catch (error) {
      this.#log.debug("AI server not reachable", {
        host,
        port,
        attempt: this.#attempt,
        error: (error as Error).message,
      });
      this.#scheduleReconnect();
      return;
    }
    if (this.#closed) {
      conn.close();
      return;
    }
    if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
    this.#conn = conn;
    this.connections++;
    const decoder = new FrameDecoder({ version: this.#protocol.frameVersion });
    let helloTimer: ReturnType<typeof setTimeout> | undefined;
    const secret = typeof this.#o.secret === "function" ? this.#o.secret() : this.#o.secret;
    const nonce = secret === undefined ? undefined : newNonce();
    const hello = this.#protocol.hello(nonce);
    if (hello) {
      this.send(hello);
      helloTimer = setTimeout(() => {
        this.#log.warn("AI server sent no hello", { host, port, timeout_ms: HELLO_TIMEOUT_MS });
        this.#dropConnection(conn, "no hello");
      }, HELLO_TIMEOUT_MS);
    } else {
      this.#becomeReady();
    }
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    try {
      reading: while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        let decoded: Decoded[];
        try {
          decoded = decoder.push(buffer.subarray(0, n));
        } catch (error) {
          const message = (error as Error).message;
          this.#log.error("AI server sent an undecodable frame", { error: message });
          const answer = this.#protocol.badFrame(message);
          if (answer && conn === this.#conn) {
            this.send(answer);
            this.#sendsStopped = true;
            await this.#flushWrites(CLOSE_FLUSH_MS);
          }
          break;
        }
        for (const item of decoded) {
          const inbound = this.#protocol.route(item);
          if (inbound.kind === "hello") {
            clearTimeout(helloTimer);
            if (secret && nonce && !this.#authenticate(secret, nonce, inbound)) break reading;
            this.#serverCapabilities = new Set(inbound.capabilities);
            this.#becomeReady();
            continue;
          }
          this.#dispatch(inbound);
        }
      }
    } catch (error) {
      if (conn === this.#conn) {
        this.#log.warn("AI server connection failed", { error: (error as Error).message });
      }
    } finally {
      clearTimeout(helloTimer);
    }
    this.#dropConnection(conn, "connection closed");
  }

  /**
   * Checks the server's proof and answers with the gateway's (docs/protocol.md
   * "Authentication"); false, after logging why, when the server did not prove the secret.
   */
  #authenticate(
    secret: string,
    nonce: string,
    hello: { nonce?: string; proof?: string },
  ): boolean {
    if (hello.nonce === undefined || hello.proof === undefined) {
      this.#log.error(
        "AI server did not authenticate itself: it has no audio-socket secret " +
          "(AUDIO_SOCKET_AUTH=off?) or is not a NAILA server; nothing is sent to it",
        { host: this.#o.host, port: this.#o.port },
      );
      return false;
    }
    if (!proofMatches(serverProof(secret, nonce, hello.nonce), hello.proof)) {
      this.#log.error(
        "AI server's proof does not match: AI_SERVER_SECRET differs from the server's " +
          "NAILA_DATA_DIR/secrets/audio_socket_secret",
        { host: this.#o.host, port: this.#o.port },
      );
      return false;
    }
    this.send(encodeV2({
      type: "auth",
      proof: gatewayProof(secret, hello.nonce, nonce),
      ts: Date.now(),
    }));
    return true;
  }

  #becomeReady(): void {
    this.#ready = true;
    this.#attempt = 0;
    this.#log.info("AI server connected", {
      host: this.#o.host,
      port: this.#o.port,
      protocol: this.#protocol.name,
    });
    this.#schedulePing();
    this.#events.ready();
  }

  #schedulePing(): void {
    if (!this.#protocol.pings) return;
    const interval = this.#o.pingIntervalMs ?? PING_INTERVAL_MS;
    this.#pingTimer = setTimeout(() => {
      this.#pingTimer = undefined;
      if (!this.#ready) return;
      if (!this.#awaitingPong) this.#ping();
      this.#schedulePing();
    }, interval);
  }

  /** Pings, and drops the connection if the pong does not come within the timeout. */
  #ping(): void {
    const conn = this.#conn;
    const id = ++this.#pingId;
    this.#awaitingPong = { id, sentAt: Date.now() };
    this.send(this.#protocol.ping(id));
    const timeout = this.#o.pongTimeoutMs ?? PONG_TIMEOUT_MS;
    this.#pongTimer = setTimeout(() => {
      this.#pongTimer = undefined;
      this.#log.warn("AI server did not answer a ping", { id, timeout_ms: timeout });
      this.#dropConnection(conn, "ping timeout");
    }, timeout);
  }

  #dispatch(inbound: Exclude<ReturnType<AiProtocol["route"]>, { kind: "hello" }>): void {
    switch (inbound.kind) {
      case "ping":
        this.send(this.#protocol.pong(inbound.id));
        return;
      case "pong":
        if (this.#awaitingPong?.id === inbound.id) {
          this.lastRttMs = Date.now() - this.#awaitingPong.sentAt;
          this.#awaitingPong = undefined;
          clearTimeout(this.#pongTimer);
          this.#pongTimer = undefined;
        }
        return;
      case "error":
        this.#log.error("AI server reported a connection error", {
          code: inbound.code,
          message: inbound.message,
        });
        return;
      case "unexpected":
        this.#log.warn("unexpected message from the AI server", { type: inbound.type });
        return;
      case "turn":
        this.#events.turn(inbound.turn, inbound.replies);
        return;
      case "frame_request":
        this.#events.frameRequest?.(inbound.message);
        return;
    }
  }

  #dropConnection(conn: Deno.Conn | undefined, why: string): void {
    if (!conn || conn !== this.#conn) return;
    const wasReady = this.#ready;
    this.#teardown(`AI server connection lost (${why})`);
    if (wasReady) this.#log.warn("AI server disconnected", { reason: why });
    this.#scheduleReconnect();
  }

  #teardown(why: string): void {
    const conn = this.#conn;
    const wasReady = this.#ready;
    this.#conn = undefined;
    this.#ready = false;
    this.#writeQueue.length = 0;
    this.#queuedBytes = 0;
    this.#sendsStopped = false;
    this.#awaitingPong = undefined;
    clearTimeout(this.#pingTimer);
    this.#pingTimer = undefined;
    clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
    try {
      conn?.close();
    } catch {
      // Already closed by the peer.
    }
    this.#events.lost(why, wasReady);
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#reconnectTimer !== undefined) return;
    const wait = backoffDelay(this.#attempt++, {
      minTimeout: RECONNECT_MIN_MS,
      maxTimeout: RECONNECT_MAX_MS,
      jitter: RECONNECT_JITTER,
    });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#connect();
    }, wait);
  }
}
