/**
 * The TCP socket the gateway sends utterances to (spec 6.1), speaking both protocol versions of
 * docs/protocol.md on the same port; the first line of a connection picks one.
 *
 * - **v1** (spec 4.2/6.1): each request frame is answered by exactly one frame with the same
 *   device and request ids, at 48000 Hz, in request order; an empty body means nothing was heard
 *   (or nothing could be said: busy, error). Undecodable input closes the connection.
 * - **v2**: hello exchange, then turns (`start`, `audio`…, `end`) answered with `text` events,
 *   reply `audio` chunks per sentence and an `end` carrying the server's `stages`; `cancel`
 *   (barge-in) with `played_ms`, `ping`/`pong`, and typed `error`s. A `pause` (the user went
 *   quiet) starts STT on the audio so far while the inference queue is idle; more audio discards
 *   it, and an `end` right after uses it instead of transcribing again. Undecodable input gets a
 *   `bad_frame` error, then the connection is closed.
 *
 * Every connection is independent: frames are decoded synchronously as bytes arrive (bounded by
 * the shared codec's limits), inference goes through the shared {@link InferenceQueue}, writes
 * are queued per connection, and timers end frames that stall half-way, turns that never end,
 * and silent v2 connections. Nothing a peer sends can throw out of a connection's handler.
 */
import {
  type Decoded,
  DEFAULT_FRAME_LIMITS,
  encodeV1,
  encodeV2,
  type EndMessage,
  errorMessage,
  FrameDecoder,
  FrameError,
  type FrameLimits,
  maxPcmBytes,
  type SampleRate,
  type V1Frame,
  V2_CAPABILITIES,
  type V2Message,
} from "../shared/frame_codec.ts";
import type { Logger } from "../shared/log.ts";
import { type InferenceQueue, QueueError } from "./inference_queue.ts";
import type { Pipeline, ReplySink, SpeculativeStt, TurnResult, Utterance } from "./pipeline.ts";

/** Spec 6.1: the Python `AudioInferenceServer` always answers at 48000 Hz. */
export const V1_REPLY_RATE = 48000;

/** How long a peer may take, in ms. */
export interface AudioSocketTimeouts {
  /** From a frame's first byte to its last: 10 s, the gateway's own reply timeout (spec 4.4). */
  frameMs: number;
  /** Silence on a v2 connection: the gateway pings every few seconds, so 60 s means it is gone. */
  idleMs: number;
  /** From a v2 turn's `start` to its `end`: the 30 s utterance limit (spec 5.4) plus 15 s. */
  turnMs: number;
}

export const DEFAULT_TIMEOUTS: Readonly<AudioSocketTimeouts> = Object.freeze({
  frameMs: 10_000,
  idleMs: 60_000,
  turnMs: 45_000,
});

/** Connections served at once; a home has a gateway or two, so 32 only stops a flood. */
export const DEFAULT_MAX_CONNECTIONS = 32;
/** v2 turns receiving audio at once on one connection: one per device, a few devices. */
const MAX_OPEN_TURNS = 8;
/** v1 requests waiting for their answer on one connection; later ones are answered empty. */
const MAX_V1_PENDING = 4;
/** Finished turn ids remembered per connection, to accept a late cancel (barge-in) for them. */
const FINISHED_TURNS_KEPT = 32;
/** Longest wait for a last error message to be written before closing anyway. */
const CLOSE_FLUSH_MS = 1000;
/** Unsent reply bytes per connection before it counts as not reading (~30 s of 48 kHz audio). */
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

/** Options of {@link AudioSocketServer.listen}. */
export interface AudioSocketOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  pipeline: Pipeline;
  queue: InferenceQueue;
  log?: Logger;
  limits?: Partial<FrameLimits>;
  timeouts?: Partial<AudioSocketTimeouts>;
  maxConnections?: number;
}

interface Settings {
  pipeline: Pipeline;
  queue: InferenceQueue;
  log: Logger | undefined;
  limits: FrameLimits;
  timeouts: AudioSocketTimeouts;
}

/** The listening socket and its connections. */
export class AudioSocketServer {
  readonly hostname: string;
  readonly port: number;
  #listener: Deno.TcpListener;
  #connections = new Set<Connection>();
  #settings: Settings;
  #maxConnections: number;
  #accepting: Promise<void>;

  private constructor(listener: Deno.TcpListener, options: AudioSocketOptions) {
    this.#listener = listener;
    this.hostname = listener.addr.hostname;
    this.port = listener.addr.port;
    this.#settings = {
      pipeline: options.pipeline,
      queue: options.queue,
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

/** A v2 turn between its `start` and the end of its reply. */
interface Turn {
  id: string;
  device: string;
  rate: SampleRate;
  chunks: Uint8Array[];
  bytes: number;
  nextSeq: number;
  phase: "receiving" | "queued" | "running";
  controller: AbortController;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Set by a cancel that arrives while the turn runs. */
  playedMs?: number;
  /** Next reply audio chunk's seq. */
  outSeq: number;
  /** STT started by a `pause` on the first `bytes` of audio; aborted when more audio comes. */
  speculation?: { controller: AbortController; bytes: number; result: Promise<SpeculativeStt> };
}

class Connection {
  #conn: Deno.TcpConn;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #settings: Settings;
  #log: Logger | undefined;
  #peer: string;
  #decoder: FrameDecoder;
  #closed = false;
  /** An error was sent; the connection closes once it is written and reads nothing more. */
  #closing = false;
  #firstByte: number | undefined;
  #writes: Promise<void> = Promise.resolve();
  #unsent = 0;
  #frameTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #capabilities = new Set<string>();
  #turns = new Map<string, Turn>();
  /** Recently finished or cancelled turns → memory row id (if the turn was stored). */
  #finished = new Map<string, number | undefined>();
  #v1Chain: Promise<void> = Promise.resolve();
  #v1Pending = 0;
  #v1Controllers = new Set<AbortController>();

  constructor(conn: Deno.TcpConn, settings: Settings) {
    this.#conn = conn;
    this.#writer = conn.writable.getWriter();
    this.#settings = settings;
    this.#log = settings.log;
    this.#peer = `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`;
    this.#decoder = new FrameDecoder({ version: "auto", limits: settings.limits });
  }

  /** True until the peer's first byte. */
  get silent(): boolean {
    return this.#firstByte === undefined;
  }

  async serve(): Promise<void> {
    this.#log?.info("connection opened", { peer: this.#peer });
    const reader = this.#conn.readable.getReader();
    try {
      while (!this.#closed && !this.#closing) {
        const { value, done } = await reader.read();
        if (done || this.#closed || this.#closing) break;
        this.#firstByte ??= value[0];
        this.#onBytes(value);
      }
    } catch (error) {
      if (!this.#closed) this.#log?.debug("connection read failed", { peer: this.#peer, error });
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
    this.#log?.info("connection closed", { peer: this.#peer, reason });
  }

  /** Timers off, every turn of this connection cancelled. */
  #stopWork(reason: string): void {
    clearTimeout(this.#frameTimer);
    clearTimeout(this.#idleTimer);
    for (const turn of this.#turns.values()) {
      clearTimeout(turn.timer);
      turn.controller.abort(new Error(reason));
    }
    for (const controller of this.#v1Controllers) controller.abort(new Error(reason));
  }

  /** Closes once everything queued so far has been written (e.g. after an error message). */
  #closeAfterWrites(reason: string): void {
    if (this.#closed || this.#closing) return;
    this.#closing = true;
    this.#stopWork(reason);
    this.#writes = this.#writes.finally(() => this.close(reason));
    // A peer that does not read would keep the write, and so the connection, pending.
    this.#flushTimer = setTimeout(() => this.close(`${reason} (unflushed)`), CLOSE_FLUSH_MS);
  }

  #onBytes(bytes: Uint8Array): void {
    let decoded: Decoded[];
    try {
      decoded = this.#decoder.push(bytes);
    } catch (error) {
      this.#badFrame(error);
      return;
    }
    // Any bytes count as life (a large frame may take several reads).
    if (this.#decoder.version === 2) this.#armIdle();
    // A frame must complete within frameMs of its first byte; progress restarts the clock.
    if (decoded.length > 0 || this.#decoder.bufferedBytes === 0) {
      clearTimeout(this.#frameTimer);
      this.#frameTimer = undefined;
    }
    if (this.#decoder.bufferedBytes > 0 && this.#frameTimer === undefined) {
      this.#frameTimer = setTimeout(() => this.#slowFrame(), this.#settings.timeouts.frameMs);
    }
    for (const item of decoded) {
      if (this.#closed || this.#closing) return;
      try {
        if (item.version === 1) this.#onV1(item.frame);
        else this.#onV2(item.message);
      } catch (error) {
        // A bug of ours must not take the server down; it takes this connection down.
        this.#log?.error("frame handler failed", { peer: this.#peer, error });
        this.#fail("internal", `server error: ${(error as Error).message}`);
        return;
      }
    }
  }

  #isV2(): boolean {
    return this.#decoder.version === 2 || this.#firstByte === 0x7b;
  }

  #badFrame(error: unknown): void {
    const message = error instanceof FrameError ? error.message : String(error);
    this.#log?.warn("bad frame", {
      peer: this.#peer,
      code: error instanceof FrameError ? error.code : "unknown",
      error: message,
    });
    this.#fail("bad_frame", message);
  }

  /** A connection-level failure: v2 gets an error message first, v1 is simply closed. */
  #fail(code: string, message: string): void {
    if (this.#isV2()) {
      this.#sendV2(errorMessage(code, message));
      this.#closeAfterWrites(`${code}: ${message}`);
    } else {
      this.close(`${code}: ${message}`);
    }
  }

  #slowFrame(): void {
    const { frameMs } = this.#settings.timeouts;
    this.#log?.warn("frame stalled", { peer: this.#peer, buffered: this.#decoder.bufferedBytes });
    this.#fail(
      "timeout",
      `frame incomplete after ${frameMs} ms (${this.#decoder.bufferedBytes} bytes buffered)`,
    );
  }

  #armIdle(): void {
    clearTimeout(this.#idleTimer);
    const { idleMs } = this.#settings.timeouts;
    this.#idleTimer = setTimeout(
      () => this.#fail("timeout", `no message for ${idleMs} ms; ping to keep the connection`),
      idleMs,
    );
  }

  #send(bytes: Uint8Array): void {
    if (this.#closed || this.#closing) return;
    this.#unsent += bytes.length;
    if (this.#unsent > MAX_UNSENT_BYTES) {
      this.#log?.warn("peer is not reading", { peer: this.#peer, unsent: this.#unsent });
      this.close(`more than ${MAX_UNSENT_BYTES} bytes unsent`);
      return;
    }
    this.#writes = this.#writes.then(async () => {
      try {
        await this.#writer.write(bytes);
        this.#unsent -= bytes.length;
      } catch (error) {
        if (!this.#closed) this.#log?.debug("write failed", { peer: this.#peer, error });
        this.close("write failed");
      }
    });
  }

  #sendV2(message: V2Message): void {
    try {
      this.#send(encodeV2(message, this.#settings.limits));
    } catch (error) {
      this.#log?.error("cannot encode reply", { peer: this.#peer, type: message.type, error });
    }
  }

  // -------------------------------------------------------------------------------------------
  // v1

  #onV1(frame: V1Frame): void {
    const respond = (pcm: Uint8Array) => {
      // A reply longer than one frame may carry is cut, never refused.
      const max = maxPcmBytes(V1_REPLY_RATE, this.#settings.limits);
      const body = pcm.length > max ? pcm.subarray(0, max) : pcm;
      try {
        this.#send(encodeV1(
          { device: frame.device, rate: V1_REPLY_RATE, request: frame.request, pcm: body },
          this.#settings.limits,
        ));
      } catch (error) {
        this.#log?.error("cannot encode v1 reply", { peer: this.#peer, error });
        this.close("cannot encode a reply");
      }
    };
    if (this.#v1Pending >= MAX_V1_PENDING) {
      this.#log?.warn("v1 request answered empty: too many pending", {
        peer: this.#peer,
        request: frame.request,
      });
      this.#v1Chain = this.#v1Chain.then(() => respond(new Uint8Array(0)));
      return;
    }
    this.#v1Pending++;
    const controller = new AbortController();
    this.#v1Controllers.add(controller);
    const utterance: Utterance = {
      device: frame.device,
      turn: frame.request,
      pcm: frame.pcm,
      rate: frame.rate,
      endedAt: Date.now(),
    };
    this.#v1Chain = this.#v1Chain.then(async () => {
      const chunks: Uint8Array[] = [];
      const sink: ReplySink = {
        transcript: () => {},
        reply: () => {},
        audio: (pcm) => chunks.push(pcm),
      };
      let pcm: Uint8Array = new Uint8Array(0);
      try {
        const result = await this.#settings.queue.run(
          frame.request,
          (signal) =>
            this.#settings.pipeline.run(utterance, sink, { signal, outputRate: V1_REPLY_RATE }),
          { signal: controller.signal },
        );
        if (!result.cancelled) pcm = concat(chunks);
      } catch (error) {
        this.#logTurnError(frame.device, frame.request, error);
      } finally {
        this.#v1Pending--;
        this.#v1Controllers.delete(controller);
      }
      respond(pcm);
    }).catch((error) => this.#log?.error("v1 request failed", { peer: this.#peer, error }));
  }

  #logTurnError(device: string, turn: string, error: unknown): void {
    if (error instanceof QueueError) {
      this.#log?.warn(`turn ${error.code}`, { peer: this.#peer, device, turn });
    } else {
      this.#log?.error("turn failed", { peer: this.#peer, device, turn, error });
    }
  }

  // -------------------------------------------------------------------------------------------
  // v2

  #onV2(message: V2Message): void {
    switch (message.type) {
      case "hello":
        if (this.#capabilities.size > 0 || message.role !== "gateway") {
          this.#turnError(undefined, "bad_frame", `unexpected hello from ${message.role}`);
          return;
        }
        for (const capability of message.capabilities) this.#capabilities.add(capability);
        this.#capabilities.add("hello");
        this.#sendV2({
          type: "hello",
          version: 2,
          role: "server",
          // `speculate` only where a pause is used: a pipeline with STT to start early.
          capabilities: V2_CAPABILITIES.filter((c) =>
            c !== "speculate" || this.#settings.pipeline.speculate !== undefined
          ),
          ts: Date.now(),
        });
        return;
      case "start":
        return this.#onStart(message.turn, message.device, message.rate);
      case "audio":
        return this.#onAudio(message.turn, message.seq, message.rate, message.pcm);
      case "pause":
        return this.#onPause(message.turn);
      case "end":
        return this.#onEnd(message.turn);
      case "cancel":
        return this.#onCancel(message.turn, message.played_ms);
      case "ping":
        this.#sendV2({ type: "pong", id: message.id, ts: Date.now() });
        return;
      case "pong":
        return;
      case "error":
        this.#log?.warn("gateway reported an error", { peer: this.#peer, ...message });
        return;
      case "text":
        this.#turnError(message.turn, "unsupported", "text input is not supported");
        return;
    }
  }

  #turnError(turn: string | undefined, code: string, message: string): void {
    this.#sendV2(errorMessage(code, message, { turn }));
  }

  #onStart(id: string, device: string, rate: SampleRate): void {
    if (this.#turns.has(id) || this.#finished.has(id)) {
      this.#turnError(id, "bad_frame", `turn ${id} already exists on this connection`);
      return;
    }
    const receiving = [...this.#turns.values()].filter((t) => t.phase === "receiving").length;
    if (receiving >= MAX_OPEN_TURNS) {
      this.#turnError(id, "busy", `too many open turns (${MAX_OPEN_TURNS})`);
      return;
    }
    const turn: Turn = {
      id,
      device,
      rate,
      chunks: [],
      bytes: 0,
      nextSeq: 0,
      phase: "receiving",
      controller: new AbortController(),
      timer: undefined,
      outSeq: 0,
    };
    const { turnMs } = this.#settings.timeouts;
    turn.timer = setTimeout(() => {
      if (turn.phase !== "receiving") return;
      this.#dropTurn(turn, "timeout", `turn ${id} got no end within ${turnMs} ms`);
    }, turnMs);
    this.#turns.set(id, turn);
  }

  /** Ends a turn that is still receiving, with an error for it. */
  #dropTurn(turn: Turn, code: string, message: string): void {
    clearTimeout(turn.timer);
    turn.controller.abort();
    this.#turns.delete(turn.id);
    this.#remember(turn.id, undefined);
    this.#turnError(turn.id, code, message);
  }

  #onAudio(id: string, seq: number, rate: SampleRate, pcm: Uint8Array): void {
    const turn = this.#turns.get(id);
    if (turn === undefined) {
      // Late audio of a turn that was cancelled or failed is expected; anything else is not.
      if (!this.#finished.has(id)) this.#turnError(id, "unknown_turn", `turn ${id} has no start`);
      return;
    }
    if (turn.phase !== "receiving") {
      this.#turnError(id, "bad_frame", `audio for turn ${id} after its end`);
      return;
    }
    if (rate !== turn.rate) {
      this.#dropTurn(turn, "bad_frame", `audio rate ${rate} for turn ${id}, expected ${turn.rate}`);
      return;
    }
    if (seq !== turn.nextSeq) {
      this.#dropTurn(
        turn,
        "bad_frame",
        `audio seq ${seq} for turn ${id}, expected ${turn.nextSeq}`,
      );
      return;
    }
    const max = maxPcmBytes(turn.rate, this.#settings.limits);
    if (turn.bytes + pcm.length > max) {
      this.#dropTurn(
        turn,
        "bad_frame",
        `turn ${id} audio exceeds ${max} bytes (${this.#settings.limits.maxAudioSeconds} s)`,
      );
      return;
    }
    turn.nextSeq++;
    turn.bytes += pcm.length;
    turn.chunks.push(pcm);
    // Speech resumed: the speculation no longer covers the utterance.
    this.#discardSpeculation(turn);
  }

  /**
   * The user went quiet: STT on the audio so far, abortable. Only while the inference queue is
   * idle (spec 16.2: inference is sequential; speculation uses spare CPU, never a turn's), and
   * only STT: the assistant has side effects and runs after `end`.
   */
  #onPause(id: string): void {
    const turn = this.#turns.get(id);
    if (turn === undefined) {
      // A pause for a turn that already ended, failed or was cancelled is only a stale hint.
      if (!this.#finished.has(id)) this.#turnError(id, "unknown_turn", `turn ${id} has no start`);
      return;
    }
    const { pipeline, queue } = this.#settings;
    if (turn.phase !== "receiving" || turn.bytes === 0 || !pipeline.speculate) return;
    if (turn.speculation?.bytes === turn.bytes) return;
    this.#discardSpeculation(turn);
    if (!queue.idle) return;
    turn.chunks = [concat(turn.chunks)];
    const controller = new AbortController();
    const signal = AbortSignal.any([turn.controller.signal, controller.signal]);
    const result = pipeline.speculate(turn.chunks[0], turn.rate, { signal });
    if (result === undefined) return;
    // Awaited by the turn if it ends now; a discarded one's rejection is expected.
    result.catch(() => {});
    turn.speculation = { controller, bytes: turn.bytes, result };
  }

  #discardSpeculation(turn: Turn): void {
    turn.speculation?.controller.abort();
    turn.speculation = undefined;
  }

  #onEnd(id: string): void {
    const turn = this.#turns.get(id);
    if (turn === undefined || turn.phase !== "receiving") {
      this.#turnError(id, "unknown_turn", `turn ${id} is not receiving audio`);
      return;
    }
    clearTimeout(turn.timer);
    turn.phase = "queued";
    const speculation = turn.speculation?.bytes === turn.bytes
      ? turn.speculation.result
      : undefined;
    const utterance: Utterance = {
      device: turn.device,
      turn: id,
      pcm: concat(turn.chunks),
      rate: turn.rate,
      endedAt: Date.now(),
    };
    turn.chunks = [];
    const queuedAt = performance.now();
    let ranAt = queuedAt;
    const sink = this.#sinkFor(turn);
    this.#settings.queue.run(id, (signal) => {
      turn.phase = "running";
      ranAt = performance.now();
      return this.#settings.pipeline.run(utterance, sink, {
        signal,
        outputRate: turn.rate,
        speculation,
      });
    }, { signal: turn.controller.signal }).then((result: TurnResult) => {
      if (turn.playedMs !== undefined && result.memoryId !== undefined) {
        this.#markInterrupted(result.memoryId, turn.playedMs);
      }
      this.#finish(turn, result.memoryId);
      if (result.cancelled || turn.controller.signal.aborted) return;
      // Stages go to every gateway: an optional field any decoder accepts, and the latency
      // report needs them even from a gateway that forgot to announce "stages".
      const end: EndMessage = {
        type: "end",
        turn: id,
        ts: Date.now(),
        stages: { queue_ms: Math.round((ranAt - queuedAt) * 10) / 10, ...result.stages },
      };
      this.#sendV2(end);
    }, (error: unknown) => {
      this.#finish(turn, undefined);
      this.#logTurnError(turn.device, id, error);
      if (error instanceof QueueError) {
        if (error.code === "busy") this.#turnError(id, "busy", error.message);
        return;
      }
      this.#turnError(id, "internal", `turn failed: ${(error as Error).message ?? error}`);
    }).catch((error) => this.#log?.error("turn handler failed", { peer: this.#peer, error }));
  }

  #markInterrupted(memoryId: number, playedMs: number): void {
    try {
      this.#settings.pipeline.markInterrupted(memoryId, playedMs);
    } catch (error) {
      this.#log?.error("cannot record the interruption", { peer: this.#peer, error });
    }
  }

  #sinkFor(turn: Turn): ReplySink {
    const live = () => !this.#closed && !this.#closing && !turn.controller.signal.aborted;
    const text = (kind: "transcript" | "reply", value: string) => {
      if (live() && this.#capabilities.has("text")) {
        this.#sendV2({ type: "text", turn: turn.id, kind, ts: Date.now(), text: value });
      }
    };
    return {
      transcript: (value) => text("transcript", value),
      reply: (value) => text("reply", value),
      audio: (pcm, rate) => {
        if (!live()) return;
        this.#sendV2({
          type: "audio",
          turn: turn.id,
          seq: turn.outSeq++,
          rate: rate as SampleRate,
          ts: Date.now(),
          pcm,
        });
      },
    };
  }

  #finish(turn: Turn, memoryId: number | undefined): void {
    this.#discardSpeculation(turn);
    this.#turns.delete(turn.id);
    this.#remember(turn.id, memoryId);
  }

  #remember(id: string, memoryId: number | undefined): void {
    this.#finished.set(id, memoryId);
    if (this.#finished.size > FINISHED_TURNS_KEPT) {
      this.#finished.delete(this.#finished.keys().next().value!);
    }
  }

  #onCancel(id: string, playedMs: number): void {
    const turn = this.#turns.get(id);
    if (turn !== undefined) {
      // Receiving: dropped. Queued: leaves the queue. Running: stops at its next stage boundary.
      turn.playedMs = playedMs;
      clearTimeout(turn.timer);
      turn.controller.abort();
      if (turn.phase === "receiving") this.#finish(turn, undefined);
      return;
    }
    if (this.#finished.has(id)) {
      // Barge-in after the whole reply was sent: the user heard only played_ms of it.
      const memoryId = this.#finished.get(id);
      if (memoryId !== undefined) this.#markInterrupted(memoryId, playedMs);
      return;
    }
    this.#turnError(id, "unknown_turn", `turn ${id} is not known on this connection`);
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
