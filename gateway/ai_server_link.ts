/**
 * One AI server as the gateway's link sees it (docs/scaling.md "More than one AI server"): its
 * connection (ai_connection.ts), the turns placed on it, and its load as last published on
 * `naila/server/status`, projected forward by the turns this gateway placed there since.
 * `ai_servers.ts` keeps one per `AI_SERVER_HOST` entry and places each turn on the least loaded.
 *
 * @example
 * ```ts
 * const server = new ServerLink({ host, port }, (link) => new AiConnection(options, events(link)));
 * server.statusArrived(status.load);
 * server.projectedWaitMs(); // status wait + turn_ms per turn placed since
 * ```
 */
import type { ServerStatus } from "../shared/messages.ts";
import type { AiConnection } from "./ai_connection.ts";
import type { Turn } from "./ai_turn.ts";

/** One entry of `AI_SERVER_HOST`. */
export interface ServerAddress {
  host: string;
  port: number;
}

/** The load of one server as last published, and what this gateway sent since. */
interface KnownLoad {
  waitMs: number;
  turnMs: number;
  queuedTurns: number;
  /** Turns placed on the server up to that status. */
  placedAtStatus: number;
}

/** One server: its connection, its turns, its last known load. */
export class ServerLink {
  readonly address: ServerAddress;
  readonly connection: AiConnection;
  /** Open turns placed here, by id. */
  readonly turns = new Map<string, Turn>();
  #load: KnownLoad | undefined;
  /** Turns ever placed here (for the projection of {@link KnownLoad.placedAtStatus}). */
  #placed = 0;
  /** Turns answered here (for tests and metrics). */
  answered = 0;

  /** `connection` makes this server's connection, with events that name this link. */
  constructor(address: ServerAddress, connection: (link: ServerLink) => AiConnection) {
    this.address = address;
    this.connection = connection(this);
  }

  /** True when turns can be sent here now. */
  get live(): boolean {
    return this.connection.ready;
  }

  /** The server's published load (`load` of its status) becomes its known load. */
  statusArrived(load: NonNullable<ServerStatus["load"]>): void {
    this.#load = {
      waitMs: load.wait_ms,
      turnMs: load.turn_ms,
      queuedTurns: load.queued_turns,
      placedAtStatus: this.#placed,
    };
  }

  /** The server left: its load is unknown until its next status. */
  forgetLoad(): void {
    this.#load = undefined;
  }

  /** `turn` now runs here. */
  place(turn: Turn): void {
    this.turns.set(turn.id, turn);
    this.#placed++;
  }

  /**
   * Projected wait of a turn placed now (ms): the status's `wait_ms` plus `turn_ms` for each turn
   * placed here since that status (a status is up to a second old, and a burst of turns must not
   * all follow it). Unknown load counts as idle.
   */
  projectedWaitMs(): number {
    if (!this.#load) return 0;
    return this.#load.waitMs +
      Math.max(0, this.#placed - this.#load.placedAtStatus) * this.#load.turnMs;
  }

  /** Queued turns, for ties: the status's count plus this gateway's open turns here. */
  queued(): number {
    return (this.#load?.queuedTurns ?? 0) + this.turns.size;
  }
}

/**
 * The live server with the lowest projected wait, then the fewest queued turns, other than
 * `except`; undefined when none is live.
 */
export function leastLoaded(
  servers: readonly ServerLink[],
  except?: ServerLink,
): ServerLink | undefined {
  let best: ServerLink | undefined;
  for (const server of servers) {
    if (server === except || !server.live) continue;
    if (
      !best || server.projectedWaitMs() < best.projectedWaitMs() ||
      (server.projectedWaitMs() === best.projectedWaitMs() && server.queued() < best.queued())
    ) best = server;
  }
  return best;
}
