/**
 * Test clients for the AI server's audio socket (docs/protocol.md): a v1 client written from
 * spec 4.2 alone (no shared codec, so it checks the server against the spec, not against our
 * own decoder), and a v2 client on the shared codec.
 *
 * @example
 * ```ts
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * await conn.write(v1Request({ device: "kitchen", rate: 16000, request: "r1", pcm }));
 * const { bytes } = await readUntil(conn, (b) => parseV1Responses(b).length === 1);
 * ```
 */
import { gatewayProof, newNonce, serverProof } from "../../shared/audio_auth.ts";
import assert from "node:assert/strict";
import { concatBytes } from "../../shared/audio.ts";
import { encodeV2, FrameDecoder, type V2Message } from "../../shared/frame_codec.ts";

const encoder = new TextEncoder();

/** A v1 frame, spec 4.2: `{device}|{length}|{rate}|{request}\n` + PCM. */
export function v1Request(
  frame: { device: string; rate: number; request: string; pcm: Uint8Array },
): Uint8Array {
  const { device, rate, request, pcm } = frame;
  const header = encoder.encode(`${device}|${pcm.length}|${rate}|${request}\n`);
  return concatBytes([header, pcm]);
}

/** Every complete v1 frame in `bytes`: its four header fields and its body. */
export function parseV1Responses(bytes: Uint8Array): { header: string[]; body: Uint8Array }[] {
  const out = [];
  let at = 0;
  while (at < bytes.length) {
    const newline = bytes.indexOf(10, at);
    if (newline === -1) break;
    const header = new TextDecoder().decode(bytes.subarray(at, newline)).split("|");
    const length = Number(header[1]);
    if (newline + 1 + length > bytes.length) break;
    out.push({ header, body: bytes.subarray(newline + 1, newline + 1 + length) });
    at = newline + 1 + length;
  }
  return out;
}

/**
 * Reads until `done(bytes)` holds or the peer closes. After `timeoutMs` (a guard against a hung
 * test, not a measurement) it closes the connection itself and reports `closed: false`: `closed`
 * is true only when the peer closed.
 */
export async function readUntil(
  conn: Deno.Conn,
  done: (bytes: Uint8Array) => boolean,
  timeoutMs = 20_000,
): Promise<{ bytes: Uint8Array; closed: boolean }> {
  let bytes = new Uint8Array(0);
  const chunk = new Uint8Array(65536);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, timeoutMs);
  try {
    while (!done(bytes)) {
      const n = await conn.read(chunk).catch(() => null);
      if (n === null) return { bytes, closed: !timedOut };
      const next = new Uint8Array(bytes.length + n);
      next.set(bytes);
      next.set(chunk.subarray(0, n), bytes.length);
      bytes = next;
    }
    return { bytes, closed: false };
  } finally {
    clearTimeout(timer);
  }
}

/** Every v2 capability. */
export const ALL_CAPABILITIES = ["stream", "cancel", "text", "ping", "stages"];

/** A v2 client: hello on connect, then send messages and wait for matching ones. */
export class V2Client {
  /** Every message received, in order. */
  messages: V2Message[] = [];
  /** `performance.now()` when each message was decoded. */
  receivedAt: number[] = [];
  closed = false;
  #decoder = new FrameDecoder({ version: 2 });
  #buffer = new Uint8Array(65536);

  private constructor(readonly conn: Deno.Conn) {}

  /**
   * Connects and says hello; with `secret`, authenticates as a gateway does (docs/protocol.md
   * "Authentication") and checks the server's proof.
   */
  static async connect(
    port: number,
    capabilities = ALL_CAPABILITIES,
    secret?: string,
  ): Promise<V2Client> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    return await V2Client.handshake(conn, capabilities, secret);
  }

  /** Says hello (and authenticates with `secret`) on an open connection, TCP or TLS. */
  static async handshake(
    conn: Deno.Conn,
    capabilities = ALL_CAPABILITIES,
    secret?: string,
  ): Promise<V2Client> {
    const client = new V2Client(conn);
    const nonce = secret === undefined ? undefined : newNonce();
    await client.send({
      type: "hello",
      version: 2,
      role: "gateway",
      capabilities,
      ts: Date.now(),
      ...(nonce === undefined ? {} : { nonce }),
    });
    const hello = await client.next((m) => m.type === "hello");
    assert.equal(hello.type === "hello" && hello.role, "server");
    if (secret !== undefined && nonce !== undefined && hello.type === "hello") {
      assert.ok(hello.nonce !== undefined && hello.proof !== undefined, "server hello lacks auth");
      assert.equal(hello.proof, serverProof(secret, nonce, hello.nonce), "server proof");
      await client.send({
        type: "auth",
        proof: gatewayProof(secret, hello.nonce, nonce),
        ts: Date.now(),
      });
    }
    return client;
  }

  async send(message: V2Message): Promise<void> {
    await this.conn.write(encodeV2(message));
  }

  /** Waits for the first message matching `match`, reading more as needed. */
  async next(match: (m: V2Message) => boolean, timeoutMs = 5000): Promise<V2Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found) return found;
      if (this.closed) throw new Error(`connection closed; got ${JSON.stringify(this.types())}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out; got ${JSON.stringify(this.types())}`);
      const timer = setTimeout(() => this.close(), remaining);
      const n = await this.conn.read(this.#buffer).catch(() => null);
      clearTimeout(timer);
      if (n === null) {
        this.closed = true;
        continue;
      }
      const now = performance.now();
      for (const item of this.#decoder.push(this.#buffer.slice(0, n))) {
        if (item.version === 2) {
          this.messages.push(item.message);
          this.receivedAt.push(now);
        }
      }
    }
  }

  /** Message types received so far, with `:turn` where there is one. */
  types(): string[] {
    return this.messages.map((m) => m.type + ("turn" in m && m.turn ? `:${m.turn}` : ""));
  }

  close(): void {
    this.closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/** Sends a whole turn: start, `pcm` as audio chunks of `chunkBytes`, end. */
export async function sendTurn(
  client: V2Client,
  options: {
    turn: string;
    device?: string;
    rate: 16000 | 48000;
    pcm: Uint8Array;
    chunkBytes?: number;
  },
): Promise<void> {
  const { turn, rate, pcm } = options;
  const chunkBytes = options.chunkBytes ?? (rate / 50) * 2 * 10;
  await client.send({
    type: "start",
    turn,
    device: options.device ?? "kitchen",
    rate,
    ts: Date.now(),
  });
  let seq = 0;
  for (let at = 0; at < pcm.length; at += chunkBytes) {
    await client.send({
      type: "audio",
      turn,
      seq: seq++,
      rate,
      ts: Date.now(),
      pcm: pcm.subarray(at, Math.min(pcm.length, at + chunkBytes)),
    });
  }
  await client.send({ type: "end", turn, ts: Date.now() });
}
