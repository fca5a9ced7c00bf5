/**
 * One connection of the audio socket: reads bytes, decodes frames synchronously as they arrive
 * (bounded by the shared codec's limits), hands each to the protocol version its first byte
 * chose (`{` → {@link V2Adapter}, anything else → {@link V1Adapter}), queues writes, and ends
 * frames that stall half-way and silent v2 connections. Nothing a peer sends can throw out of
 * {@link Connection.serve}.
 *
 * Who may speak (spec 17.2, docs/protocol.md "Authentication"): with a secret configured, a v2
 * peer goes through {@link V2AuthGate} and a v1 peer (which cannot authenticate) is refused
 * unless an address allow-list admitted it; a peer not admitted within `authTimeoutMs` is closed.
 */
import { type Decoded, FrameDecoder, FrameError } from "../shared/frame_codec.ts";
import type { Logger } from "../shared/log.ts";
import { V2AuthGate } from "./socket_auth.ts";
import type { ConnectionLink, SocketProtocol, SocketSettings } from "./socket_link.ts";
import { V1Adapter } from "./v1_adapter.ts";
import { V2Adapter } from "./v2_adapter.ts";

/** Longest wait for a last error message to be written before closing anyway. */
const CLOSE_FLUSH_MS = 1000;
/** Unsent reply bytes per connection before it counts as not reading (~30 s of 48 kHz audio). */
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;
/** Bytes a peer may have buffered before it is admitted: a hello and an auth fit in 2 KiB. */
const PRE_AUTH_MAX_BUFFERED = 4096;
/** A v2 connection's first byte: its header lines are JSON objects (docs/protocol.md). */
const OPEN_BRACE = 0x7b;

/** What a connection tells the listener that owns it. */
export interface ConnectionEvents {
  /** The peer may use the socket now (authenticated, allow-listed, or no authentication). */
  admitted(connection: Connection): void;
  /** A security event: one structured audit line (spec 17.3). */
  audit(event: string, fields: Record<string, unknown>): void;
}

/** A peer's TCP (or TLS) connection to the audio socket. */
export class Connection implements ConnectionLink {
  readonly peer: string;
  /** The peer's IP address. */
  readonly address: string;
  readonly settings: SocketSettings;
  #conn: Deno.Conn<Deno.NetAddr>;
  #events: ConnectionEvents;
  #admitted = false;
  #gate: V2AuthGate | undefined;
  #authTimer: ReturnType<typeof setTimeout> | undefined;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #log: Logger | undefined;
  #decoder: FrameDecoder;
  /** Chosen by the first byte. */
  #protocol: SocketProtocol | undefined;
  #closed = false;
  /** An error was sent; the connection closes once it is written and reads nothing more. */
  #closing = false;
  #writes: Promise<void> = Promise.resolve();
  #unsent = 0;
  #frameTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * `admitted`: the listener already trusts the peer (its address is on the allow-list); else
   * the peer must authenticate within `settings.access.authTimeoutMs` when a secret is set.
   */
  constructor(
    conn: Deno.Conn<Deno.NetAddr>,
    settings: SocketSettings,
    events: ConnectionEvents,
    admitted: boolean,
  ) {
    this.#conn = conn;
    this.#writer = conn.writable.getWriter();
    this.settings = settings;
    this.#events = events;
    this.#log = settings.log;
    this.address = conn.remoteAddr.hostname;
    this.peer = `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`;
    this.#decoder = new FrameDecoder({ version: "auto", limits: settings.limits });
    this.#admitted = admitted;
    if (!admitted && settings.access.secret !== undefined) {
      const { authTimeoutMs } = settings.access;
      this.#authTimer = setTimeout(() => {
        const reason = `not authenticated within ${authTimeoutMs} ms`;
        this.#events.audit("auth_timeout", { peer: this.peer });
        if (this.#protocol) this.#protocol.fail("auth_timeout", reason);
        else this.close(reason);
      }, authTimeoutMs);
    }
  }

  /** True until the peer's first byte. */
  get silent(): boolean {
    return this.#protocol === undefined;
  }

  /** True once the peer may use the socket (see the constructor). */
  get admitted(): boolean {
    return this.#admitted;
  }

  helloFields(): { nonce?: string; proof?: string } {
    return this.#gate?.helloFields() ?? {};
  }

  #admit(): void {
    if (this.#admitted) return;
    clearTimeout(this.#authTimer);
    this.#admitted = true;
    this.#events.admitted(this);
  }

  /** The protocol the first byte chose, behind authentication where a secret is set. */
  #choose(firstByte: number): SocketProtocol {
    const { secret } = this.settings.access;
    if (firstByte === OPEN_BRACE) {
      const turns = new V2Adapter(this);
      if (secret === undefined) {
        this.#admit();
        return turns;
      }
      this.#gate = new V2AuthGate(this, turns, secret, {
        authenticated: () => {
          this.#log?.info("peer authenticated", { peer: this.peer });
          this.#admit();
        },
        audit: (event, detail) => this.#events.audit(event, { peer: this.peer, detail }),
      });
      return this.#gate;
    }
    const adapter = new V1Adapter(this);
    if (secret !== undefined && !this.#admitted) {
      // v1 has no way to authenticate: only an allow-listed address may speak it.
      this.#events.audit("v1_refused", { peer: this.peer });
      this.close(
        "v1 peer refused: v1 cannot authenticate; list the gateway in AUDIO_SOCKET_ALLOW or use v2",
      );
      return adapter;
    }
    this.#admit();
    return adapter;
  }

  get open(): boolean {
    return !this.#closed && !this.#closing;
  }

  /** Reads until the peer or the server closes the connection. */
  async serve(): Promise<void> {
    this.#log?.info("connection opened", { peer: this.peer });
    const reader = this.#conn.readable.getReader();
    try {
      while (this.open) {
        const { value, done } = await reader.read();
        if (done || !this.open) break;
        if (value.length === 0) continue;
        this.#protocol ??= this.#choose(value[0]);
        if (!this.open) break;
        this.#onBytes(this.#protocol, value);
      }
    } catch (error) {
      if (!this.#closed) this.#log?.debug("connection read failed", { peer: this.peer, error });
    } finally {
      reader.releaseLock();
      if (!this.#closing) this.close("peer closed");
    }
  }

  /** Closes at once: cancels this connection's turns, drops unsent bytes. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#flushTimer);
    this.#stopWork(reason);
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    this.#log?.info("connection closed", { peer: this.peer, reason });
  }

  closeAfterWrites(reason: string): void {
    if (!this.open) return;
    this.#closing = true;
    this.#stopWork(reason);
    this.#writes = this.#writes.finally(() => this.close(reason));
    // A peer that does not read would keep the write, and so the connection, pending.
    this.#flushTimer = setTimeout(() => this.close(`${reason} (unflushed)`), CLOSE_FLUSH_MS);
  }

  send(bytes: Uint8Array): void {
    if (!this.open) return;
    this.#unsent += bytes.length;
    if (this.#unsent > MAX_UNSENT_BYTES) {
      this.#log?.warn("peer is not reading", { peer: this.peer, unsent: this.#unsent });
      this.close(`more than ${MAX_UNSENT_BYTES} bytes unsent`);
      return;
    }
    this.#writes = this.#writes.then(async () => {
      try {
        await this.#writer.write(bytes);
        this.#unsent -= bytes.length;
      } catch (error) {
        if (!this.#closed) this.#log?.debug("write failed", { peer: this.peer, error });
        this.close("write failed");
      }
    });
  }

  /** Timers off, every turn of this connection cancelled. */
  #stopWork(reason: string): void {
    clearTimeout(this.#authTimer);
    clearTimeout(this.#frameTimer);
    clearTimeout(this.#idleTimer);
    this.#protocol?.stop(reason);
  }

  #onBytes(protocol: SocketProtocol, bytes: Uint8Array): void {
    let decoded: Decoded[];
    try {
      decoded = this.#decoder.push(bytes);
    } catch (error) {
      this.#badFrame(protocol, error);
      return;
    }
    if (!this.#admitted && this.#decoder.bufferedBytes > PRE_AUTH_MAX_BUFFERED) {
      // Audio before authentication is never buffered: the gate would refuse it anyway.
      this.#events.audit("auth_required", { peer: this.peer, bytes: this.#decoder.bufferedBytes });
      protocol.fail("auth_required", "no more than a hello and an auth before authentication");
      return;
    }
    // Any bytes count as life (a large frame may take several reads), once the first line is in.
    if (protocol.pinged && this.#decoder.version !== undefined) this.#armIdle(protocol);
    // A frame must complete within frameMs of its first byte; progress restarts the clock.
    if (decoded.length > 0 || this.#decoder.bufferedBytes === 0) {
      clearTimeout(this.#frameTimer);
      this.#frameTimer = undefined;
    }
    if (this.#decoder.bufferedBytes > 0 && this.#frameTimer === undefined) {
      this.#frameTimer = setTimeout(
        () => this.#slowFrame(protocol),
        this.settings.timeouts.frameMs,
      );
    }
    for (const item of decoded) {
      if (!this.open) return;
      try {
        protocol.receive(item);
      } catch (error) {
        // A bug of ours must not take the server down; it takes this connection down.
        this.#log?.error("frame handler failed", { peer: this.peer, error });
        protocol.fail("internal", `server error: ${(error as Error).message}`);
        return;
      }
    }
  }

  #badFrame(protocol: SocketProtocol, error: unknown): void {
    const message = error instanceof FrameError ? error.message : String(error);
    this.#log?.warn("bad frame", {
      peer: this.peer,
      code: error instanceof FrameError ? error.code : "unknown",
      error: message,
    });
    protocol.fail("bad_frame", message);
  }

  #slowFrame(protocol: SocketProtocol): void {
    const { frameMs } = this.settings.timeouts;
    this.#log?.warn("frame stalled", { peer: this.peer, buffered: this.#decoder.bufferedBytes });
    protocol.fail(
      "timeout",
      `frame incomplete after ${frameMs} ms (${this.#decoder.bufferedBytes} bytes buffered)`,
    );
  }

  #armIdle(protocol: SocketProtocol): void {
    clearTimeout(this.#idleTimer);
    const { idleMs } = this.settings.timeouts;
    this.#idleTimer = setTimeout(
      () => protocol.fail("timeout", `no message for ${idleMs} ms; ping to keep the connection`),
      idleMs,
    );
  }
}
