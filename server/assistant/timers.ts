/**
 * Timers and reminders that outlive a restart: stored in {@link ConversationMemory}, armed with
 * `setTimeout`, and announced when due. What "announced" means is the caller's `onDue` (the
 * server publishes an `announce` command on `naila/devices/{id}/command`, see server/mod.ts);
 * the timer also stays `due` until a turn of that device takes it with
 * {@link TimerService.takeAnnouncements}, so the next reply (or an empty "pull" turn) speaks it.
 */
import type { ConversationMemory, TimerKind, TimerRecord } from "./memory.ts";

/** Longest timer: a day; longer plans belong in a calendar, and setTimeout caps at ~24.8 days. */
export const MAX_TIMER_SECONDS = 24 * 60 * 60;
/** Most timers waiting per device, so a loop of "set a timer" cannot grow the table forever. */
export const MAX_TIMERS_PER_DEVICE = 20;

/** Longest timer label kept, characters. */
export const MAX_TIMER_LABEL_CHARS = 100;

/** What a timer is for: its label and kind. */
export interface TimerOptions {
  label?: string;
  kind?: TimerKind;
}

/**
 * Checks a request for a timer of `seconds` on `device`, which has `pending` timers running.
 * Throws {@link TimerError} naming the bad field (the same checks {@link TimerService.set} and
 * a staged set, staged_effects.ts, make).
 */
export function checkTimerRequest(device: string, seconds: number, pending: number): void {
  if (!Number.isFinite(seconds) || seconds < 1 || seconds > MAX_TIMER_SECONDS) {
    throw new TimerError(
      "seconds",
      seconds,
      `timer of ${seconds} s is not allowed, expected 1..${MAX_TIMER_SECONDS} s`,
    );
  }
  if (pending >= MAX_TIMERS_PER_DEVICE) {
    throw new TimerError(
      "device",
      device,
      `device ${device} already has ${pending} timers, at most ${MAX_TIMERS_PER_DEVICE}`,
    );
  }
}

/** A timer could not be set: the field and value that were wrong. */
export class TimerError extends Error {
  override name = "TimerError";
  constructor(readonly field: string, readonly value: unknown, message: string) {
    super(message);
  }
}

/** Options of {@link TimerService}. */
export interface TimerServiceOptions {
  /** Called once per timer when it is due (also for timers that fell due while stopped). */
  onDue: (timer: TimerRecord) => void;
  /** Clock in ms since the epoch; default `Date.now` (fake timers replace it in tests). */
  now?: () => number;
}

/** Arms, fires and lists timers of every device. */
export class TimerService {
  #memory: ConversationMemory;
  #onDue: (timer: TimerRecord) => void;
  #now: () => number;
  #handles = new Map<string, ReturnType<typeof setTimeout>>();
  #sequence = 0;

  constructor(memory: ConversationMemory, options: TimerServiceOptions) {
    this.#memory = memory;
    this.#onDue = options.onDue;
    this.#now = options.now ?? (() => Date.now());
  }

  /** Arms every stored pending timer; those already overdue fire at once. */
  start(): void {
    for (const timer of this.#memory.timers("pending")) this.#arm(timer);
  }

  /** Sets a timer of `seconds` for `device`; `label` says what it is for. */
  set(device: string, seconds: number, options: TimerOptions = {}): TimerRecord {
    checkTimerRequest(device, seconds, this.#memory.timers("pending", device).length);
    const now = this.#now();
    const timer: TimerRecord = {
      id: `timer-${now.toString(36)}-${(this.#sequence++).toString(36)}`,
      device,
      kind: options.kind ?? "timer",
      label: (options.label ?? "").trim().slice(0, MAX_TIMER_LABEL_CHARS),
      createdAt: now,
      dueAt: now + Math.round(seconds * 1000),
      state: "pending",
    };
    this.#memory.addTimer(timer);
    this.#arm(timer);
    return timer;
  }

  /** Timers of `device` still running, soonest first. */
  pending(device: string): TimerRecord[] {
    return this.#memory.timers("pending", device);
  }

  /** Cancels every running timer of `device`; returns how many. */
  cancelAll(device: string): number {
    const timers = this.pending(device);
    for (const timer of timers) {
      clearTimeout(this.#handles.get(timer.id));
      this.#handles.delete(timer.id);
      this.#memory.setTimerState(timer.id, "cancelled");
    }
    return timers.length;
  }

  /** Due timers of `device` not yet spoken in a reply; marks them announced. */
  takeAnnouncements(device: string): TimerRecord[] {
    const due = this.dueAnnouncements(device);
    this.markAnnounced(due.map((timer) => timer.id));
    return due;
  }

  /** Due timers of `device` not yet spoken in a reply, left as they are (a staged turn). */
  dueAnnouncements(device: string): TimerRecord[] {
    return this.#memory.timers("due", device);
  }

  /** Marks the due timers `ids` announced (a staged turn's commit). */
  markAnnounced(ids: readonly string[]): void {
    for (const id of ids) this.#memory.setTimerState(id, "announced");
  }

  /** Disarms every timer (they stay stored and re-arm on the next start). */
  stop(): void {
    for (const handle of this.#handles.values()) clearTimeout(handle);
    this.#handles.clear();
  }

  #arm(timer: TimerRecord): void {
    const delay = Math.max(0, timer.dueAt - this.#now());
    const handle = setTimeout(() => {
      this.#handles.delete(timer.id);
      this.#memory.setTimerState(timer.id, "due");
      this.#onDue({ ...timer, state: "due" });
    }, delay);
    this.#handles.set(timer.id, handle);
  }
}

/** Spoken text announcing a due timer. */
export function announcementText(timer: TimerRecord): string {
  if (timer.kind === "reminder" && timer.label.length > 0) return `Reminder: ${timer.label}.`;
  if (timer.label.length > 0) return `Your timer for the ${timer.label} is done.`;
  return `Your timer for ${describeDuration((timer.dueAt - timer.createdAt) / 1000)} is done.`;
}

/**
 * The command published on `naila/devices/{id}/command` when `timer` is due; a gateway that
 * receives it may fetch the spoken announcement at once with a turn without audio.
 */
export function announceCommand(
  timer: TimerRecord,
): { command: "announce"; params: Record<string, string> } {
  return {
    command: "announce",
    params: {
      text: announcementText(timer),
      reason: timer.kind,
      timer_id: timer.id,
      due_at: new Date(timer.dueAt).toISOString(),
    },
  };
}

/** "5 minutes", "1 hour and 30 minutes", "45 seconds". */
export function describeDuration(seconds: number): string {
  const total = Math.round(seconds);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  const parts: string[] = [];
  const unit = (n: number, name: string) => `${n} ${name}${n === 1 ? "" : "s"}`;
  if (hours > 0) parts.push(unit(hours, "hour"));
  if (minutes > 0) parts.push(unit(minutes, "minute"));
  if (secs > 0 || parts.length === 0) parts.push(unit(secs, "second"));
  return parts.join(" and ");
}
