/**
 * The gateway's side of the TCP link to the AI server (spec 4.2-4.4, docs/protocol.md).
 *
 * - One connection (Deno.connect), reopened after any failure with exponential backoff and
 *   jitter ({@link backoffDelay}); devices' WebRTC sessions do not depend on it.
 * - **v2** (default): hello exchange, then per turn `start`, `audio` chunks while the user speaks,
 *   `end`; the reply streams back as `audio`/`text` and ends with `end`. `cancel` on barge-in.
 *   When the user goes quiet and the server can `speculate`, `pause` lets it start STT early;
 *   the audio after a pause is held back until speech resumes, and dropped if the turn ends.
 *   Pings every {@link PING_INTERVAL_MS}; no pong within {@link PONG_TIMEOUT_MS} of a ping
 *   closes and reopens the connection.
 * - **v1** (`AI_SERVER_PROTOCOL=v1`): the utterance is buffered and sent as one spec 4.2 frame
 *   when it ends; one response frame comes back (empty = no reply).
 * - Every turn has a response timeout ({@link RESPONSE_TIMEOUT_MS}, spec 4.4) re-armed by each
 *   server message of the turn. A v1 server answers strictly in order and cannot be pinged, so
 *   there a response timeout also reopens the connection.
 * - A restarting AI server loses no utterance (spec 4.4: buffer while it is away): a turn that
 *   starts while the server is away, or whose connection drops before any of its reply came, keeps
 *   its audio and is sent again, whole, once the server is back, if that takes at most
 *   {@link OUTAGE_HOLD_MS}. Otherwise, after a longer outage, or once part of its reply was
 *   played, it fails (`unavailable` / `disconnected`: spec 4.3's drop). A turn is replayed at most
 *   once, so an utterance that crashes the server cannot crash it again and again.
 * - More than {@link MAX_QUEUED_BYTES} waiting to be written means the server stopped reading:
 *   the connection is dropped and reopened.
 *
 * @example
 * ```ts
 * const client = new AiClient({ host: "127.0.0.1", port: 9999, protocol: "v2", log });
 * client.start();
 * const turn = client.startTurn("kitchen", 16000, handlers);
 * turn.audio(pcmBytes); turn.end(lastSpeechAt);
 * ```
 */
import { backoffDelay } from "../shared/async.ts";
import {
  type Decoded,
  encodeV1,
  encodeV2,
  errorMessage,
  FrameDecoder,
  type SampleRate,
  type V2Message,
} from "../shared/frame_codec.ts";
import type { Logger } from "../shared/log.ts";

/** Spec 4.4: "AI server slow response: timeout after 10 s, notify device". */
export const RESPONSE_TIMEOUT_MS = 10_000;
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
/** v2 audio goes out in 100 ms chunks: 5× fewer headers than per-frame, still streaming. */
export const AUDIO_CHUNK_MS = 100;
/** Spec 4.2 / frame codec: one utterance holds at most 30 s. */
const MAX_UTTERANCE_SECONDS = 30;
/**
 * How long a turn waits for a restarting AI server: a supervisor (systemd, `deno task server`
 * again) brings a crashed server back in a second or two; longer than this and the user has
 * given up on the answer, so the turn fails as spec 4.3 drops it.
 */
export const OUTAGE_HOLD_MS = 5_000;
/** A turn is sent again after an outage at most this often. */
const MAX_REPLAYS = 1;
/**
 * Bytes waiting for the socket before the server counts as not reading: three of the longest
 * utterances (30 s at 48 kHz, one v1 frame each). Past it the connection is dropped and reopened.
 */
export const MAX_QUEUED_BYTES = 3 * MAX_UTTERANCE_SECONDS * 48_000 * 2;
/** Socket reads of up to 64 KiB: a second of 16 kHz PCM in a few reads, reused for all. */
const READ_BUFFER_BYTES = 64 * 1024;
/**
 * Random letters that start every turn id of one client: the server's memory marks a barge-in
 * by (device, turn), so ids must not repeat across gateway restarts. 26^6 ≈ 3·10^8 runs.
 */
const TURN_PREFIX_LETTERS = 6;
/** Capabilities this gateway announces and uses. */
const CAPABILITIES = ["stream", "cancel", "text", "ping", "stages", "speculate"];

/** How a turn failed. */
export type TurnFailure = "timeout" | "disconnected" | "server_error" | "unavailable";

/** Callbacks of one turn (all optional but `end`/`fail`). */
export interface TurnHandlers {
  /** A chunk of reply audio (int16 LE PCM at `rate`). */
  audio?(pcm: Uint8Array, rate: SampleRate): void;
  text?(kind: "transcript" | "reply", text: string): void;
  /** The reply is complete (`stages`: the server's own timings, v2). */
  end(stages?: Record<string, number>): void;
  /** The turn is over without a (complete) reply. */
  fail(reason: TurnFailure, message: string): void;
}

/** Options of {@link AiClient}. */
export interface AiClientOptions {
  host: string;
  port: number;
  protocol: "v1" | "v2";
  log: Logger;
  responseTimeoutMs?: number;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  /** How long a turn waits for a restarting server; default {@link OUTAGE_HOLD_MS}. */
  outageHoldMs?: number;
}

/** Connection state changes, for logs and metrics. */
export type ConnectionListener = (connected: boolean) => void;

/** What a {@link Turn} is made of. */
export interface TurnInit {
  id: string;
  device: string;
  rate: SampleRate;
  handlers: TurnHandlers;
}

/** One utterance's PCM, grown as it comes: one second first, doubled, at most 30 s. */
class UtteranceBuffer {
  #bytes: Uint8Array | undefined;
  #length = 0;
  #rate: number;

  constructor(rate: number) {
    this.#rate = rate;
  }

  get length(): number {
    return this.#length;
  }

  append(pcm: Uint8Array): void {
    const max = MAX_UTTERANCE_SECONDS * this.#rate * 2;
    if (!this.#bytes || this.#length + pcm.length > this.#bytes.length) {
      const size = Math.min(
        max,
        Math.max(this.#rate * 2, (this.#bytes?.length ?? 0) * 2, this.#length + pcm.length),
      );
      const grown = new Uint8Array(size);
      if (this.#bytes) grown.set(this.#bytes.subarray(0, this.#length));
      this.#bytes = grown;
    }
    const take = Math.min(pcm.length, this.#bytes.length - this.#length);
    this.#bytes.set(pcm.subarray(0, take), this.#length);
    this.#length += take;
  }

  /** The bytes so far (a view, valid until the next append or clear). */
  view(): Uint8Array {
    return (this.#bytes ?? new Uint8Array(0)).subarray(0, this.#length);
  }

  /** Empties the buffer and lets its memory go. */
  clear(): void {
    this.#bytes = undefined;
    this.#length = 0;
  }
}

/** One utterance and its reply. */
export class Turn {
  readonly id: string;
  readonly device: string;
  readonly rate: SampleRate;
  /** Wall-clock ms when `end` was written to the socket. */
  endWrittenAt: number | undefined;
  #client: AiClient;
  #handlers: TurnHandlers;
  #chunk: Uint8Array;
  #chunkFill = 0;
  #seq = 0;
  /**
   * Everything the server has been sent (v2) or will get at the end (v1): v1's whole frame, and
   * v2's copy for a replay after an outage, let go once the reply starts.
   */
  #sent: UtteranceBuffer;
  /** Audio after a `pause`, sent if speech resumes, dropped if the turn ends. */
  #held: UtteranceBuffer;
  #paused = false;
  #startedAt = Date.now();
  #lastSpeechAt = 0;
  /** Some of the reply came: the turn can no longer be sent again. */
  #replied = false;
  #replays = 0;
  /** Waiting for the server to come back (see {@link OUTAGE_HOLD_MS}). */
  #holdTimer: ReturnType<typeof setTimeout> | undefined;
  #ended = false;
  #done = false;
  #cancelled = false;
  /** Timed out, aborted or refused: the server has nothing to cancel. */
  #failed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** @internal Made by {@link AiClient.startTurn}. */
  constructor(client: AiClient, init: TurnInit) {
    const { id, device, rate, handlers } = init;
    this.#client = client;
    this.id = id;
    this.device = device;
    this.rate = rate;
    this.#handlers = handlers;
    this.#chunk = new Uint8Array(((rate * AUDIO_CHUNK_MS) / 1000) * 2);
    this.#sent = new UtteranceBuffer(rate);
    this.#held = new UtteranceBuffer(rate);
  }

  /** True once the reply ended, failed or was cancelled. */
  get done(): boolean {
    return this.#done;
  }

  /** True once the user's utterance ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Appends user audio (int16 LE PCM at the turn's rate). */
  audio(pcm: Uint8Array): void {
    if (this.#ended || this.#done) return;
    if (this.#paused) {
      this.#held.append(pcm);
      return;
    }
    if (this.#client.protocol === "v1") {
      this.#sent.append(pcm);
      return;
    }
    let offset = 0;
    while (offset < pcm.length) {
      const take = Math.min(this.#chunk.length - this.#chunkFill, pcm.length - offset);
      this.#chunk.set(pcm.subarray(offset, offset + take), this.#chunkFill);
      this.#chunkFill += take;
      offset += take;
      if (this.#chunkFill === this.#chunk.length) this.#flushChunk();
    }
  }

  /**
   * The user went quiet (v2, only to a server that can `speculate`): the audio so far goes out,
   * then `pause`; later audio is held until {@link resume} or dropped by {@link end}, so the
   * server's speculative STT covers exactly the utterance it will be asked about.
   */
  pause(): void {
    if (this.#ended || this.#done || this.#paused) return;
    if (this.#client.protocol !== "v2" || !this.#client.serverCan("speculate")) return;
    this.#flushChunk();
    // While the server is away, the replay says `pause` itself.
    if (this.#holdTimer === undefined) {
      this.#client.send(encodeV2({ type: "pause", turn: this.id, ts: Date.now() }));
    }
    this.#paused = true;
  }

  /** Speech came back after {@link pause}: the held audio goes out, and streaming goes on. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    // clear() lets the buffer go rather than reusing it, so the view stays valid.
    const held = this.#held.view();
    this.#held.clear();
    if (held.length > 0) this.audio(held);
  }

  /** The utterance ended; `lastSpeechAt` is when its last speech sample was captured (ms). */
  end(lastSpeechAt: number): void {
    if (this.#ended || this.#done) return;
    this.#ended = true;
    this.#lastSpeechAt = lastSpeechAt;
    // Silence after a pause is not sent: the server's speculation covers the utterance.
    this.#paused = false;
    this.#held.clear();
    if (this.#client.protocol === "v2") this.#flushChunk();
    if (this.#holdTimer !== undefined) return; // sent when the server is back
    this.#sendEnd();
  }

  #sendEnd(): void {
    if (this.#client.protocol === "v1") {
      const pcm = this.#sent.view();
      this.#client.send(encodeV1({ device: this.device, rate: this.rate, request: this.id, pcm }));
    } else {
      this.#client.send(encodeV2({ type: "end", turn: this.id, ts: this.#lastSpeechAt }));
    }
    this.endWrittenAt = Date.now();
    if (!this.#done) this.#arm();
  }

  /** @internal The server is away: wait for it, failing after the client's outage hold. */
  hold(why: string): boolean {
    if (this.#holdTimer !== undefined) return true;
    if (this.#done || this.#replied || this.#replays >= MAX_REPLAYS) return false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const wait = this.#client.outageHoldMs;
    this.#holdTimer = setTimeout(() => {
      this.#holdTimer = undefined;
      this.abort("unavailable", `${why}, and it was not back within ${wait} ms`);
    }, wait);
    return true;
  }

  /** @internal The server is back: everything so far goes out again on the new connection. */
  replay(): void {
    if (this.#holdTimer === undefined || this.#done) return;
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    this.#replays++;
    if (this.#client.protocol === "v2") {
      const { id: turn, device, rate } = this;
      this.#client.send(encodeV2({ type: "start", turn, device, rate, ts: this.#startedAt }));
      const pcm = this.#sent.view();
      this.#seq = 0;
      if (pcm.length > 0) {
        this.#client.send(
          encodeV2({ type: "audio", turn, seq: this.#seq++, rate, ts: Date.now(), pcm }),
        );
      }
      if (this.#paused) this.#client.send(encodeV2({ type: "pause", turn, ts: Date.now() }));
      // Replayed once: a second outage fails the turn, so the copy is no longer needed.
      this.#sent.clear();
    }
    if (this.#ended) this.#sendEnd();
  }

  /**
   * Barge-in or hang-up: tells a v2 server how much was played (also after its reply ended,
   * so its memory records what the user heard); the turn is over and late audio is dropped.
   */
  cancel(playedMs: number): void {
    if (this.#cancelled || this.#failed) return;
    this.#cancelled = true;
    const sent = this.#holdTimer === undefined; // a turn still waiting was never sent
    if (sent && this.#client.protocol === "v2" && this.#client.serverCan("cancel")) {
      this.#client.send(
        encodeV2({
          type: "cancel",
          turn: this.id,
          ts: Date.now(),
          played_ms: Math.round(playedMs),
        }),
      );
    }
    this.#finish();
  }

  #flushChunk(): void {
    if (this.#chunkFill === 0) return;
    const pcm = this.#chunk.subarray(0, this.#chunkFill);
    if (!this.#replied && this.#replays < MAX_REPLAYS) this.#sent.append(pcm);
    if (this.#holdTimer === undefined) {
      this.#client.send(encodeV2({
        type: "audio",
        turn: this.id,
        seq: this.#seq++,
        rate: this.rate,
        ts: Date.now(),
        pcm,
      }));
    }
    this.#chunkFill = 0;
  }

  #arm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#done) return;
      if (this.#client.protocol === "v2" && this.#client.serverCan("cancel")) {
        this.#client.send(
          encodeV2({ type: "cancel", turn: this.id, ts: Date.now(), played_ms: 0 }),
        );
      }
      this.#failed = true;
      this.#finish();
      this.#handlers.fail(
        "timeout",
        `no response from the AI server within ${this.#client.responseTimeoutMs} ms`,
      );
      this.#client.responseTimedOut();
    }, this.#client.responseTimeoutMs);
  }

  /** @internal A server message for this turn. */
  receive(message: Decoded): void {
    if (this.#done) return;
    if (!this.#replied) {
      this.#replied = true;
      if (this.#client.protocol === "v2") this.#sent.clear();
    }
    if (message.version === 1) {
      const { frame } = message;
      this.#finish();
      if (frame.pcm.length > 0) this.#handlers.audio?.(frame.pcm, frame.rate);
      this.#handlers.end();
      return;
    }
    const m = message.message;
    if (this.#ended) this.#arm();
    switch (m.type) {
      case "audio":
        this.#handlers.audio?.(m.pcm, m.rate);
        break;
      case "text":
        this.#handlers.text?.(m.kind, m.text);
        break;
      case "end":
        this.#finish();
        this.#handlers.end(m.stages);
        break;
      case "error":
        this.#failed = true;
        this.#finish();
        this.#handlers.fail("server_error", `${m.code}: ${m.message}`);
        break;
    }
  }

  /** @internal The connection dropped or was never there. */
  abort(reason: TurnFailure, message: string): void {
    if (this.#done) return;
    this.#failed = true;
    this.#finish();
    this.#handlers.fail(reason, message);
  }

  #finish(): void {
    this.#done = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#holdTimer !== undefined) clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    this.#sent.clear();
    this.#held.clear();
    this.#client.forget(this);
  }
}

/** See the module doc. */
export class AiClient {
  readonly protocol: "v1" | "v2";
  readonly responseTimeoutMs: number;
  readonly outageHoldMs: number;
  #options: AiClientOptions;
  #log: Logger;
  #conn: Deno.TcpConn | undefined;
  #ready = false;
  #closed = false;
  #turns = new Map<string, Turn>();
  /** Turns waiting for the server to come back. */
  #waiting = new Set<Turn>();
  /** performance.now() since when the server has been away (undefined while connected). */
  #awaySince: number | undefined = performance.now();
  /** `t` + random letters of this client, then a decimal counter: `tqzkfpa1`, `tqzkfpa2`, … */
  #turnPrefix = `t${randomLetters(TURN_PREFIX_LETTERS)}`;
  #nextTurn = 1;
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
  #listeners = new Set<ConnectionListener>();
  /** Round-trip of the last pong, ms. */
  lastRttMs: number | undefined;
  /** Connections made so far. */
  connections = 0;

  constructor(options: AiClientOptions) {
    this.#options = options;
    this.protocol = options.protocol;
    this.#log = options.log;
    this.responseTimeoutMs = options.responseTimeoutMs ?? RESPONSE_TIMEOUT_MS;
    this.outageHoldMs = options.outageHoldMs ?? OUTAGE_HOLD_MS;
  }

  /** True when turns can be sent (connected, and for v2 the hello exchanged). */
  get connected(): boolean {
    return this.#ready;
  }

  /** Turns waiting for their reply. */
  get pendingTurns(): number {
    return this.#turns.size + this.#waiting.size;
  }

  onConnection(listener: ConnectionListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Starts connecting (and reconnecting forever until {@link close}). */
  start(): void {
    this.#connect();
  }

  /** @internal Whether the server announced `capability` in its hello. */
  serverCan(capability: string): boolean {
    return this.#serverCapabilities.has(capability);
  }

  /**
   * Opens a turn for `device` with user audio at `rate`. While the server is away the turn waits
   * for it (see {@link OUTAGE_HOLD_MS}); after a longer outage it fails at once with
   * `unavailable` (spec 4.3: audio requests are dropped during an outage).
   */
  startTurn(device: string, rate: SampleRate, handlers: TurnHandlers): Turn {
    const id = `${this.#turnPrefix}${this.#nextTurn++}`;
    const turn = new Turn(this, { id, device, rate, handlers });
    if (!this.#ready) {
      const away = this.#awaySince === undefined ? 0 : performance.now() - this.#awaySince;
      if (this.#closed || away > this.outageHoldMs || !turn.hold("the AI server is away")) {
        queueMicrotask(() => turn.abort("unavailable", "the AI server is not connected"));
      } else {
        this.#waiting.add(turn);
      }
      return turn;
    }
    this.#turns.set(id, turn);
    if (this.protocol === "v2") {
      this.send(encodeV2({ type: "start", turn: id, device, rate, ts: Date.now() }));
    }
    return turn;
  }

  /** Stops for good: closes the socket, fails open turns, stops timers. */
  close(): void {
    this.#closed = true;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#teardown("the gateway is shutting down");
  }

  /** @internal Queues bytes for the socket, in order; dropped when not connected. */
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

  /** @internal A v1 turn got no response in time: in-order answers mean the server is stuck. */
  responseTimedOut(): void {
    if (this.protocol === "v1") this.#dropConnection(this.#conn, "response timeout");
  }

  /** @internal */
  forget(turn: Turn): void {
    if (this.#turns.get(turn.id) === turn) this.#turns.delete(turn.id);
    this.#waiting.delete(turn);
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
    const { host, port } = this.#options;
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname: host, port });
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
    conn.setNoDelay(true);
    this.#conn = conn;
    this.connections++;
    const decoder = new FrameDecoder({ version: this.protocol === "v1" ? 1 : 2 });
    let helloTimer: ReturnType<typeof setTimeout> | undefined;
    if (this.protocol === "v2") {
      this.send(encodeV2({
        type: "hello",
        version: 2,
        role: "gateway",
        capabilities: CAPABILITIES,
        ts: Date.now(),
      }));
      helloTimer = setTimeout(() => {
        this.#log.warn("AI server sent no hello", { host, port, timeout_ms: HELLO_TIMEOUT_MS });
        this.#dropConnection(conn, "no hello");
      }, HELLO_TIMEOUT_MS);
    } else {
      this.#becomeReady();
    }
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        let decoded: Decoded[];
        try {
          decoded = decoder.push(buffer.subarray(0, n));
        } catch (error) {
          this.#log.error("AI server sent an undecodable frame", {
            error: (error as Error).message,
          });
          if (this.protocol === "v2" && conn === this.#conn) {
            // docs/protocol.md: answer undecodable input with `bad_frame`, then close.
            this.send(encodeV2(errorMessage("bad_frame", (error as Error).message)));
            this.#sendsStopped = true;
            await this.#flushWrites(CLOSE_FLUSH_MS);
          }
          break;
        }
        for (const item of decoded) {
          if (item.version === 2 && item.message.type === "hello") {
            clearTimeout(helloTimer);
            this.#serverCapabilities = new Set(item.message.capabilities);
            this.#becomeReady();
            continue;
          }
          this.#dispatch(item);
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

  #becomeReady(): void {
    this.#ready = true;
    this.#awaySince = undefined;
    this.#attempt = 0;
    this.#log.info("AI server connected", {
      host: this.#options.host,
      port: this.#options.port,
      protocol: this.protocol,
      replaying: this.#waiting.size,
    });
    if (this.protocol === "v2") this.#schedulePing();
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const turn of waiting) {
      this.#turns.set(turn.id, turn);
      turn.replay();
    }
    for (const listener of this.#listeners) listener(true);
  }

  #schedulePing(): void {
    const interval = this.#options.pingIntervalMs ?? PING_INTERVAL_MS;
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
    this.send(encodeV2({ type: "ping", id, ts: Date.now() }));
    const timeout = this.#options.pongTimeoutMs ?? PONG_TIMEOUT_MS;
    this.#pongTimer = setTimeout(() => {
      this.#pongTimer = undefined;
      this.#log.warn("AI server did not answer a ping", { id, timeout_ms: timeout });
      this.#dropConnection(conn, "ping timeout");
    }, timeout);
  }

  #dispatch(item: Decoded): void {
    if (item.version === 1) {
      const turn = this.#turns.get(item.frame.request);
      if (!turn) {
        this.#log.debug("response for an unknown request", { request: item.frame.request });
        return;
      }
      turn.receive(item);
      return;
    }
    const m: V2Message = item.message;
    switch (m.type) {
      case "ping":
        this.send(encodeV2({ type: "pong", id: m.id, ts: Date.now() }));
        return;
      case "pong":
        if (this.#awaitingPong?.id === m.id) {
          this.lastRttMs = Date.now() - this.#awaitingPong.sentAt;
          this.#awaitingPong = undefined;
          clearTimeout(this.#pongTimer);
          this.#pongTimer = undefined;
        }
        return;
      case "error":
        if (m.turn === undefined) {
          this.#log.error("AI server reported a connection error", {
            code: m.code,
            message: m.message,
          });
          return;
        }
        break;
      case "audio":
      case "text":
      case "end":
        break;
      default:
        this.#log.warn("unexpected message from the AI server", { type: m.type });
        return;
    }
    const turn = this.#turns.get(m.turn!);
    if (!turn) {
      // Late audio of a cancelled or timed-out turn: dropped by its id (docs/protocol.md).
      this.#log.debug("message for a finished turn dropped", { turn: m.turn, type: m.type });
      return;
    }
    turn.receive(item);
  }

  #dropConnection(conn: Deno.TcpConn | undefined, why: string): void {
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
    this.#awaySince ??= performance.now();
    const turns = [...this.#turns.values()];
    this.#turns.clear();
    for (const turn of turns) {
      if (!this.#closed && turn.hold(why)) this.#waiting.add(turn);
      else turn.abort("disconnected", why);
    }
    if (this.#closed) {
      for (const turn of [...this.#waiting]) turn.abort("unavailable", why);
    }
    if (wasReady) { for (const listener of this.#listeners) listener(false); }
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

function randomLetters(count: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(count));
  // 256 % 26 leaves a slight bias towards a–v: irrelevant for uniqueness.
  return String.fromCharCode(...[...bytes].map((b) => 0x61 + (b % 26)));
}
