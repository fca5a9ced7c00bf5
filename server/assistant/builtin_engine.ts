/**
 * The offline, deterministic assistant: a handful of intents matched on the transcript, each
 * mapped to a tool call (tools.ts) or a fixed sentence. What it does not recognize returns
 * undefined, so the caller can ask an LLM or give the polite fallback.
 *
 * @example
 * ```ts
 * matchIntent("Set a timer for five minutes."); // { tool: "set_timer", args: { seconds: 300, label: "" } }
 * matchIntent("What's the weather?"); // undefined
 * ```
 */
import type { ToolCall } from "./tools.ts";

/** A recognized request: a tool to call, or a fixed answer. */
export type Intent = ToolCall | { text: string };

/** What the assistant says when it did not understand and no LLM is configured. */
export const FALLBACK_REPLY =
  "Sorry, I can't help with that yet. You can ask me the time or the date, set a timer, or control your devices.";

const SMALL_NUMBERS: Record<string, number> = {
  a: 1,
  an: 1,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
  twenty: 20,
  thirty: 30,
  forty: 40,
  fifty: 50,
  sixty: 60,
  ninety: 90,
};
/** "25", "twenty five", "twenty-five", "a" (longest alternatives first). */
const NUMBER =
  `(?:\\d+(?:\\.\\d+)?|(?:twenty|thirty|forty|fifty)[ -](?:one|two|three|four|five|six|seven|eight|nine)|${
    Object.keys(SMALL_NUMBERS).join("|")
  })`;
const UNIT_SECONDS: Record<string, number> = { second: 1, minute: 60, hour: 3600 };
const DURATION_PART = new RegExp(`(${NUMBER})\\s+(second|minute|hour)s?`, "g");

/** "twenty five" → 25, "3" → 3, "a" → 1; NaN when it is not a number. */
export function parseNumber(text: string): number {
  return text.split(/[ -]/).reduce((sum, word) => {
    const value = /^\d/.test(word) ? Number(word) : SMALL_NUMBERS[word];
    return sum + (value ?? NaN);
  }, 0);
}

/** Sums every "N unit" in the text ("1 hour and 30 minutes" → 5400); undefined if none. */
export function parseDuration(text: string): number | undefined {
  let total = 0;
  let found = false;
  text = text.replace(/\bhalf an hour\b/g, "30 minutes");
  for (const match of text.matchAll(DURATION_PART)) {
    total += parseNumber(match[1]) * UNIT_SECONDS[match[2]];
    found = true;
  }
  if (found && /\band a half\b/.test(text) && /\bhours?\b/.test(text)) {
    total += 1800;
  }
  return found && Number.isFinite(total) ? Math.round(total) : undefined;
}

/** Lower case, apostrophes and punctuation removed, spaces collapsed. */
export function normalize(text: string): string {
  return text.toLowerCase().replace(/[’']/g, "").replace(/[^a-z0-9:\- ]+/g, " ").replace(
    /\s+/g,
    " ",
  ).trim();
}

/** A reminder's text, in the user's words turned around ("my" → "your"). */
function reminderLabel(text: string): string {
  return text.replace(/\bmy\b/g, "your").replace(/\bme\b/g, "you").trim();
}

function timerIntent(text: string): Intent | undefined {
  const remind = /\bremind me (?:to )?(.+?)\s+in\s+(.+)$/.exec(text) ??
    /\bremind me in (.+?)(?:\s+to\s+(.+))?$/.exec(text);
  if (remind) {
    const inFirst = text.includes("remind me in");
    const when = inFirst ? remind[1] : remind[2];
    const what = inFirst ? remind[2] ?? "" : remind[1];
    const seconds = parseDuration(when);
    if (seconds === undefined) return undefined;
    return { tool: "set_timer", args: { seconds, label: reminderLabel(what), reminder: true } };
  }
  if (!/\btimer\b/.test(text)) return undefined;
  if (/\b(cancel|stop|delete|clear)\b/.test(text)) return { tool: "cancel_timers", args: {} };
  if (/\b(how (much|long)|left|remaining)\b/.test(text)) return { tool: "list_timers", args: {} };
  const seconds = parseDuration(text);
  if (seconds === undefined) return undefined;
  const label = /\btimer\b.*\bfor (?:the |my )?([a-z ]+?)$/.exec(text)?.[1] ?? "";
  // "for five minutes" is the duration, not a label.
  const isDuration = parseDuration(label) !== undefined;
  return { tool: "set_timer", args: { seconds, label: isDuration ? "" : label } };
}

function deviceIntent(text: string): Intent | undefined {
  const powerFirst = /\b(?:turn|switch) (on|off) (?:the )?(.+)$/.exec(text);
  const powerLast = /\b(?:turn|switch) (?:the )?(.+?) (on|off)$/.exec(text);
  if (powerFirst) {
    return {
      tool: "device_command",
      args: { command: "set_power", target: powerFirst[2], on: powerFirst[1] === "on" },
    };
  }
  if (powerLast) {
    return {
      tool: "device_command",
      args: { command: "set_power", target: powerLast[1], on: powerLast[2] === "on" },
    };
  }
  const volume = new RegExp(`\\bvolume to (${NUMBER})(?: percent)?$`).exec(text);
  if (volume) {
    const level = parseNumber(volume[1]);
    if (Number.isInteger(level) && level >= 0 && level <= 100) {
      return { tool: "device_command", args: { command: "set_volume", level } };
    }
  }
  if (/\b(louder|volume up|turn it up)\b/.test(text)) {
    return { tool: "device_command", args: { command: "volume_step", delta: 10 } };
  }
  if (/\b(quieter|softer|volume down|turn it down)\b/.test(text)) {
    return { tool: "device_command", args: { command: "volume_step", delta: -10 } };
  }
  if (/^(stop|be quiet|quiet|shut up|pause|stop playing)( please)?$/.test(text)) {
    return { tool: "device_command", args: { command: "stop" } };
  }
  return undefined;
}

function recallIntent(text: string): Intent | undefined {
  if (!/\b(what|which)\b.*\b(i|we)\b.*\b(ask|asking|asked|say|said|talk|talking)\b/.test(text)) {
    return undefined;
  }
  const period = /\byesterday\b/.test(text)
    ? "yesterday"
    : /\b(today|this morning|this afternoon|this evening)\b/.test(text)
    ? "today"
    : "recent";
  return { tool: "recall", args: { period } };
}

/** Maps a transcript to an intent, or undefined when none matches. */
export function matchIntent(transcript: string): Intent | undefined {
  const text = normalize(transcript);
  if (text.length === 0) return undefined;
  const recalled = recallIntent(text);
  if (recalled) return recalled;
  const timer = timerIntent(text);
  if (timer) return timer;
  if (/\b(what|whats)\b.*\btime\b|\btime is it\b|\bthe time\b/.test(text)) {
    return { tool: "get_time", args: {} };
  }
  if (/\b(what|whats)\b.*\b(date|day)\b|\btodays date\b/.test(text)) {
    return { tool: "get_date", args: {} };
  }
  const device = deviceIntent(text);
  if (device) return device;
  if (/^(hi|hello|hey|good (morning|afternoon|evening))\b/.test(text)) {
    return { text: "Hello! How can I help?" };
  }
  if (/\b(thank you|thanks)\b/.test(text)) return { text: "You're welcome." };
  return undefined;
}

/** Clause boundaries of a merged request: "…, and then …", "… and …", "… then …". */
const CLAUSE_BOUNDARY = /\s*(?:,\s*)?\b(?:and then|and|then)\b\s+/;

/**
 * Every intent of a request that may join several commands ("turn on the kitchen lights and set
 * a timer for five minutes", what a continued turn produces, docs/turn_taking.md): the
 * transcript is split at "and" / "then" only if every clause is a command on its own; otherwise
 * it is one request ("remind me to buy bread and milk in 2 hours"). Pure: no side effect.
 * Returns [] when nothing matches.
 */
export function matchIntents(transcript: string): Intent[] {
  const text = normalize(transcript);
  const clauses = text.split(CLAUSE_BOUNDARY).filter((clause) => clause.length > 0);
  if (clauses.length > 1) {
    const intents = clauses.map(matchIntent);
    if (intents.every((intent) => intent !== undefined)) return intents as Intent[];
  }
  const whole = matchIntent(text);
  return whole === undefined ? [] : [whole];
}
