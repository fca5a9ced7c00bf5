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

/** Options of {@link PendingCommits}. */
export interface PendingCommitsOptions {
  /** Hears every commit made here (to remember the memory row of the turn). */
  committed?: (id: string, memoryId: number | undefined) => void;
  /** How long a turn waits before it is committed anyway, ms (default {@link COMMIT_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** How many turns may wait (default {@link MAX_PENDING_COMMITS}); the oldest makes room. */
  max?: number;
  /** A commit threw (its effects could not be applied): reported, and the table goes on. */
  onError?: (id: string, error: unknown) => void;
}

/** A waiting turn as {@link PendingCommits.take} returns it: with its commit deadline. */
export type TakenTurn = PendingTurn & {
  /** performance.now() when it would have been committed anyway. */
  deadline: number;
};

/** Committed turns remembered, so a late `cancel` still finds their memory row. */
const RECENT_COMMITS_KEPT = 64;

/** See the module doc. */
export class PendingCommits {
  #turns = new Map<string, TakenTurn & { timer: ReturnType<typeof setTimeout> }>();
  #recent = new Map<string, number | undefined>();
  #options: Required<PendingCommitsOptions>;

  constructor(options: PendingCommitsOptions = {}) {
    this.#options = {
      committed: () => {},
      timeoutMs: COMMIT_TIMEOUT_MS,
      max: MAX_PENDING_COMMITS,
      onError: () => {},
      ...options,
    };
  }

  /** Turns waiting now. */
  get size(): number {
    return this.#turns.size;
  }

  has(id: string): boolean {
    return this.#turns.has(id);
  }

  /**
   * Holds turn `id` until its commit, or until `deadline` (performance.now() ms; default: the
   * timeout from now). An earlier turn held under the same id is committed first.
   */
  hold(id: string, turn: PendingTurn, deadline?: number): void {
    if (this.#turns.has(id)) this.commit(id);
    if (this.#turns.size >= this.#options.max) this.commit(this.#turns.keys().next().value!);
    const until = deadline ?? performance.now() + this.#options.timeoutMs;
    const timer = setTimeout(() => this.commit(id), Math.max(0, until - performance.now()));
    this.#turns.set(id, { ...turn, deadline: until, timer });
  }

  /**
   * Commits turn `id` if it waits; returns its memory row id. A commit that throws is reported
   * to `onError` and counts as done (it is not retried).
   */
  commit(id: string): number | undefined {
    const turn = this.#turns.get(id);
    if (turn === undefined) return undefined;
    this.#turns.delete(id);
    clearTimeout(turn.timer);
    let memoryId: number | undefined;
    try {
      memoryId = turn.commit();
    } catch (error) {
      this.#options.onError(id, error);
    }
    this.#recent.set(id, memoryId);
    if (this.#recent.size > RECENT_COMMITS_KEPT) {
      this.#recent.delete(this.#recent.keys().next().value!);
    }
    this.#options.committed(id, memoryId);
    return memoryId;
  }

  /** A turn committed here lately (by anyone, or its timeout): its memory row id. */
  recent(id: string): { memoryId: number | undefined } | undefined {
    return this.#recent.has(id) ? { memoryId: this.#recent.get(id) } : undefined;
  }

  /** Removes turn `id` without committing it (a continuation takes it over). */
  take(id: string): TakenTurn | undefined {
    const turn = this.#turns.get(id);
    if (turn === undefined) return undefined;
    this.#turns.delete(id);
    clearTimeout(turn.timer);
    const { timer: _timer, ...taken } = turn;
    return taken;
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
