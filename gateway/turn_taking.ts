/**
 * One device's turn-taking decisions (docs/turn_taking.md section 3) as a pure state machine:
 * events in (speech started, a frame voiced or not, an end-of-turn hint, the reply's first
 * packet, the reply drained, the clock), actions out (`start` a turn, possibly continuing the
 * provisional one; `pause`; `end`; `flush` playback; `cancel`; `commit`). No I/O and no timers:
 * the caller feeds times (ms, media-clock capture times for frames) and performs the actions, so
 * every transition is unit-tested on frame sequences.
 *
 * Phases: `listening`, `utterance`, `pending_end` (ended, server thinking, continuable),
 * `replying_within_grace` (reply started less than `graceMs` ago, continuable), `replying`
 * (committed; speech above the echo is a barge-in). A barge-in is the transition
 * replying → utterance with `flush`, `cancel`, `start`.
 *
 * @example
 * ```ts
 * const turns = new TurnTaking({ newTurnId: () => `t${++n}` });
 * for (const action of turns.speechStart(now)) perform(action);
 * for (const action of turns.frame(voiced, at)) perform(action);
 * ```
 */

/** Speculative STT starts this long into a silence (utterance_segmenter.ts SPECULATE_AFTER_MS). */
export const PAUSE_AFTER_MS = 60;
/** The spec's silence window: AUDIO_SILENCE_FRAMES (15) × 20 ms. */
export const DEFAULT_SILENCE_MS = 300;
/**
 * Continuation grace after the reply's first packet: 800 ms covers an 800 ms hesitation (the
 * reply starts ~200 ms after the last word; the VAD needs 100 ms to call the resumed speech).
 */
export const DEFAULT_GRACE_MS = 800;
/** After `end` with no reply yet, speech continues the request for up to 3 s. */
export const DEFAULT_CONTINUE_MAX_MS = 3000;
/** Longest silence an `incomplete` hint may ask for (issue 9: "up to about 1.2 s"). */
export const DEFAULT_INCOMPLETE_MAX_MS = 1200;

/** The machine's phases. */
export type TurnPhase =
  | "listening"
  | "utterance"
  | "pending_end"
  | "replying_within_grace"
  | "replying";

/** What the caller must do, in order. */
export type TurnAction =
  | { kind: "start"; turn: string; continues?: string }
  | { kind: "pause"; turn: string }
  | { kind: "end"; turn: string; lastSpeechAt: number }
  | { kind: "flush" }
  | { kind: "cancel"; turn: string }
  | { kind: "commit"; turn: string };

/** The server's end-of-turn hint (`eot`). */
export interface EndOfTurnHint {
  completion: "complete" | "incomplete" | "unknown";
  silenceMs: number;
}

/** Options of {@link TurnTaking}; times in ms. */
export interface TurnTakingOptions {
  newTurnId(): string;
  silenceMs?: number;
  graceMs?: number;
  continueMaxMs?: number;
  incompleteMaxMs?: number;
}

/** See the module doc. */
export class TurnTaking {
  readonly silenceMs: number;
  readonly graceMs: number;
  readonly continueMaxMs: number;
  readonly incompleteMaxMs: number;
  #newTurnId: () => string;
  #phase: TurnPhase = "listening";
  #turn: string | undefined;
  #lastSpeechAt = 0;
  #paused = false;
  /** An `eot` hint set the silence of the current stretch: only then does the clock end it. */
  #hinted = false;
  #requiredSilenceMs: number;
  #endedAt = 0;
  #replyStartedAt: number | undefined;
  #drained = false;

  /** Throws a RangeError naming a time option that is negative or not finite. */
  constructor(options: TurnTakingOptions) {
    this.#newTurnId = options.newTurnId;
    this.silenceMs = options.silenceMs ?? DEFAULT_SILENCE_MS;
    this.graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    this.continueMaxMs = options.continueMaxMs ?? DEFAULT_CONTINUE_MAX_MS;
    this.incompleteMaxMs = options.incompleteMaxMs ?? DEFAULT_INCOMPLETE_MAX_MS;
    for (const key of ["silenceMs", "graceMs", "continueMaxMs", "incompleteMaxMs"] as const) {
      if (!Number.isFinite(this[key]) || this[key] < 0) {
        throw new RangeError(`${key} ${this[key]} must be a finite number of ms ≥ 0`);
      }
    }
    this.#requiredSilenceMs = this.silenceMs;
  }

  get phase(): TurnPhase {
    return this.#phase;
  }

  /** The current turn id (the open, provisional or replying one). */
  get turn(): string | undefined {
    return this.#turn;
  }

  /** Silence now required to end the utterance, ms. */
  get requiredSilenceMs(): number {
    return this.#requiredSilenceMs;
  }

  /**
   * Speech started (the VAD says `speaking`; when a reply plays, only on frames the echo path
   * calls `speech`). `at`: capture time of the first speech frame.
   */
  speechStart(at: number): TurnAction[] {
    const actions: TurnAction[] = [];
    const previous = this.#turn;
    switch (this.#phase) {
      case "utterance":
        return actions;
      case "listening":
        break;
      case "pending_end":
        if (at - this.#endedAt <= this.continueMaxMs) {
          return this.#open(at, actions, previous);
        }
        // The server took too long: today's barge-in on a turn with nothing played.
        actions.push({ kind: "cancel", turn: previous! });
        break;
      case "replying_within_grace":
        if (!this.#drained) actions.push({ kind: "flush" });
        return this.#open(at, actions, previous);
      case "replying":
        if (!this.#drained) {
          actions.push({ kind: "flush" }, { kind: "cancel", turn: previous! });
        }
        break;
    }
    return this.#open(at, actions);
  }

  /**
   * One frame inside an utterance: voiced (VAD speaking) or not, at its capture time. Emits
   * `pause` after {@link PAUSE_AFTER_MS} of silence and `end` once the required silence is met.
   */
  frame(voiced: boolean, at: number): TurnAction[] {
    if (this.#phase !== "utterance") return [];
    const turn = this.#turn!;
    if (voiced) {
      this.#lastSpeechAt = at;
      if (this.#paused) {
        this.#paused = false;
        this.#hinted = false;
        this.#requiredSilenceMs = this.silenceMs; // a hint is about one silence stretch
      }
      return [];
    }
    const silent = at - this.#lastSpeechAt;
    const actions: TurnAction[] = [];
    if (!this.#paused && silent >= PAUSE_AFTER_MS) {
      this.#paused = true;
      actions.push({ kind: "pause", turn });
    }
    if (silent >= this.#requiredSilenceMs) actions.push(...this.#end(at));
    return actions;
  }

  /**
   * The server's `eot` for the current silence stretch: `complete` may shorten the wait (never
   * below the pause, never above the window), `incomplete` lengthen it (up to
   * `incompleteMaxMs`). `now` is the current capture time: the utterance may end at once.
   */
  hint(turn: string, hint: EndOfTurnHint, now: number): TurnAction[] {
    if (this.#phase !== "utterance" || turn !== this.#turn || !this.#paused) return [];
    const ms = Math.round(hint.silenceMs);
    if (hint.completion === "complete") {
      this.#requiredSilenceMs = Math.min(this.silenceMs, Math.max(PAUSE_AFTER_MS, ms));
    } else if (hint.completion === "incomplete") {
      this.#requiredSilenceMs = Math.max(this.silenceMs, Math.min(this.incompleteMaxMs, ms));
    } else {
      this.#requiredSilenceMs = this.silenceMs;
    }
    // The window itself is the frames' to end; another silence is the clock's.
    this.#hinted = this.#requiredSilenceMs !== this.silenceMs;
    return now - this.#lastSpeechAt >= this.#requiredSilenceMs ? this.#end(now) : [];
  }

  /** The first reply packet of `turn` was sent at `at`. */
  replyStarted(turn: string, at: number): TurnAction[] {
    if (this.#phase !== "pending_end" || turn !== this.#turn) return [];
    this.#phase = "replying_within_grace";
    this.#replyStartedAt = at;
    this.#drained = false;
    return this.graceMs === 0 ? this.#commit() : [];
  }

  /**
   * The reply of `turn` is over: all its audio was sent, or the server ended it without audio
   * (nothing to continue into: committed at once), or it failed.
   */
  replyDone(turn: string, at: number, options: { audio: boolean }): TurnAction[] {
    if (turn !== this.#turn) return [];
    if (this.#phase === "pending_end" && !options.audio) {
      const actions = this.#commit();
      this.#listen();
      return actions;
    }
    if (this.#phase === "replying_within_grace") {
      this.#drained = true;
      return this.tick(at);
    }
    if (this.#phase === "replying") this.#listen();
    return [];
  }

  /**
   * The utterance ends now whatever the silence (the segmenter's window or `max_length` cap,
   * the session flushing): `end` with `lastSpeechAt` (default: the last speech time seen).
   */
  endNow(at: number, lastSpeechAt?: number): TurnAction[] {
    if (this.#phase !== "utterance") return [];
    if (lastSpeechAt !== undefined) this.#lastSpeechAt = lastSpeechAt;
    return this.#end(at);
  }

  /**
   * The clock: ends an utterance whose hinted silence has passed (frames may have stopped
   * coming: the segmenter went idle while an `incomplete` hint asks for more silence), commits
   * a turn whose grace or continuation window is over. Without a hint the clock never ends an
   * utterance: silence is counted on frames (the media clock), and a stall of the device's
   * packets after a pause is no silence (issue 9, situation 3).
   */
  tick(now: number): TurnAction[] {
    if (
      this.#phase === "utterance" && this.#paused && this.#hinted &&
      now - this.#lastSpeechAt >= this.#requiredSilenceMs
    ) {
      return this.#end(now);
    }
    if (this.#phase === "replying_within_grace" && now - this.#replyStartedAt! >= this.graceMs) {
      const actions = this.#commit();
      if (this.#drained) this.#listen();
      return actions;
    }
    if (this.#phase === "pending_end" && now - this.#endedAt > this.continueMaxMs) {
      return this.#commit(true);
    }
    return [];
  }

  /** When the caller should call {@link tick} next (ms, same clock), or undefined. */
  nextDeadline(): number | undefined {
    if (this.#phase === "utterance" && this.#paused && this.#hinted) {
      return this.#lastSpeechAt + this.#requiredSilenceMs;
    }
    if (this.#phase === "replying_within_grace") return this.#replyStartedAt! + this.graceMs;
    if (this.#phase === "pending_end") return this.#endedAt + this.continueMaxMs + 1;
    return undefined;
  }

  #open(at: number, actions: TurnAction[], continues?: string): TurnAction[] {
    const turn = this.#newTurnId();
    this.#turn = turn;
    this.#phase = "utterance";
    this.#lastSpeechAt = at;
    this.#paused = false;
    this.#hinted = false;
    this.#requiredSilenceMs = this.silenceMs;
    this.#replyStartedAt = undefined;
    this.#drained = false;
    actions.push(
      continues === undefined ? { kind: "start", turn } : { kind: "start", turn, continues },
    );
    return actions;
  }

  #end(at: number): TurnAction[] {
    const turn = this.#turn!;
    this.#phase = "pending_end";
    this.#endedAt = at;
    this.#paused = false;
    this.#hinted = false;
    this.#requiredSilenceMs = this.silenceMs;
    return [{ kind: "end", turn, lastSpeechAt: this.#lastSpeechAt }];
  }

  /**
   * No longer continuable. From `pending_end` past the continuation window the turn stays
   * awaited (its reply will come) but new speech is then a barge-in: modelled as `replying`.
   */
  #commit(stillAwaited = false): TurnAction[] {
    const turn = this.#turn!;
    this.#phase = "replying";
    if (stillAwaited) this.#drained = false;
    return [{ kind: "commit", turn }];
  }

  #listen(): void {
    this.#phase = "listening";
    this.#replyStartedAt = undefined;
    this.#drained = false;
  }
}
