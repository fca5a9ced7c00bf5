/**
 * The turns of one v2 connection that have been answered but are not final yet (protocol
 * capability `continue`, docs/protocol.md "Continuing a turn"): each keeps its audio (a `start`
 * with `continues` may still take it over) and the pipeline's `commit`, which applies its staged
 * side effects and writes its memory row. A turn leaves the table by exactly one of:
 *
 * - {@link PendingCommits.commit}: the gateway's `commit`, a `cancel` (which implies it), the
 *   connection closing, or {@link COMMIT_TIMEOUT_MS} passing without either (the gateway
 *   vanished: no request is silently lost);
 * - {@link PendingCommits.take}: a continuation supersedes it; nothing is applied or recorded.
 *
 * Bounded: at most {@link MAX_PENDING_COMMITS} turns wait; the oldest is committed to make room.
 */

/** A gateway that sends neither `commit` nor `cancel` this long after the reply: commit anyway. */
export const COMMIT_TIMEOUT_MS = 10_000;
/** Turns awaiting their commit per connection: a gateway has one per device, 64 devices is plenty. */
export const MAX_PENDING_COMMITS = 64;

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
  #committed: (id: string, memoryId: number | undefined) => void;

  /** `committed` hears every commit made here (to remember the memory row of the turn). */
  constructor(
    committed: (id: string, memoryId: number | undefined) => void,
    timeoutMs = COMMIT_TIMEOUT_MS,
  ) {
    this.#committed = committed;
    this.#timeoutMs = timeoutMs;
  }

  has(id: string): boolean {
    return this.#turns.has(id);
  }

  /** Holds turn `id` until its commit (or its timeout). */
  hold(id: string, turn: PendingTurn): void {
    if (this.#turns.size >= MAX_PENDING_COMMITS) this.commit(this.#turns.keys().next().value!);
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

  /** Commits every waiting turn (the connection is closing: nothing can continue them). */
  commitAll(): void {
    for (const id of [...this.#turns.keys()]) this.commit(id);
  }
}
