/**
 * The gateway's client of the AI server (spec 4.2-4.4, docs/protocol.md): the turns of every
 * device over one TCP link. It puts three parts together, each in its own module:
 *
 * - the connection (`ai_connection.ts`): connect, hello, pings, bounded write queue, backoff;
 * - the turn (`ai_turn.ts`): one utterance streamed out and its reply streamed back, written by
 *   the protocol's adapter (`ai_protocol.ts`: v2 streaming, v1 one frame per utterance);
 * - the outage hold (`outage_hold.ts`): a turn cut off by a restarting server waits for it and is
 *   sent again, whole, once it is back.
 *
 * This module keeps the table of open turns, routes the connection's reply items to them, and is
 * the {@link TurnLink} every turn talks to. A v1 server answers strictly in order and cannot be
 * pinged, so there a response timeout also reopens the connection.
 *
 * @example
 * ```ts
 * const client = new AiClient({ host: "127.0.0.1", port: 9999, protocol: "v2", log });
 * client.start();
 * const turn = client.startTurn("kitchen", 16000, handlers);
 * turn.audio(pcmBytes); turn.end(lastSpeechAt);
 * ```
 */
import {
  encodeV2,
  type ErrorMessage,
  type FrameRequestMessage,
  type ImageMessage,
  type SampleRate,
} from "../shared/frame_codec.ts";
import type { Logger } from "../shared/log.ts";
import { AiConnection, type AiConnectionOptions } from "./ai_connection.ts";
import { type AiProtocol, aiProtocol, type TurnReply } from "./ai_protocol.ts";
import { RESPONSE_TIMEOUT_MS, Turn, type TurnHandlers, type TurnLink } from "./ai_turn.ts";
import { OUTAGE_HOLD_MS, OutageHold } from "./outage_hold.ts";

/**
 * Random letters that start every turn id of one client: the server's memory marks a barge-in
 * by (device, turn), so ids must not repeat across gateway restarts. 26^6 ≈ 3·10^8 runs.
 */
const TURN_PREFIX_LETTERS = 6;
/** Letters a turn prefix is made of. */
const ALPHABET_LETTERS = 26;

/** Options of {@link AiClient}. */
export interface AiClientOptions {
  host: string;
  port: number;
  protocol: "v1" | "v2";
  log: Logger;
  /** Default {@link RESPONSE_TIMEOUT_MS}. */
  responseTimeoutMs?: number;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  /** How long a turn waits for a restarting server; default {@link OUTAGE_HOLD_MS}. */
  outageHoldMs?: number;
  /** Authentication and TLS of the connection (gateway/ai_connection.ts). */
  access?: Pick<AiConnectionOptions, "secret" | "tls">;
}

/** Connection state changes, for logs and metrics. */
export type ConnectionListener = (connected: boolean) => void;

/** See the module doc. */
export class AiClient implements TurnLink {
  readonly protocol: "v1" | "v2";
  readonly responseTimeoutMs: number;
  readonly outageHoldMs: number;
  #adapter: AiProtocol;
  #log: Logger;
  #connection: AiConnection;
  #hold: OutageHold<Turn>;
  #closed = false;
  #turns = new Map<string, Turn>();
  /** `t` + random letters of this client, then a decimal counter: `tqzkfpa1`, `tqzkfpa2`, … */
  #turnPrefix = turnPrefix();
  #nextTurn = 1;
  #listeners = new Set<ConnectionListener>();
  #frameRequests: ((message: FrameRequestMessage) => void) | undefined;

  constructor(options: AiClientOptions) {
    this.protocol = options.protocol;
    this.#adapter = aiProtocol(options.protocol);
    this.#log = options.log;
    this.responseTimeoutMs = options.responseTimeoutMs ?? RESPONSE_TIMEOUT_MS;
    this.outageHoldMs = options.outageHoldMs ?? OUTAGE_HOLD_MS;
    this.#hold = new OutageHold(this.outageHoldMs);
    this.#connection = new AiConnection({
      host: options.host,
      port: options.port,
      protocol: this.#adapter,
      log: options.log,
      pingIntervalMs: options.pingIntervalMs,
      pongTimeoutMs: options.pongTimeoutMs,
      ...options.access,
    }, {
      ready: () => this.#serverBack(),
      turn: (id, replies) => this.#receive(id, replies),
      lost: (why, wasReady) => this.#serverLost(why, wasReady),
      frameRequest: (message) => this.#frameRequests?.(message),
    });
  }

  /** True when turns can be sent (connected, and for v2 the hello exchanged). */
  get connected(): boolean {
    return this.#connection.ready;
  }

  /** Turns waiting for their reply. */
  get pendingTurns(): number {
    return this.#turns.size + this.#hold.size;
  }

  /** Round-trip of the last pong, ms. */
  get lastRttMs(): number | undefined {
    return this.#connection.lastRttMs;
  }

  /** Connections made so far. */
  get connections(): number {
    return this.#connection.connections;
  }

  /** Calls `listener` on every connect and disconnect; returns its removal. */
  onConnection(listener: ConnectionListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Who answers the server's `frame_request`s (the gateway's camera hub, docs/video.md). */
  onFrameRequest(handler: (message: FrameRequestMessage) => void): void {
    this.#frameRequests = handler;
  }

  /**
   * Sends a camera frame or a frame request's error (docs/protocol.md "Camera frames"): false,
   * and nothing sent, when the link is down or the server did not announce `image`.
   */
  sendCamera(message: ImageMessage | ErrorMessage): boolean {
    if (!this.connected || !this.serverCan("image")) return false;
    this.#connection.send(encodeV2(message));
    return true;
  }

  /** Starts connecting (and reconnecting forever until {@link close}). */
  start(): void {
    this.#connection.start();
  }

  /**
   * Opens a turn for `device` with user audio at `rate`; with `continues`, the new turn carries
   * that provisional turn's request too (docs/protocol.md "Continuing a turn"), and the caller
   * then supersedes it. While the server is away the turn waits
   * for it (see {@link OUTAGE_HOLD_MS}); after a longer outage it fails at once with
   * `unavailable` (spec 4.3: audio requests are dropped during an outage).
   */
  startTurn(
    device: string,
    rate: SampleRate,
    handlers: TurnHandlers,
    options: { continues?: Turn } = {},
  ): Turn {
    const id = `${this.#turnPrefix}${this.#nextTurn++}`;
    const earlier = options.continues;
    const continues = earlier && { id: earlier.id, pcm: earlier.requestAudio() };
    const turn = new Turn(this, { id, device, rate, handlers, protocol: this.#adapter, continues });
    if (!this.connected) {
      if (this.#closed || !this.#hold.holdNew(turn)) {
        queueMicrotask(() => turn.abort("unavailable", "the AI server is not connected"));
      }
      return turn;
    }
    this.#turns.set(id, turn);
    turn.open();
    return turn;
  }

  /** Stops for good: closes the socket, fails open turns, stops timers. */
  close(): void {
    this.#closed = true;
    this.#connection.close("the gateway is shutting down");
  }

  /**
   * {@link TurnLink}: bytes to the server, in order. Dropped until the link is ready: a turn
   * written while the server is away (or its hello is awaited) is replayed whole once it is.
   */
  send(bytes: Uint8Array): void {
    if (this.connected) this.#connection.send(bytes);
  }

  /** {@link TurnLink}: whether the server announced `capability` in its hello. */
  serverCan(capability: string): boolean {
    return this.#connection.serverCan(capability);
  }

  /** {@link TurnLink}: a server that answers in order and missed one is stuck. */
  responseTimedOut(): void {
    if (this.#adapter.inOrder) this.#connection.reconnect("response timeout");
  }

  /** {@link TurnLink}: the turn is over. */
  finished(turn: Turn): void {
    if (this.#turns.get(turn.id) === turn) this.#turns.delete(turn.id);
    this.#hold.release(turn);
  }

  #receive(id: string, replies: TurnReply[]): void {
    const turn = this.#turns.get(id);
    if (!turn) {
      // Late audio of a cancelled or timed-out turn: dropped by its id (docs/protocol.md).
      this.#log.debug("reply for a finished turn dropped", { turn: id });
      return;
    }
    for (const reply of replies) turn.receive(reply);
  }

  #serverBack(): void {
    const waiting = this.#hold.serverBack();
    if (waiting.length > 0) this.#log.info("replaying turns", { turns: waiting.length });
    for (const turn of waiting) {
      this.#turns.set(turn.id, turn);
      turn.replay();
    }
    for (const listener of this.#listeners) listener(true);
  }

  #serverLost(why: string, wasReady: boolean): void {
    this.#hold.serverLeft();
    const turns = [...this.#turns.values()];
    this.#turns.clear();
    for (const turn of turns) {
      if (this.#closed || !this.#hold.hold(turn, why)) turn.abort("disconnected", why);
    }
    if (this.#closed) this.#hold.failAll(why);
    if (wasReady) { for (const listener of this.#listeners) listener(false); }
  }
}

/** A fresh turn-id prefix: `t` and random letters (see {@link TURN_PREFIX_LETTERS}). */
export function turnPrefix(): string {
  return `t${randomLetters(TURN_PREFIX_LETTERS)}`;
}

function randomLetters(count: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(count));
  // 256 % 26 leaves a slight bias towards a–v: irrelevant for uniqueness.
  return String.fromCharCode(...[...bytes].map((b) => 0x61 + (b % ALPHABET_LETTERS)));
}
