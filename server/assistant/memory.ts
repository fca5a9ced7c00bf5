/**
 * Per-device conversation memory in SQLite (Deno's built-in `node:sqlite`): every turn with its
 * transcript, reply, stage timings, and whether the user cut the reply off and how much of it
 * they heard (docs/protocol.md "Barge-in"), plus the timers the assistant has set. One file
 * under NAILA_DATA_DIR, so it survives restarts; `:memory:` for tests.
 *
 * @example
 * ```ts
 * const memory = ConversationMemory.open(":memory:");
 * const id = memory.addTurn({ device: "kitchen", turn: "t1", at: Date.now(), transcript: "hi",
 *   reply: "Hello!", timings: { stt_ms: 120 } });
 * memory.markInterrupted(id, 400);
 * memory.recent("kitchen", 5); // [{ id, transcript: "hi", interrupted: true, playedMs: 400, ... }]
 * ```
 */
import { DatabaseSync } from "node:sqlite";

/** One stored turn. */
export interface TurnRecord {
  id: number;
  device: string;
  /** The turn id the gateway chose (unique per connection, not globally). */
  turn: string;
  /** When the utterance ended, ms since the Unix epoch. */
  at: number;
  transcript: string;
  reply: string;
  /** Stage durations in ms (stt_ms, assistant_ms, tts_first_ms, ...). */
  timings: Record<string, number>;
  /** Length of the synthesized reply audio, when known. */
  replyAudioMs: number | null;
  /** The user spoke over the reply or the turn was cancelled before it finished. */
  interrupted: boolean;
  /** How much of the reply the user heard before the interruption. */
  playedMs: number | null;
}

/** What {@link ConversationMemory.addTurn} needs. */
export type NewTurn = Omit<TurnRecord, "id" | "interrupted" | "playedMs" | "replyAudioMs"> & {
  replyAudioMs?: number | null;
  interrupted?: boolean;
  playedMs?: number | null;
};

/** Lifecycle of a timer: waiting, announced to the device, or cancelled. */
export type TimerState = "pending" | "due" | "announced" | "cancelled";

/** Whether it was asked for as a timer or as a reminder; only the wording differs. */
export type TimerKind = "timer" | "reminder";

/** One timer or reminder. */
export interface TimerRecord {
  id: string;
  device: string;
  /** A timer counts down ("for the eggs"); a reminder says what to do ("call mom"). */
  kind: TimerKind;
  /** What it is for ("eggs", "call mom"); empty for a plain timer. */
  label: string;
  createdAt: number;
  dueAt: number;
  state: TimerState;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    turn TEXT NOT NULL,
    at INTEGER NOT NULL,
    transcript TEXT NOT NULL,
    reply TEXT NOT NULL,
    timings TEXT NOT NULL,
    reply_audio_ms REAL,
    interrupted INTEGER NOT NULL DEFAULT 0,
    played_ms REAL
  );
  CREATE INDEX IF NOT EXISTS turns_by_device_time ON turns (device, at);
  CREATE TABLE IF NOT EXISTS timers (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    state TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS timers_by_state ON timers (state, due_at);
`;

type Row = Record<string, unknown>;

function toTurn(row: Row): TurnRecord {
  return {
    id: Number(row.id),
    device: String(row.device),
    turn: String(row.turn),
    at: Number(row.at),
    transcript: String(row.transcript),
    reply: String(row.reply),
    timings: JSON.parse(String(row.timings)),
    replyAudioMs: row.reply_audio_ms === null ? null : Number(row.reply_audio_ms),
    interrupted: Number(row.interrupted) === 1,
    playedMs: row.played_ms === null ? null : Number(row.played_ms),
  };
}

function toTimer(row: Row): TimerRecord {
  return {
    id: String(row.id),
    device: String(row.device),
    kind: String(row.kind) as TimerKind,
    label: String(row.label),
    createdAt: Number(row.created_at),
    dueAt: Number(row.due_at),
    state: String(row.state) as TimerState,
  };
}

/** Conversation turns and timers of every device, in one SQLite database. */
export class ConversationMemory {
  readonly path: string;
  #db: DatabaseSync;

  private constructor(path: string) {
    this.path = path;
    this.#db = new DatabaseSync(path);
    if (path !== ":memory:") {
      // WAL: a reader (recall) never waits for the writer of the turn being stored. NORMAL
      // sync in WAL mode never corrupts the file; a power cut may lose the last turns, and it
      // keeps an fsync per turn off the event loop that is sending the reply.
      this.#db.exec("PRAGMA journal_mode = WAL");
      this.#db.exec("PRAGMA synchronous = NORMAL");
    }
    this.#db.exec(SCHEMA);
  }

  /** Opens (creating if needed) the database at `path`, or `:memory:`. */
  static open(path: string): ConversationMemory {
    return new ConversationMemory(path);
  }

  /** Stores a turn; returns its row id (to mark it interrupted later). */
  addTurn(turn: NewTurn): number {
    const result = this.#db.prepare(
      `INSERT INTO turns (device, turn, at, transcript, reply, timings, reply_audio_ms,
         interrupted, played_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      turn.device,
      turn.turn,
      turn.at,
      turn.transcript,
      turn.reply,
      JSON.stringify(turn.timings),
      turn.replyAudioMs ?? null,
      turn.interrupted ? 1 : 0,
      turn.playedMs ?? null,
    );
    return Number(result.lastInsertRowid);
  }

  /** Records that the user heard only `playedMs` of turn `id`'s reply. False if no such turn. */
  markInterrupted(id: number, playedMs: number): boolean {
    const result = this.#db.prepare(
      "UPDATE turns SET interrupted = 1, played_ms = ? WHERE id = ?",
    ).run(playedMs, id);
    return Number(result.changes) === 1;
  }

  /**
   * The same for the latest turn of `device` with turn id `turn` (a gateway's `interrupted`
   * event names the turn, not the row). False if there is none.
   */
  markInterruptedByTurn(key: { device: string; turn: string }, playedMs: number): boolean {
    const { device, turn } = key;
    const result = this.#db.prepare(
      `UPDATE turns SET interrupted = 1, played_ms = ? WHERE id =
         (SELECT id FROM turns WHERE device = ? AND turn = ? ORDER BY id DESC LIMIT 1)`,
    ).run(playedMs, device, turn);
    return Number(result.changes) === 1;
  }

  /** The turn with row id `id`. */
  turn(id: number): TurnRecord | undefined {
    const row = this.#db.prepare("SELECT * FROM turns WHERE id = ?").get(id) as Row | undefined;
    return row ? toTurn(row) : undefined;
  }

  /** The last `limit` turns of `device`, oldest first. */
  recent(device: string, limit: number): TurnRecord[] {
    const rows = this.#db.prepare(
      "SELECT * FROM turns WHERE device = ? ORDER BY at DESC, id DESC LIMIT ?",
    ).all(device, limit) as Row[];
    return rows.map(toTurn).reverse();
  }

  /** Turns of `device` with `from <= at < to`, oldest first. */
  between(device: string, from: number, to: number): TurnRecord[] {
    const rows = this.#db.prepare(
      "SELECT * FROM turns WHERE device = ? AND at >= ? AND at < ? ORDER BY at, id",
    ).all(device, from, to) as Row[];
    return rows.map(toTurn);
  }

  /** Stores a new timer. */
  addTimer(timer: TimerRecord): void {
    this.#db.prepare(
      `INSERT INTO timers (id, device, kind, label, created_at, due_at, state)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      timer.id,
      timer.device,
      timer.kind,
      timer.label,
      timer.createdAt,
      timer.dueAt,
      timer.state,
    );
  }

  /** Moves a timer to `state`. */
  setTimerState(id: string, state: TimerState): void {
    this.#db.prepare("UPDATE timers SET state = ? WHERE id = ?").run(state, id);
  }

  /** Timers in `state` (of one device when given), soonest first. */
  timers(state: TimerState, device?: string): TimerRecord[] {
    const rows =
      (device === undefined
        ? this.#db.prepare("SELECT * FROM timers WHERE state = ? ORDER BY due_at").all(state)
        : this.#db.prepare("SELECT * FROM timers WHERE state = ? AND device = ? ORDER BY due_at")
          .all(state, device)) as Row[];
    return rows.map(toTimer);
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}
