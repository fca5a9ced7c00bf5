/**
 * The assistant's tools, one list for both engines: the built-in engine calls them from matched
 * intents, and the LLM client offers them as OpenAI function calls. Each returns a sentence to
 * speak and data for an LLM to phrase its own answer from.
 */
import type { DeviceCommand } from "../../shared/messages.ts";
import type { ConversationMemory, TimerRecord, TurnRecord } from "./memory.ts";
import { describeDuration, TimerError, type TimerOptions } from "./timers.ts";

/**
 * The timers a tool may use: the real {@link TimerService} (timers.ts), or a turn's staged view
 * of it (staged_effects.ts) that records what to do at commit.
 */
export interface Timers {
  /** Sets a timer of `seconds` for `device`; throws TimerError for a bad request. */
  set(device: string, seconds: number, options?: TimerOptions): TimerRecord;
  /** Timers of `device` still running, soonest first. */
  pending(device: string): TimerRecord[];
  /** Cancels every running timer of `device`; returns how many. */
  cancelAll(device: string): number;
}

/** What a tool may touch during one turn. */
export interface ToolContext {
  /** The device that was spoken to. */
  device: string;
  now: Date;
  memory: ConversationMemory;
  timers: Timers;
  /** Publishes on `naila/devices/{device}/command`. */
  publishCommand: (device: string, command: DeviceCommand) => void;
}

/** An OpenAI-style function definition (JSON Schema parameters). */
export interface ToolDefinition {
  name: ToolName;
  description: string;
  parameters: Record<string, unknown>;
}

/** A tool's answer: a sentence to say and structured data. */
export interface ToolResult {
  text: string;
  data: Record<string, unknown>;
}

/** Bad tool arguments: the field and value that were wrong. */
export class ToolError extends Error {
  override name = "ToolError";
  constructor(readonly field: string, readonly value: unknown, message: string) {
    super(message);
  }
}

/** Device commands the assistant may publish (snake_case, as shared/messages requires). */
export const DEVICE_COMMANDS = ["set_power", "set_volume", "volume_step", "stop"] as const;
export type DeviceCommandName = typeof DEVICE_COMMANDS[number];

/** The periods `recall` understands. */
export const RECALL_PERIODS = ["today", "yesterday", "recent"] as const;
export type RecallPeriod = typeof RECALL_PERIODS[number];
/** Past questions a recall answer lists at most: more is too long to listen to. */
const MAX_RECALLED = 3;
/** Turns `recent` looks back over. */
const RECENT_TURNS = 10;

export const TOOLS: readonly ToolDefinition[] = [
  {
    name: "get_time",
    description: "The current local time.",
    parameters: { type: "object", properties: {} },
  },
  {
    name: "get_date",
    description: "Today's local date and weekday.",
    parameters: { type: "object", properties: {} },
  },
  {
    name: "set_timer",
    description: "Start a timer or reminder on this device; it is announced when due.",
    parameters: {
      type: "object",
      properties: {
        seconds: { type: "integer", minimum: 1, maximum: 86400 },
        label: { type: "string", description: "What it is for; empty for a plain timer." },
        reminder: { type: "boolean", description: "True for 'remind me to <label>'." },
      },
      required: ["seconds"],
    },
  },
  {
    name: "list_timers",
    description: "The timers running on this device and the time left.",
    parameters: { type: "object", properties: {} },
  },
  {
    name: "cancel_timers",
    description: "Cancel every timer running on this device.",
    parameters: { type: "object", properties: {} },
  },
  {
    name: "device_command",
    description: "Control this device or something it drives (lights, volume, playback).",
    parameters: {
      type: "object",
      properties: {
        command: { type: "string", enum: [...DEVICE_COMMANDS] },
        target: { type: "string", description: "For set_power: what to switch, e.g. lights." },
        on: { type: "boolean", description: "For set_power." },
        level: { type: "integer", minimum: 0, maximum: 100, description: "For set_volume." },
        delta: { type: "integer", minimum: -100, maximum: 100, description: "For volume_step." },
      },
      required: ["command"],
    },
  },
  {
    name: "recall",
    description: "What the user asked on this device today, yesterday, or recently.",
    parameters: {
      type: "object",
      properties: { period: { type: "string", enum: [...RECALL_PERIODS] } },
      required: ["period"],
    },
  },
] as const;

export type ToolName =
  | "get_time"
  | "get_date"
  | "set_timer"
  | "list_timers"
  | "cancel_timers"
  | "device_command"
  | "recall";

const TOOL_NAMES = new Set<string>(TOOLS.map((tool) => tool.name));

/** True when `name` is one of {@link TOOLS}. */
export function isToolName(name: string): name is ToolName {
  return TOOL_NAMES.has(name);
}

function argument(args: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(args, name) ? args[name] : undefined;
}

function integerArg(args: Record<string, unknown>, name: string, min: number, max: number) {
  const value = argument(args, name);
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ToolError(
      name,
      value,
      `${name} ${JSON.stringify(value)} is not an integer ${min}..${max}`,
    );
  }
  return value;
}

function formatTime(now: Date): string {
  return now.toLocaleTimeString("en-US", { hour: "numeric", minute: "2-digit" });
}

function formatDate(now: Date): string {
  return now.toLocaleDateString("en-US", {
    weekday: "long",
    month: "long",
    day: "numeric",
    year: "numeric",
  });
}

/** Start of the local calendar day `offset` days from `now`'s, in ms. */
function dayStart(now: Date, offset: number): number {
  return new Date(now.getFullYear(), now.getMonth(), now.getDate() + offset).getTime();
}

/** Recall questions themselves are not worth recalling. */
function isRecallQuestion(turn: TurnRecord): boolean {
  return /\b(what|which)\b.*\b(i|we)\b.*\b(ask|asking|asked|say|said|talk|talking)\b/i.test(
    turn.transcript,
  );
}

function recall(context: ToolContext, period: RecallPeriod): ToolResult {
  const { memory, device, now } = context;
  const turns = period === "recent"
    ? memory.recent(device, RECENT_TURNS)
    : period === "today"
    ? memory.between(device, dayStart(now, 0), now.getTime() + 1)
    : memory.between(device, dayStart(now, -1), dayStart(now, 0));
  const asked: string[] = [];
  for (const turn of turns.filter((t) => t.transcript.length > 0 && !isRecallQuestion(t))) {
    const question = turn.transcript.replace(/[.?!]+$/, "");
    if (!asked.includes(question)) asked.push(question);
  }
  const when = period === "recent" ? "Recently" : period === "today" ? "Today" : "Yesterday";
  const data = {
    period,
    questions: asked,
    turns: turns.map((t) => ({ at: new Date(t.at).toISOString(), transcript: t.transcript })),
  };
  if (asked.length === 0) {
    const none = period === "recent" ? "recently" : period;
    return { text: `I don't have anything you asked ${none}.`, data };
  }
  const latest = asked.slice(-MAX_RECALLED);
  const more = asked.length > latest.length ? `, and ${asked.length - latest.length} more` : "";
  return { text: `${when} you asked: ${latest.join("; ")}${more}.`, data };
}

function deviceCommand(context: ToolContext, args: Record<string, unknown>): ToolResult {
  const command = argument(args, "command");
  if (!(DEVICE_COMMANDS as readonly unknown[]).includes(command)) {
    throw new ToolError(
      "command",
      command,
      `command ${JSON.stringify(command)} is not one of ${DEVICE_COMMANDS.join("|")}`,
    );
  }
  let params: Record<string, unknown> = {};
  let text: string;
  switch (command as DeviceCommandName) {
    case "set_power": {
      const target = argument(args, "target");
      const on = argument(args, "on");
      if (typeof target !== "string" || target.trim().length === 0 || target.length > 60) {
        throw new ToolError("target", target, `target ${JSON.stringify(target)} is not a name`);
      }
      if (typeof on !== "boolean") {
        throw new ToolError("on", on, `on ${JSON.stringify(on)} is not true or false`);
      }
      params = { target: target.trim(), on };
      text = `OK, turning ${on ? "on" : "off"} the ${target.trim()}.`;
      break;
    }
    case "set_volume": {
      const level = integerArg(args, "level", 0, 100);
      params = { level };
      text = `Volume set to ${level}.`;
      break;
    }
    case "volume_step": {
      const delta = integerArg(args, "delta", -100, 100);
      params = { delta };
      text = delta >= 0 ? "Turning it up." : "Turning it down.";
      break;
    }
    case "stop":
      text = "OK.";
      break;
  }
  context.publishCommand(context.device, { command: command as string, params });
  return { text, data: { published: true, command, params } };
}

/** A tool call: which tool, with which (JSON-decoded) arguments. */
export interface ToolCall {
  tool: ToolName;
  args: Record<string, unknown>;
}

/** Runs one tool call. Throws {@link ToolError} on bad arguments. */
export function runTool(call: ToolCall, context: ToolContext): ToolResult {
  const { tool: name, args } = call;
  switch (name) {
    case "get_time":
      return {
        text: `It's ${formatTime(context.now)}.`,
        data: { time: formatTime(context.now), iso: context.now.toISOString() },
      };
    case "get_date":
      return {
        text: `Today is ${formatDate(context.now)}.`,
        data: { date: formatDate(context.now) },
      };
    case "set_timer": {
      const seconds = integerArg(args, "seconds", 1, 86400);
      const rawLabel = argument(args, "label") ?? "";
      if (typeof rawLabel !== "string") {
        throw new ToolError("label", rawLabel, `label ${JSON.stringify(rawLabel)} is not a string`);
      }
      const reminder = argument(args, "reminder") === true;
      let timer;
      try {
        timer = context.timers.set(context.device, seconds, {
          label: rawLabel,
          kind: reminder ? "reminder" : "timer",
        });
      } catch (error) {
        if (error instanceof TimerError) {
          throw new ToolError(error.field, error.value, error.message);
        }
        throw error;
      }
      const duration = describeDuration(seconds);
      return {
        text: timer.label.length === 0
          ? `OK, a timer for ${duration}.`
          : reminder
          ? `OK, I'll remind you to ${timer.label} in ${duration}.`
          : `OK, a timer for ${duration} for the ${timer.label}.`,
        data: { id: timer.id, due_at: new Date(timer.dueAt).toISOString(), label: timer.label },
      };
    }
    case "list_timers": {
      const timers = context.timers.pending(context.device);
      const left = timers.map((t) =>
        describeDuration(Math.max(1, (t.dueAt - context.now.getTime()) / 1000))
      );
      const text = timers.length === 0
        ? "You have no timers running."
        : timers.length === 1
        ? `You have one timer, with ${left[0]} left.`
        : `You have ${timers.length} timers; the next one ends in ${left[0]}.`;
      return { text, data: { timers: timers.map((t, i) => ({ label: t.label, left: left[i] })) } };
    }
    case "cancel_timers": {
      const count = context.timers.cancelAll(context.device);
      const text = count === 0
        ? "You have no timers running."
        : `Cancelled ${count} timer${count === 1 ? "" : "s"}.`;
      return { text, data: { cancelled: count } };
    }
    case "device_command":
      return deviceCommand(context, args);
    case "recall": {
      const period = argument(args, "period");
      if (!(RECALL_PERIODS as readonly unknown[]).includes(period)) {
        throw new ToolError(
          "period",
          period,
          `period ${JSON.stringify(period)} is not one of ${RECALL_PERIODS.join("|")}`,
        );
      }
      return recall(context, period as RecallPeriod);
    }
  }
}
