/**
 * Embedded MQTT broker (npm:aedes over `node:net`), used when MQTT_HOST is unset so a single
 * machine runs NAILA without installing mosquitto. Speaks MQTT 3.1.1 only (clients must use
 * protocolVersion 4) and keeps retained messages in memory.
 *
 * @example
 * ```ts
 * import { startEmbeddedBroker } from "@naila/shared/broker";
 * const broker = await startEmbeddedBroker({ host: "127.0.0.1", port: 0 });
 * console.log(broker.port); // the port the OS picked
 * await broker.close();
 * ```
 */
import { Aedes } from "aedes";
import { Buffer } from "node:buffer";
import { createServer, type Socket } from "node:net";
import { MAX_MEDIA_MESSAGE_CHARS } from "./messages.ts";

/**
 * Largest MQTT packet accepted: the largest media message (8 MiB of base64 media and its JSON)
 * plus its topic and header. A longer packet closes the sender's connection as soon as its header
 * arrives, so a 50 MB publish is never buffered (mosquitto's `max_packet_size` does the same).
 */
export const MAX_PACKET_BYTES = MAX_MEDIA_MESSAGE_CHARS + 64 * 1024;

/**
 * Follows MQTT packet boundaries in a connection's byte stream (fixed header: one type byte, then
 * the remaining length as a 1-4 byte varint, MQTT 3.1.1 section 2.2) to spot an oversized packet
 * from its header alone.
 */
export class PacketSizeGuard {
  #remaining = 0;
  #readingLength = false;
  #length = 0;
  #multiplier = 1;
  #lengthBytes = 0;

  constructor(readonly maxBytes: number) {}

  /** Scans the next bytes; returns the announced size of the first packet over the limit. */
  scan(bytes: Uint8Array): number | undefined {
    let at = 0;
    while (at < bytes.length) {
      if (this.#remaining > 0) {
        const skip = Math.min(this.#remaining, bytes.length - at);
        at += skip;
        this.#remaining -= skip;
      } else if (!this.#readingLength) {
        at++; // the type and flags byte
        this.#readingLength = true;
        this.#length = 0;
        this.#multiplier = 1;
        this.#lengthBytes = 0;
      } else {
        const byte = bytes[at++];
        this.#length += (byte & 0x7f) * this.#multiplier;
        this.#multiplier *= 128;
        this.#lengthBytes++;
        if ((byte & 0x80) === 0 || this.#lengthBytes === 4) {
          if (this.#length > this.maxBytes) return this.#length;
          this.#remaining = this.#length;
          this.#readingLength = false;
        }
      }
    }
    return undefined;
  }
}

/** Options of {@link startEmbeddedBroker}. */
export interface EmbeddedBrokerOptions {
  /** Address to listen on; default "127.0.0.1" (loopback: nothing leaves the machine). */
  host?: string;
  /** Port to listen on; 0 lets the OS pick one. Default 1883 (spec 14.2 MQTT_PORT). */
  port?: number;
  /** When set, clients must present this user name and {@link password}. */
  username?: string;
  password?: string;
}

/** A running embedded broker. */
export interface EmbeddedBroker {
  /** Port actually listened on. */
  port: number;
  host: string;
  /** Stops listening, disconnects every client and closes the broker. */
  close(): Promise<void>;
}

/**
 * aedes reads a connection with `socket.read()` on each "readable" event. Under Deno's node:net
 * that call returns one 64 KiB chunk and leaves the rest buffered without another "readable", so
 * any packet over 64 KiB (a snapshot, an upload) stalled the connection for good. Reading until
 * the buffer is empty, as Node's `read()` does, delivers the whole packet. The same reader
 * enforces {@link MAX_PACKET_BYTES}.
 */
function readWholeBuffer(socket: Socket): void {
  const read = socket.read.bind(socket);
  const guard = new PacketSizeGuard(MAX_PACKET_BYTES);
  socket.read = (size?: number) => {
    if (size !== undefined && size !== null) return read(size);
    const chunks: Buffer[] = [];
    for (let chunk = read(); chunk !== null; chunk = read()) chunks.push(chunk);
    const data = chunks.length <= 1 ? chunks[0] ?? null : Buffer.concat(chunks);
    if (data !== null && guard.scan(data) !== undefined) {
      socket.destroy();
      return null;
    }
    return data;
  };
}

/** Starts an aedes broker listening on `options.host:options.port`. */
export async function startEmbeddedBroker(
  options: EmbeddedBrokerOptions = {},
): Promise<EmbeddedBroker> {
  const host = options.host ?? "127.0.0.1";
  const { username, password } = options;
  const aedes = await Aedes.createBroker({
    authenticate: (_client, user, pass, done) => {
      if (username === undefined) return done(null, true);
      const ok = user === username && new TextDecoder().decode(pass ?? new Uint8Array()) ===
          (password ?? "");
      done(null, ok);
    },
  });
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    readWholeBuffer(socket);
    socket.on("close", () => sockets.delete(socket));
    aedes.handle(socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 1883, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw new Error(
      `embedded MQTT broker cannot listen on ${host}:${options.port ?? 1883}: ${
        (err as Error).message
      }`,
      { cause: err },
    );
  }
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : options.port!;
  let closing: Promise<void> | undefined;
  return {
    port,
    host,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        await stopped;
      })();
      return closing;
    },
  };
}
