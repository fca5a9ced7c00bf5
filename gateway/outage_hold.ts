/**
 * The outage hold (spec 4.4: buffer while the AI server is away): a turn that starts while the
 * server is away, or whose connection drops before any of its reply came, waits for the server
 * and is sent again, whole, once it is back, if that takes at most the hold
 * ({@link OUTAGE_HOLD_MS}). Otherwise it fails `unavailable` (spec 4.3's drop). Whether a turn
 * can still be replayed (no reply yet, not replayed before) is the turn's to say.
 *
 * @example
 * ```ts
 * const hold = new OutageHold<Turn>(5000);
 * hold.serverLeft();
 * if (!hold.hold(turn, "connection lost")) turn.abort("disconnected", "connection lost");
 * for (const turn of hold.serverBack()) turn.replay();
 * ```
 */

/**
 * How long a turn waits for a restarting AI server: a supervisor (systemd, `deno task server`
 * again) brings a crashed server back in a second or two; longer than this and the user has
 * given up on the answer, so the turn fails as spec 4.3 drops it.
 */
export const OUTAGE_HOLD_MS = 5_000;

/** What the hold needs of a turn. */
export interface HeldTurn {
  /** True while the turn can still be sent again whole. */
  readonly replayable: boolean;
  /** Stops sending and stops its response timer until {@link replay}. */
  suspend(): void;
  /** The server is back: sends everything so far again. */
  replay(): void;
  /** Fails the turn. */
  abort(reason: "unavailable", message: string): void;
}

/** See the module doc. */
export class OutageHold<T extends HeldTurn> {
  readonly holdMs: number;
  #waiting = new Map<T, ReturnType<typeof setTimeout>>();
  /** performance.now() since when the server has been away (undefined while it is here). */
  #awaySince: number | undefined = performance.now();

  /** `holdMs`: how long a turn waits for the server (ms). */
  constructor(holdMs: number = OUTAGE_HOLD_MS) {
    this.holdMs = holdMs;
  }

  /** Turns waiting. */
  get size(): number {
    return this.#waiting.size;
  }

  /** The server went away (a no-op while it already is). */
  serverLeft(): void {
    this.#awaySince ??= performance.now();
  }

  /** The server is back: the waiting turns, in the order they came, to replay. */
  serverBack(): T[] {
    this.#awaySince = undefined;
    const turns = [...this.#waiting.keys()];
    for (const timer of this.#waiting.values()) clearTimeout(timer);
    this.#waiting.clear();
    return turns;
  }

  /**
   * A turn opened while the server is away: waits for it, unless the outage already outlasted
   * the hold. Returns whether it waits.
   */
  holdNew(turn: T): boolean {
    const away = this.#awaySince === undefined ? 0 : performance.now() - this.#awaySince;
    return away <= this.holdMs && this.hold(turn, "the AI server is away");
  }

  /** Makes `turn` wait for the server, failing after the hold. Returns whether it waits. */
  hold(turn: T, why: string): boolean {
    if (this.#waiting.has(turn)) return true;
    if (!turn.replayable) return false;
    turn.suspend();
    const wait = this.holdMs;
    this.#waiting.set(
      turn,
      setTimeout(() => {
        this.#waiting.delete(turn);
        turn.abort("unavailable", `${why}, and it was not back within ${wait} ms`);
      }, wait),
    );
    return true;
  }

  /** The turn is over: it waits no more. */
  release(turn: T): void {
    const timer = this.#waiting.get(turn);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#waiting.delete(turn);
  }

  /** Shutdown: every waiting turn fails. */
  failAll(why: string): void {
    for (const turn of [...this.#waiting.keys()]) {
      this.release(turn);
      turn.abort("unavailable", why);
    }
  }
}
