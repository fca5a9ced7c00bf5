/**
 * Side effects of one turn staged until the turn is final (docs/turn_taking.md "Side effects:
 * staged, applied at commit"). A turn that the gateway may still continue (`start` with
 * `continues`) must not set a timer or switch a light yet: the merged turn plans them again from
 * the whole transcript. {@link StagedEffects.context} gives the tools a {@link ToolContext} whose
 * effectful calls (`timers.set`, `timers.cancelAll`, `publishCommand`) are recorded and answered
 * as the real call would answer (a timer record with its due time, the count of timers it would
 * cancel); reads (`timers.pending`) see the real state with the staged calls applied. Due timer
 * announcements spoken by the turn are marked announced only at commit too.
 *
 * {@link StagedEffects.apply} replays the recorded calls against the real context, once;
 * {@link StagedEffects.drop} forgets them (a superseded turn).
 *
 * @example
 * ```ts
 * const effects = new StagedEffects(real);
 * runTool({ tool: "set_timer", args: { seconds: 300 } }, effects.context); // nothing set yet
 * effects.apply(); // now the timer is armed
 * ```
 */
import type { DeviceCommand } from "../../shared/messages.ts";
import type { TimerRecord } from "./memory.ts";
import { checkTimerRequest, MAX_TIMER_LABEL_CHARS, type TimerOptions } from "./timers.ts";
import type { Timers, ToolContext } from "./tools.ts";

/** One recorded effectful call. */
type StagedCall =
  | { kind: "set"; device: string; seconds: number; options: TimerOptions }
  | { kind: "cancel_all"; device: string }
  | { kind: "command"; device: string; command: DeviceCommand }
  | { kind: "announced"; device: string; timers: string[] };

/** What a turn's effects are replayed against. */
export interface RealEffects {
  context: ToolContext;
  /** Marks due timers announced (TimerService.markAnnounced). */
  markAnnounced(ids: readonly string[]): void;
}

/** See the module doc. */
export class StagedEffects {
  readonly context: ToolContext;
  #real: RealEffects;
  #calls: StagedCall[] = [];
  #state: "staged" | "applied" | "dropped" = "staged";

  constructor(real: RealEffects) {
    this.#real = real;
    const timers: Timers = {
      set: (device, seconds, options = {}) => this.#set(device, seconds, options),
      pending: (device) => this.#pending(device),
      cancelAll: (device) => {
        const count = this.#pending(device).length;
        this.#record({ kind: "cancel_all", device });
        return count;
      },
    };
    this.context = {
      ...real.context,
      timers,
      publishCommand: (device, command) => this.#record({ kind: "command", device, command }),
    };
  }

  /** `staged` until {@link apply} or {@link drop}. */
  get state(): "staged" | "applied" | "dropped" {
    return this.#state;
  }

  /** How many effectful calls are staged (for logs and tests). */
  get size(): number {
    return this.#calls.length;
  }

  /** The turn spoke these due timers' announcements: marked announced at commit. */
  announced(device: string, timers: readonly TimerRecord[]): void {
    if (timers.length > 0) {
      this.#record({ kind: "announced", device, timers: timers.map((t) => t.id) });
    }
  }

  /**
   * Applies every staged call once, in order, against the real context. A call that fails now
   * (e.g. the device reached its timer limit meanwhile) is skipped and returned, the rest still
   * run. A second call does nothing.
   */
  apply(): Error[] {
    if (this.#state !== "staged") return [];
    this.#state = "applied";
    const failures: Error[] = [];
    const { context, markAnnounced } = this.#real;
    for (const call of this.#calls) {
      try {
        if (call.kind === "set") context.timers.set(call.device, call.seconds, call.options);
        else if (call.kind === "cancel_all") context.timers.cancelAll(call.device);
        else if (call.kind === "command") context.publishCommand(call.device, call.command);
        else markAnnounced(call.timers);
      } catch (error) {
        failures.push(error instanceof Error ? error : new Error(String(error)));
      }
    }
    this.#calls = [];
    return failures;
  }

  /** Forgets every staged call (the turn was superseded). */
  drop(): void {
    if (this.#state === "staged") this.#state = "dropped";
    this.#calls = [];
  }

  #record(call: StagedCall): void {
    if (this.#state !== "staged") throw new Error(`effects already ${this.#state}`);
    this.#calls.push(call);
  }

  #set(device: string, seconds: number, options: TimerOptions): TimerRecord {
    checkTimerRequest(device, seconds, this.#pending(device).length);
    const call: StagedCall = { kind: "set", device, seconds, options };
    const timer = this.#timerOf(call, this.#calls.length);
    this.#record(call);
    return timer;
  }

  /** The record a staged `set` would create (its id says it is staged). */
  #timerOf(call: Extract<StagedCall, { kind: "set" }>, index: number): TimerRecord {
    const now = this.#real.context.now.getTime();
    return {
      id: `staged-${index}`,
      device: call.device,
      kind: call.options.kind ?? "timer",
      label: (call.options.label ?? "").trim().slice(0, MAX_TIMER_LABEL_CHARS),
      createdAt: now,
      dueAt: now + Math.round(call.seconds * 1000),
      state: "pending",
    };
  }

  /** The real pending timers with the staged sets and cancels applied. */
  #pending(device: string): TimerRecord[] {
    let timers = this.#real.context.timers.pending(device);
    this.#calls.forEach((call, index) => {
      if (call.device !== device) return;
      if (call.kind === "cancel_all") timers = [];
      if (call.kind === "set") timers = [...timers, this.#timerOf(call, index)];
    });
    return timers.sort((a, b) => a.dueAt - b.dueAt);
  }
}
