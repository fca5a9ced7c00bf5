/**
 * The turns of one v2 connection that have been answered but are not final yet (protocol
 * capability `continue`, docs/protocol.md "Continuing a turn"): each keeps its audio (a `start`
 * with `continues` may still take it over) and the pipeline's `commit`, which applies its staged
 * side effects and writes its memory row. A turn leaves the table by exactly one of:
 *
 * - {@link PendingCommits.commit}: the gateway's `commit`, a `cancel` (which implies it), the
 *   server shutting down, or {@link COMMIT_TIMEOUT_MS} passing without either (the gateway
 *   vanished: no request is silently lost);
 * - {@link PendingCommits.take}: a continuation supersedes it; nothing is applied or recorded;
 * - {@link PendingCommits.handOver}: the connection closed. Its turns move to the socket's table of
 *   orphaned turns, where the gateway, reconnected (its outage hold is 5 s), may still continue or
 *   commit them by id until their timeout. Committing them at the close instead applied a
 *   request's first part twice when the link dropped before its continuation: once at the close,
 *   once in the whole request the gateway sent again.
 *
 * Bounded: at most {@link MAX_PENDING_COMMITS} turns wait per connection (and
 * {@link MAX_ORPHANED_COMMITS} per socket); the oldest is committed to make room.
 */

/** A gateway that sends neither `commit` nor `cancel` this long after the reply: commit anyway. */
export const COMMIT_TIMEOUT_MS = 10_000;
/** Turns awaiting their commit per connection: a gateway has one per device, 64 devices is plenty. */
export const MAX_PENDING_COMMITS = 64;
/** Orphaned turns per audio socket: a few gateways' worth, each bounded as above. */
export const MAX_ORPHANED_COMMITS = 256;

/** A finished, not yet committed turn. */
export interface PendingTurn {
  device: string;
  /** The whole request's audio (int16 LE PCM at `rate`), for a continuation. */
  pcm: Uint8Array;
  rate: number;
  /** How many turns this one already continues (0 for a plain turn). */
  links: number;
  /** Applies the staged effects and writes the memory row; returns its id. */
  commit: () => number | undefined;
}

/** See the module doc. */
export class PendingCommits {
  #turns = new Map<string, PendingTurn & { timer: ReturnType<typeof setTimeout> }>();
  #timeoutMs: number;
  #max: number;
  #committed: (id: string, memoryId: number | undefined) => void;

  /**
   * `committed` hears every commit made here (to remember the memory row of the turn); a turn
   * waits at most `timeoutMs`, and at most `max` turns wait.
   */
  constructor(
    committed: (id: string, memoryId: number | undefined) => void,
    timeoutMs = COMMIT_TIMEOUT_MS,
    max = MAX_PENDING_COMMITS,
  ) {
    this.#committed = committed;
    this.#timeoutMs = timeoutMs;
    this.#max = max;
  }

  /** Turns waiting now. */
  get size(): number {
    return this.#turns.size;
  }

  has(id: string): boolean {
    return this.#turns.has(id);
  }

  /** Holds turn `id` until its commit (or its timeout). */
  hold(id: string, turn: PendingTurn): void {
    if (this.#turns.size >= this.#max) this.commit(this.#turns.keys().next().value!);
    const timer = setTimeout(() => this.commit(id), this.#timeoutMs);
    this.#turns.set(id, { ...turn, timer });
  }

  /** Commits turn `id` if it waits; returns its memory row id. */
  commit(id: string): number | undefined {
    const turn = this.#turns.get(id);
    if (turn === undefined) return undefined;
    this.#turns.delete(id);
    clearTimeout(turn.timer);
    const memoryId = turn.commit();
    this.#committed(id, memoryId);
    return memoryId;
  }

  /** Removes turn `id` without committing it (a continuation takes it over). */
  take(id: string): PendingTurn | undefined {
    const turn = this.#turns.get(id);
    if (turn === undefined) return undefined;
    this.#turns.delete(id);
    clearTimeout(turn.timer);
    return turn;
  }

  /**
   * Moves every waiting turn to `to` (the socket's orphans: the connection closed), uncommitted;
   * each waits there for its own timeout anew.
   */
  handOver(to: PendingCommits): void {
    for (const id of [...this.#turns.keys()]) to.hold(id, this.take(id)!);
  }

  /** Commits every waiting turn (the server is shutting down: nothing can continue them). */
  commitAll(): void {
    for (const id of [...this.#turns.keys()]) this.commit(id);
  }
}
