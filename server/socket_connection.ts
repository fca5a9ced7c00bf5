/**
 * One connection of the audio socket: reads bytes, decodes frames synchronously as they arrive
 * (bounded by the shared codec's limits), hands each to the protocol version its first byte
 * chose (`{` → {@link V2Turns}, anything else → {@link V1Adapter}), queues writes, and ends
 * frames that stall half-way and silent v2 connections. Nothing a peer sends can throw out of
 * {@link Connection.serve}.
 */
import { type Decoded, FrameDecoder, FrameError } from "../shared/frame_codec.ts";
import type { Logger } from "../shared/log.ts";
import type { ConnectionLink, SocketProtocol, SocketSettings } from "./socket_link.ts";
import { V1Adapter } from "./v1_adapter.ts";
import { V2Turns } from "./v2_turns.ts";

/** Longest wait for a last error message to be written before closing anyway. */
const CLOSE_FLUSH_MS = 1000;
/** Unsent reply bytes per connection before it counts as not reading (~30 s of 48 kHz audio). */
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;
/** A v2 connection's first byte: its header lines are JSON objects (docs/protocol.md). */
const OPEN_BRACE = 0x7b;

/** A peer's TCP connection to the audio socket. */
export class Connection implements ConnectionLink {
  readonly peer: string;
  readonly settings: SocketSettings;
  #conn: Deno.TcpConn;
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

  constructor(conn: Deno.TcpConn, settings: SocketSettings) {
    this.#conn = conn;
    this.#writer = conn.writable.getWriter();
    this.settings = settings;
    this.#log = settings.log;
    this.peer = `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`;
    this.#decoder = new FrameDecoder({ version: "auto", limits: settings.limits });
  }

  /** True until the peer's first byte. */
  get silent(): boolean {
    return this.#protocol === undefined;
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
        this.#protocol ??= value[0] === OPEN_BRACE ? new V2Turns(this) : new V1Adapter(this);
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
