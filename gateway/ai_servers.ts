/**
 * The gateway's link to several AI servers (issue 14, docs/scaling.md "More than one AI
 * server"): one {@link AiConnection} per `AI_SERVER_HOST` entry, each new turn placed on the
 * least loaded live server, and a server that dies mid-turn has its turns replayed on another.
 *
 * - **Load**: each server's status (`naila/server/status`, `load`) is matched to its link by
 *   `audio_socket_port` (and the status's `hostname` where two entries share a port). A turn goes to the live
 *   server with the lowest projected wait: the status's `wait_ms` plus, for turns this gateway
 *   placed there since that status, `turn_ms` each (a status is up to a second old, and a burst of
 *   turns must not all follow it); ties go to the fewest queued turns (the status's plus ours).
 *   A server whose status is unknown counts as idle: its link being up is what makes it live.
 * - **Failover**: a server lost mid-turn hands its turns that have no reply yet (the turn says
 *   {@link Turn.replayable}) to the least loaded other live server, at once and whole; with no
 *   server live they wait in the outage hold (outage_hold.ts) for the first one back. A turn whose
 *   reply already started fails `disconnected` (replaying it would say the reply twice).
 *
 * Each turn has its own small {@link TurnLink} that sends to the server it is placed on, so a
 * turn moves between servers without knowing it. With one server `gateway.ts` uses `AiClient`.
 *
 * @example
 * ```ts
 * const servers = new AiServers({ servers: [{ host, port: 9001 }, { host, port: 9002 }], protocol: "v2", log });
 * servers.start();
 * servers.serverStatus(status); // from signaling
 * const turn = servers.startTurn("kitchen", 16000, handlers);
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
import { RESPONSE_TIMEOUT_MS, Turn, type TurnHandlers, type TurnLink } from "./ai_turn.ts";
import { OUTAGE_HOLD_MS, OutageHold } from "./outage_hold.ts";
import { turnPrefix } from "./ai_client.ts";

/** What the gateway needs of its AI link, one server (`AiClient`) or several ({@link AiServers}). */
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
  startTurn(device: string, rate: SampleRate, handlers: TurnHandlers): Turn;
  /** Whether the server(s) a turn may go to announced `capability` in their hello. */
  serverCan(capability: string): boolean;
  /** Who answers the servers' `frame_request`s (the camera hub, docs/video.md). */
  onFrameRequest(handler: (message: FrameRequestMessage) => void): void;
  /** Sends a camera frame or a frame request's error; false when not sent (camera_hub.ts). */
  sendCamera(message: ImageMessage | ErrorMessage): boolean;
}

/** Frame requests awaiting their answer, remembered per server; the oldest is forgotten past
 * this (the camera hub answers each one, in time or with an error, well before). */
const MAX_PENDING_GRABS = 64;

/** One entry of `AI_SERVER_HOST`. */
export interface ServerAddress {
  host: string;
  port: number;
}

/** Options of {@link AiServers}. */
export interface AiServersOptions {
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

/** The load of one server as last published, and what this gateway sent since. */
interface KnownLoad {
  waitMs: number;
  turnMs: number;
  queuedTurns: number;
  /** Turns placed on the server up to that status. */
  placedAtStatus: number;
}

/** One server: its link, its turns, its last known load. */
class ServerLink {
  readonly address: ServerAddress;
  readonly connection: AiConnection;
  readonly turns = new Map<string, Turn>();
  load: KnownLoad | undefined;
  /** Turns ever placed here (for the projection of {@link KnownLoad.placedAtStatus}). */
  placed = 0;
  /** Turns answered here (for tests and metrics). */
  answered = 0;

  constructor(address: ServerAddress, connection: (link: ServerLink) => AiConnection) {
    this.address = address;
    this.connection = connection(this);
  }

  /** Projected wait of a turn placed now (ms): see the module doc. */
  projectedWaitMs(): number {
    if (!this.load) return 0;
    return this.load.waitMs +
      Math.max(0, this.placed - this.load.placedAtStatus) * this.load.turnMs;
  }

  /** Queued turns, for ties: the status's count plus this gateway's open turns there. */
  queued(): number {
    return (this.load?.queuedTurns ?? 0) + this.turns.size;
  }
}

/** A turn's link: sends to the server the turn is placed on (see the module doc). */
class PlacedLink implements TurnLink {
  readonly responseTimeoutMs: number;
  server: ServerLink | undefined;
  #owner: AiServers;

  constructor(owner: AiServers, responseTimeoutMs: number) {
    this.#owner = owner;
    this.responseTimeoutMs = responseTimeoutMs;
  }

  send(bytes: Uint8Array): void {
    if (this.server?.connection.ready) this.server.connection.send(bytes);
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
  #adapter: AiProtocol;
  #log: Logger;
  #servers: ServerLink[];
  #links = new Map<Turn, PlacedLink>();
  #hold: OutageHold<Turn>;
  #closed = false;
  #turnPrefix = turnPrefix();
  #nextTurn = 1;
  #frameRequests: ((message: FrameRequestMessage) => void) | undefined;
  /** Open frame requests: which server asked (its answer goes back there). */
  #grabs = new Map<string, ServerLink>();

  constructor(options: AiServersOptions) {
    if (options.servers.length === 0) throw new RangeError("AiServers needs at least one server");
    this.protocol = options.protocol;
    this.#adapter = aiProtocol(options.protocol);
    this.#log = options.log;
    this.responseTimeoutMs = options.responseTimeoutMs ?? RESPONSE_TIMEOUT_MS;
    this.#hold = new OutageHold(options.outageHoldMs ?? OUTAGE_HOLD_MS);
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
      server = this.#servers.find((s) => s.connection.ready && s.connection.serverCan("image"));
    }
    if (!server?.connection.ready || !server.connection.serverCan("image")) return false;
    server.connection.send(encodeV2(message));
    return true;
  }

  #frameRequest(server: ServerLink, message: FrameRequestMessage): void {
    this.#grabs.delete(message.request);
    this.#grabs.set(message.request, server);
    if (this.#grabs.size > MAX_PENDING_GRABS) {
      this.#grabs.delete(this.#grabs.keys().next().value!);
    }
    this.#frameRequests?.(message);
  }

  /** True when every connected server announced `capability` (a turn may go to any of them). */
  serverCan(capability: string): boolean {
    const live = this.#servers.filter((server) => server.connection.ready);
    return live.length > 0 && live.every((server) => server.connection.serverCan(capability));
  }

  get connected(): boolean {
    return this.#servers.some((server) => server.connection.ready);
  }

  /** Turns waiting for their reply, on any server or held. */
  get pendingTurns(): number {
    return this.#servers.reduce((sum, server) => sum + server.turns.size, 0) + this.#hold.size;
  }

  /** The last pong's round-trip (ms) of the first live server. */
  get lastRttMs(): number | undefined {
    return this.#servers.find((server) => server.connection.ready)?.connection.lastRttMs;
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
      live: server.connection.ready,
      open: server.turns.size,
      answered: server.answered,
      wait_ms: server.projectedWaitMs(),
    }));
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
    if (!server) return;
    server.load = {
      waitMs: status.load.wait_ms,
      turnMs: status.load.turn_ms,
      queuedTurns: status.load.queued_turns,
      placedAtStatus: server.placed,
    };
  }

  /**
   * Opens a turn for `device` on the least loaded live server; `turnId` when the caller made the
   * id (a session worker, unique per gateway), else a new one. With none live the turn waits
   * for the first one back (the outage hold), and fails `unavailable` after a longer outage.
   */
  startTurn(device: string, rate: SampleRate, handlers: TurnHandlers, turnId?: string): Turn {
    const id = turnId ?? `${this.#turnPrefix}${this.#nextTurn++}`;
    const link = new PlacedLink(this, this.responseTimeoutMs);
    const turn = new Turn(link, { id, device, rate, handlers, protocol: this.#adapter });
    this.#links.set(turn, link);
    const server = this.#leastLoaded(undefined);
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
    server.turns.set(turn.id, turn);
    server.placed++;
  }

  /** The live server with the lowest projected wait, then fewest queued turns. */
  #leastLoaded(except: ServerLink | undefined): ServerLink | undefined {
    let best: ServerLink | undefined;
    for (const server of this.#servers) {
      if (server === except || !server.connection.ready) continue;
      if (
        !best || server.projectedWaitMs() < best.projectedWaitMs() ||
        (server.projectedWaitMs() === best.projectedWaitMs() && server.queued() < best.queued())
      ) best = server;
    }
    return best;
  }

  #receive(server: ServerLink, id: string, replies: TurnReply[]): void {
    const turn = server.turns.get(id);
    if (!turn) {
      this.#log.debug("reply for a finished turn dropped", { turn: id, port: server.address.port });
      return;
    }
    for (const reply of replies) turn.receive(reply);
  }

  /** Moves a suspended turn onto `server` and sends it there again, whole. */
  #replayOn(turn: Turn, server: ServerLink): void {
    const link = this.#links.get(turn);
    if (!link || turn.done) return;
    this.#place(turn, link, server);
    turn.replay();
  }

  #serverBack(server: ServerLink): void {
    const waiting = this.#hold.serverBack();
    if (waiting.length > 0) {
      this.#log.info("replaying held turns", { turns: waiting.length, port: server.address.port });
    }
    for (const turn of waiting) this.#replayOn(turn, this.#leastLoaded(undefined) ?? server);
  }

  #serverLost(server: ServerLink, why: string, wasReady: boolean): void {
    const turns = [...server.turns.values()];
    server.turns.clear();
    server.load = undefined;
    if (!this.connected) this.#hold.serverLeft();
    let moved = 0;
    for (const turn of turns) {
      const other = this.#closed ? undefined : this.#leastLoaded(server);
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
  }
}
