/**
 * The gateway's client of its AI servers (spec 4.2-4.4, docs/protocol.md; issue 14,
 * docs/scaling.md "More than one AI server"): the turns of every device over one link per
 * `AI_SERVER_HOST` entry, one entry being the usual home. It puts these parts together, each in
 * its own module:
 *
 * - per server (`ai_server_link.ts`): its connection (`ai_connection.ts`: connect, hello, pings,
 *   bounded write queue, backoff), the turns placed on it, its last known load;
 * - the turn (`ai_turn.ts`): one utterance streamed out and its reply streamed back, written by
 *   the protocol's adapter (`ai_protocol.ts`: v2 streaming, v1 one frame per utterance);
 * - the outage hold (`outage_hold.ts`): a turn cut off while no server is live waits for the
 *   first one back and is sent again, whole.
 *
 * This module keeps the table of open turns and routes each server's reply items to them.
 *
 * - **Load**: each server's status (`naila/server/status`, `load`) is matched to its link by
 *   `audio_socket_port` (and the status's `hostname` where two entries share a port). A new turn
 *   goes to the live server with the lowest projected wait, ties to the fewest queued turns
 *   (`ai_server_link.ts`); a turn that continues another goes where that one was placed (also
 *   after its reply ended), if live; held in an outage, it goes there once that server is back and
 *   names the earlier turn, which the server kept uncommitted; anywhere else it goes out whole,
 *   as a plain turn.
 * - **Failover**: a server lost mid-turn hands its turns that have no reply yet (the turn says
 *   {@link Turn.replayable}) to the least loaded other live server, at once and whole; with no
 *   server live they wait in the outage hold. A turn whose reply already started fails
 *   `disconnected` (replaying it would say the reply twice).
 * - A v1 server answers strictly in order and cannot be pinged, so there a response timeout also
 *   reopens its connection.
 *
 * Each turn has its own small {@link TurnLink} that sends to the server it is placed on, so a
 * turn moves between servers without knowing it.
 *
 * @example
 * ```ts
 * const ai = new AiServers({ servers: [{ host, port: 9001 }], protocol: "v2", log });
 * ai.start();
 * ai.serverStatus(status); // from signaling
 * const turn = ai.startTurn("kitchen", 16000, handlers);
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
import type { ServerStatus } from "../shared/messages.ts";
import { AiConnection, type AiConnectionOptions } from "./ai_connection.ts";
import { type AiProtocol, aiProtocol, type TurnReply } from "./ai_protocol.ts";
import { leastLoaded, type ServerAddress, ServerLink } from "./ai_server_link.ts";
import { RESPONSE_TIMEOUT_MS, Turn, type TurnHandlers, type TurnLink } from "./ai_turn.ts";
import { OUTAGE_HOLD_MS, OutageHold } from "./outage_hold.ts";

export type { ServerAddress } from "./ai_server_link.ts";

/**
 * Random letters that start every turn id of one client: the server's memory marks a barge-in
 * by (device, turn), so ids must not repeat across gateway restarts. 26^6 ≈ 3·10^8 runs.
 */
const TURN_PREFIX_LETTERS = 6;
/** Letters a turn prefix is made of. */
const ALPHABET_LETTERS = 26;
/** Frame requests awaiting their answer, remembered per server; the oldest is forgotten past
 * this (the camera hub answers each one, in time or with an error, well before). */
const MAX_PENDING_GRABS = 64;

/** Options of {@link AiServers}. */
export interface AiServersOptions {
  /** One entry per server (`AI_SERVER_HOST`); at least one. */
  servers: ServerAddress[];
  protocol: "v1" | "v2";
  log: Logger;
  /** Default {@link RESPONSE_TIMEOUT_MS}. */
  responseTimeoutMs?: number;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  /** How long a turn waits when no server is live; default {@link OUTAGE_HOLD_MS}. */
  outageHoldMs?: number;
  /** Authentication and TLS of every server's connection (gateway/ai_connection.ts). */
  access?: Pick<AiConnectionOptions, "secret" | "tls">;
}

/** Options of {@link AiServers.startTurn}. */
export interface StartTurnOptions {
  /** The turn's id when the caller made it (a session worker, unique per gateway). */
  id?: string;
  /** The provisional turn this one continues (docs/protocol.md "Continuing a turn"). */
  continues?: Turn;
}

/** What the gateway needs of its AI link ({@link AiServers} is it). */
export interface AiLink {
  readonly protocol: "v1" | "v2";
  /** True when a turn can be sent now. */
  readonly connected: boolean;
  /** Round-trip of the last pong (ms), of any server. */
  readonly lastRttMs: number | undefined;
  /** Turns waiting for their reply. */
  readonly pendingTurns: number;
  start(): void;
  close(): void;
  startTurn(
    device: string,
    rate: SampleRate,
    handlers: TurnHandlers,
    options?: StartTurnOptions,
  ): Turn;
  /** Whether the server(s) a turn may go to announced `capability` in their hello. */
  serverCan(capability: string): boolean;
  /** Who answers the servers' `frame_request`s (the camera hub, docs/video.md). */
  onFrameRequest(handler: (message: FrameRequestMessage) => void): void;
  /** Sends a camera frame or a frame request's error; false when not sent (camera_hub.ts). */
  sendCamera(message: ImageMessage | ErrorMessage): boolean;
}

/** Connection state changes (some server live, or none), for logs and metrics. */
export type ConnectionListener = (connected: boolean) => void;

/** A turn's link: sends to the server the turn is placed on (see the module doc). */
class PlacedLink implements TurnLink {
  readonly responseTimeoutMs: number;
  server: ServerLink | undefined;
  #owner: AiServers;

  constructor(owner: AiServers, responseTimeoutMs: number) {
    this.#owner = owner;
    this.responseTimeoutMs = responseTimeoutMs;
  }

  /** Dropped until the turn's server is ready: a held turn is replayed whole once one is. */
  send(bytes: Uint8Array): void {
    if (this.server?.live) this.server.connection.send(bytes);
  }

  serverCan(capability: string): boolean {
    return this.server?.connection.serverCan(capability) ?? false;
  }

  responseTimedOut(): void {
    this.#owner.responseTimedOut(this.server);
  }

  finished(turn: Turn): void {
    this.#owner.finished(turn, this.server);
  }
}

/** See the module doc. */
export class AiServers implements AiLink {
  readonly protocol: "v1" | "v2";
  readonly responseTimeoutMs: number;
  readonly outageHoldMs: number;
  #adapter: AiProtocol;
  #log: Logger;
  #servers: ServerLink[];
  #links = new Map<Turn, PlacedLink>();
  /** The server each turn was last placed on, kept past its end for a continuation of it. */
  #placedOn = new WeakMap<Turn, ServerLink>();
  /** Continuations held from their start in an outage: their earlier turn's server. */
  #heldContinuations = new WeakMap<Turn, { server: ServerLink; continues: { whole: boolean } }>();
  #hold: OutageHold<Turn>;
  #closed = false;
  /** `t` + random letters of this client, then a decimal counter: `tqzkfpa1`, `tqzkfpa2`, … */
  #turnPrefix = turnPrefix();
  #nextTurn = 1;
  #listeners = new Set<ConnectionListener>();
  #frameRequests: ((message: FrameRequestMessage) => void) | undefined;
  /** Open frame requests: which server asked (its answer goes back there). */
  #grabs = new Map<string, ServerLink>();

  /** @throws {RangeError} `servers` is empty. */
  constructor(options: AiServersOptions) {
    if (options.servers.length === 0) throw new RangeError("AiServers needs at least one server");
    this.protocol = options.protocol;
    this.#adapter = aiProtocol(options.protocol);
    this.#log = options.log;
    this.responseTimeoutMs = options.responseTimeoutMs ?? RESPONSE_TIMEOUT_MS;
    this.outageHoldMs = options.outageHoldMs ?? OUTAGE_HOLD_MS;
    this.#hold = new OutageHold(this.outageHoldMs);
    this.#servers = options.servers.map((address) =>
      new ServerLink(address, (server) =>
        new AiConnection({
          host: address.host,
          port: address.port,
          protocol: this.#adapter,
          log: options.log,
          pingIntervalMs: options.pingIntervalMs,
          pongTimeoutMs: options.pongTimeoutMs,
          ...options.access,
        }, {
          ready: () => this.#serverBack(server),
          turn: (id, replies) => this.#receive(server, id, replies),
          lost: (why, wasReady) => this.#serverLost(server, why, wasReady),
          frameRequest: (message) => this.#frameRequest(server, message),
        }))
    );
  }

  /** True when some server is live (connected, and for v2 the hello exchanged). */
  get connected(): boolean {
    return this.#servers.some((server) => server.live);
  }

  /** Turns waiting for their reply, on any server or held. */
  get pendingTurns(): number {
    return this.#servers.reduce((sum, server) => sum + server.turns.size, 0) + this.#hold.size;
  }

  /** The last pong's round-trip (ms) of the first live server (else of the first server). */
  get lastRttMs(): number | undefined {
    return (this.#servers.find((server) => server.live) ?? this.#servers[0]).connection.lastRttMs;
  }

  /** Connections made so far, to all servers. */
  get connections(): number {
    return this.#servers.reduce((sum, server) => sum + server.connection.connections, 0);
  }

  /** Per server: address, live, open turns, turns answered, projected wait (ms). */
  get servers(): {
    host: string;
    port: number;
    live: boolean;
    open: number;
    answered: number;
    wait_ms: number;
  }[] {
    return this.#servers.map((server) => ({
      ...server.address,
      live: server.live,
      open: server.turns.size,
      answered: server.answered,
      wait_ms: server.projectedWaitMs(),
    }));
  }

  /** Calls `listener` when the first server becomes live and when the last one leaves. */
  onConnection(listener: ConnectionListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Who answers the servers' `frame_request`s (the camera hub, docs/video.md). */
  onFrameRequest(handler: (message: FrameRequestMessage) => void): void {
    this.#frameRequests = handler;
  }

  /**
   * Sends a camera frame (docs/protocol.md "Camera frames"): a grab or a request's error to the
   * server that asked, a motion frame to the first live server announcing `image` (one server
   * runs the alert rules, so an alert is raised once). False, nothing sent, when none can take it.
   */
  sendCamera(message: ImageMessage | ErrorMessage): boolean {
    let server: ServerLink | undefined;
    if (message.request !== undefined) {
      server = this.#grabs.get(message.request);
      this.#grabs.delete(message.request);
    } else {
      server = this.#servers.find((s) => s.live && s.connection.serverCan("image"));
    }
    if (!server?.live || !server.connection.serverCan("image")) return false;
    server.connection.send(encodeV2(message));
    return true;
  }

  /**
   * True when every live server announced `capability` (a turn may go to any of them); with none
   * live, every server in its last hello (a held turn goes to the first one back).
   */
  serverCan(capability: string): boolean {
    const live = this.#servers.filter((server) => server.live);
    const asked = live.length > 0 ? live : this.#servers;
    return asked.every((server) => server.connection.serverCan(capability));
  }

  /** Starts connecting to every server (and reconnecting until {@link close}). */
  start(): void {
    for (const server of this.#servers) server.connection.start();
  }

  /** Stops for good: closes every link; open and held turns fail. */
  close(): void {
    this.#closed = true;
    for (const server of this.#servers) server.connection.close("the gateway is shutting down");
    this.#hold.failAll("the gateway is shutting down");
  }

  /**
   * A server's status from MQTT: its `load` becomes the server's known load. Matched by
   * `audio_socket_port`, and by `hostname` where several entries share that port; a status that
   * matches no entry (another home's server, a server this gateway does not use) is ignored.
   */
  serverStatus(status: ServerStatus): void {
    const port = status.audio_socket_port;
    if (typeof port !== "number" || !status.load) return;
    const candidates = this.#servers.filter((server) => server.address.port === port);
    const server = candidates.length === 1
      ? candidates[0]
      : candidates.find((server) => server.address.host === status.hostname);
    server?.statusArrived(status.load);
  }

  /**
   * Opens a turn for `device` with user audio at `rate` on the least loaded live server. With
   * `options.continues`, the new turn carries that provisional turn's request too
   * (docs/protocol.md "Continuing a turn") and goes to the server the earlier turn was placed on
   * if that one is live (also after the earlier reply ended); elsewhere, or held, it carries the
   * merged request whole as a plain turn. The caller then supersedes the earlier turn. With no
   * server live the turn waits for the first one back (the outage hold,
   * {@link OUTAGE_HOLD_MS}); after a longer outage it fails at once with `unavailable` (spec 4.3:
   * audio requests are dropped during an outage).
   */
  startTurn(
    device: string,
    rate: SampleRate,
    handlers: TurnHandlers,
    options: StartTurnOptions = {},
  ): Turn {
    const id = options.id ?? `${this.#turnPrefix}${this.#nextTurn++}`;
    const earlier = options.continues;
    // Where the earlier turn went, also after its reply ended (the usual case): only that
    // server holds it uncommitted, so only there can the continuation take it over.
    const earlierServer = earlier && this.#placedOn.get(earlier);
    const server = earlierServer?.live ? earlierServer : leastLoaded(this.#servers);
    // Anywhere else the merged request goes out whole, as one plain turn (the turn is then not
    // `continued`, and the caller cancels the earlier turn).
    // Held (no server live): if the earlier turn's server comes back, the earlier turn waits
    // there uncommitted (the server keeps a closed connection's turns for the reconnected
    // gateway), so the continuation names it then; placed elsewhere it goes whole (#replayOn).
    const continues = earlier && {
      id: earlier.id,
      pcm: earlier.requestAudio(),
      whole: server === undefined ? earlierServer === undefined : server !== earlierServer,
    };
    const link = new PlacedLink(this, this.responseTimeoutMs);
    const turn = new Turn(link, { id, device, rate, handlers, protocol: this.#adapter, continues });
    this.#links.set(turn, link);
    if (!server && continues && earlierServer) {
      this.#heldContinuations.set(turn, { server: earlierServer, continues });
    }
    if (!server) {
      if (this.#closed || !this.#hold.holdNew(turn)) {
        queueMicrotask(() => turn.abort("unavailable", "no AI server is connected"));
      }
      return turn;
    }
    this.#place(turn, link, server);
    turn.open();
    return turn;
  }

  /** {@link TurnLink}: a server that answers in order and missed one is stuck. */
  responseTimedOut(server: ServerLink | undefined): void {
    if (this.#adapter.inOrder) server?.connection.reconnect("response timeout");
  }

  /** {@link TurnLink}: the turn is over. */
  finished(turn: Turn, server: ServerLink | undefined): void {
    if (server && server.turns.get(turn.id) === turn) {
      server.turns.delete(turn.id);
      server.answered++;
    }
    this.#links.delete(turn);
    this.#hold.release(turn);
  }

  #place(turn: Turn, link: PlacedLink, server: ServerLink): void {
    link.server = server;
    this.#placedOn.set(turn, server);
    server.place(turn);
  }

  #frameRequest(server: ServerLink, message: FrameRequestMessage): void {
    this.#grabs.delete(message.request);
    this.#grabs.set(message.request, server);
    if (this.#grabs.size > MAX_PENDING_GRABS) {
      this.#grabs.delete(this.#grabs.keys().next().value!);
    }
    this.#frameRequests?.(message);
  }

  #receive(server: ServerLink, id: string, replies: TurnReply[]): void {
    const turn = server.turns.get(id);
    if (!turn) {
      // Late audio of a cancelled or timed-out turn: dropped by its id (docs/protocol.md).
      this.#log.debug("reply for a finished turn dropped", { turn: id, port: server.address.port });
      return;
    }
    for (const reply of replies) turn.receive(reply);
  }

  /**
   * Moves a suspended turn onto `server` and sends it there again: whole, unless it is a
   * continuation held from its start going to its earlier turn's server.
   */
  #replayOn(turn: Turn, server: ServerLink): void {
    const link = this.#links.get(turn);
    if (!link || turn.done) return;
    const held = this.#heldContinuations.get(turn);
    if (held) {
      this.#heldContinuations.delete(turn);
      held.continues.whole = server !== held.server;
    }
    this.#place(turn, link, server);
    turn.replay();
  }

  #serverBack(server: ServerLink): void {
    const first = this.#servers.every((other) => other === server || !other.live);
    const waiting = this.#hold.serverBack();
    if (waiting.length > 0) {
      this.#log.info("replaying held turns", { turns: waiting.length, port: server.address.port });
    }
    for (const turn of waiting) {
      // A held continuation goes back to its earlier turn's server when that one is back.
      const earlier = this.#heldContinuations.get(turn)?.server;
      this.#replayOn(turn, earlier?.live ? earlier : leastLoaded(this.#servers) ?? server);
    }
    if (first) { for (const listener of this.#listeners) listener(true); }
  }

  #serverLost(server: ServerLink, why: string, wasReady: boolean): void {
    const turns = [...server.turns.values()];
    server.turns.clear();
    server.forgetLoad();
    if (!this.connected) this.#hold.serverLeft();
    let moved = 0;
    for (const turn of turns) {
      const other = this.#closed ? undefined : leastLoaded(this.#servers, server);
      if (other && turn.replayable) {
        turn.suspend();
        this.#replayOn(turn, other);
        moved++;
      } else if (this.#closed || !this.#hold.hold(turn, why)) {
        turn.abort("disconnected", why);
      }
    }
    if (wasReady || turns.length > 0) {
      this.#log.warn("AI server lost", {
        host: server.address.host,
        port: server.address.port,
        reason: why,
        turns: turns.length,
        moved,
      });
    }
    if (wasReady && !this.connected) { for (const listener of this.#listeners) listener(false); }
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
