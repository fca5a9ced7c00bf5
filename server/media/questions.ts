/**
 * Visual query detection (spec 11.12) for the built-in engine: which spoken or typed questions
 * need eyes, what they ask (describe, count, presence, read, or a question about the past) and
 * where (a zone named in the question, matched against the zones NAILA knows). Pure functions;
 * `visual_questions.ts` chooses the source and answers.
 *
 * Deliberately narrower than 11.12's keyword list ("what's", "this", "that" alone would catch
 * "what's the time"): a question must match one of the shapes below.
 *
 * @example
 * ```ts
 * parseVisualQuestion("How many people are in the kitchen?", { zones: ["kitchen"], now });
 * // { kind: "count", label: "person", zone: "kitchen", place: "kitchen" }
 * ```
 */
import { normalize } from "../assistant/builtin_engine.ts";

/** What a visual question asks. */
export type VisualQuestionKind =
  | "describe"
  | "count"
  | "presence"
  | "read"
  /** "When was someone last at the door?" */
  | "history_when"
  /** "What did the front door camera see last night?" */
  | "history_what"
  /** "Show me the last alert from the backyard." */
  | "history_show";

/** A parsed visual question. */
export interface VisualQuestion {
  kind: VisualQuestionKind;
  /** The COCO label asked about (count, presence, history_when). */
  label?: string;
  /** A known zone the question names. */
  zone?: string;
  /** The place named in the words ("garage"), even when no zone matches it. */
  place?: string;
  /** Time range of a history question, ms since the epoch (`to` exclusive). */
  from?: number;
  to?: number;
  /** How the period is said back: "last night", "yesterday", "today". */
  period?: string;
}

/** Context of {@link parseVisualQuestion}. */
export interface ParseContext {
  /** Zones NAILA knows (cameras' zones, alert rules, stored alerts). */
  zones: readonly string[];
  now: Date;
}

/** Spoken words for the COCO labels people ask about most. */
const LABEL_WORDS: Record<string, string> = {
  person: "person",
  people: "person",
  persons: "person",
  anyone: "person",
  anybody: "person",
  someone: "person",
  somebody: "person",
  man: "person",
  men: "person",
  woman: "person",
  women: "person",
  kid: "person",
  kids: "person",
  child: "person",
  children: "person",
};
/** Plurals of labels that are not "+s". */
const PLURAL_LABELS: Record<string, string> = { mice: "mouse", knives: "knife", buses: "bus" };
/** COCO labels one might ask about by name (single words; "cell phone" etc. via "phone"). */
const COCO_WORDS = new Set([
  "bicycle",
  "bike",
  "car",
  "motorcycle",
  "motorbike",
  "bus",
  "truck",
  "boat",
  "bird",
  "cat",
  "dog",
  "horse",
  "sheep",
  "cow",
  "bear",
  "backpack",
  "umbrella",
  "handbag",
  "suitcase",
  "bottle",
  "cup",
  "mug",
  "chair",
  "couch",
  "sofa",
  "laptop",
  "phone",
  "book",
  "clock",
  "tv",
  "mouse",
  "knife",
  "banana",
  "apple",
  "pizza",
  "cake",
]);
const SYNONYMS: Record<string, string> = {
  bike: "bicycle",
  motorbike: "motorcycle",
  mug: "cup",
  sofa: "couch",
  phone: "cell phone",
};

/** The COCO label a word names, or undefined. */
export function labelOf(word: string): string | undefined {
  if (LABEL_WORDS[word]) return LABEL_WORDS[word];
  const singular = PLURAL_LABELS[word] ??
    (word.endsWith("s") && COCO_WORDS.has(word.slice(0, -1)) ? word.slice(0, -1) : word);
  if (!COCO_WORDS.has(singular)) return undefined;
  return SYNONYMS[singular] ?? singular;
}

/** The first word of `text` that names a label. */
function findLabel(text: string): string | undefined {
  for (const word of text.split(" ")) {
    const label = labelOf(word);
    if (label) return label;
  }
  return undefined;
}

/** Words that end a place phrase: "at the front door last night" → "front door". */
const PLACE_END =
  /\s+(?:last night|yesterday|today|this morning|this afternoon|this evening|tonight|right now|now|camera|cam)\b.*$/;
const PLACE =
  /\b(?:at|in|on|by|from|outside|near|of|inside) (?:the|my|our) ([a-z][a-z ]{0,40})$|\bthe ([a-z][a-z ]{0,30}?) (?:camera|cam)\b/;

/** The place a question names ("front door"), if any. */
function findPlace(text: string): string | undefined {
  const match = PLACE.exec(text.replace(PLACE_END, "")) ?? PLACE.exec(text);
  const place = (match?.[1] ?? match?.[2])?.replace(PLACE_END, "").trim();
  return place && place.length > 0 ? place : undefined;
}

/** The known zone `place` names: every word of the zone, or the zone's last word ("door"). */
export function matchZone(place: string, zones: readonly string[]): string | undefined {
  const words = new Set(place.split(" "));
  const spoken = (zone: string) => zone.split("_");
  const whole = zones.find((zone) => spoken(zone).every((word) => words.has(word)));
  if (whole) return whole;
  const byLast = zones.filter((zone) => words.has(spoken(zone).at(-1)!));
  return byLast.length === 1 ? byLast[0] : undefined;
}

function dayStart(now: Date, offset: number): number {
  return new Date(now.getFullYear(), now.getMonth(), now.getDate() + offset).getTime();
}

/** Evening starts at 18:00 and the night ends at 06:00 (an ordinary person's "last night"). */
const EVENING_HOUR = 18;
const MORNING_HOUR = 6;

/** The period a history question names, if any. */
function findPeriod(text: string, now: Date): Pick<VisualQuestion, "from" | "to" | "period"> {
  const hour = 3_600_000;
  if (/\blast night\b/.test(text)) {
    // The night that ended this morning, whenever today it is asked.
    return {
      from: dayStart(now, -1) + EVENING_HOUR * hour,
      to: dayStart(now, 0) + MORNING_HOUR * hour,
      period: "last night",
    };
  }
  if (/\byesterday\b/.test(text)) {
    return { from: dayStart(now, -1), to: dayStart(now, 0), period: "yesterday" };
  }
  if (/\b(today|this morning|this afternoon|this evening)\b/.test(text)) {
    return { from: dayStart(now, 0), to: now.getTime() + 1, period: "today" };
  }
  return {};
}

/**
 * Parses a question with visual intent; undefined when it has none (then it is not ours to
 * answer).
 */
export function parseVisualQuestion(
  transcript: string,
  context: ParseContext,
): VisualQuestion | undefined {
  const text = normalize(transcript);
  if (text.length === 0) return undefined;
  const place = findPlace(text);
  const zone = place === undefined ? undefined : matchZone(place, context.zones);
  const where = { ...(zone ? { zone } : {}), ...(place ? { place } : {}) };
  // History first: "what did the camera see", "when was someone last", "show me the last alert".
  if (/\b(show|send) me (the |a )?(last|latest|most recent)\b/.test(text)) {
    return { kind: "history_show", ...where, ...findPeriod(text, context.now) };
  }
  if (
    /\bwhen (was|did)\b.*\b(last|latest)\b|\blast time\b.*\b(someone|anyone|somebody)\b/.test(text)
  ) {
    return { kind: "history_when", label: findLabel(text) ?? "person", ...where };
  }
  if (/\bwhat did\b.*\b(see|saw|notice|spot|detect)\b|\bwhat happened\b/.test(text)) {
    return { kind: "history_what", ...where, ...findPeriod(text, context.now) };
  }
  if (
    /\b(was|were) (there|anyone|anybody|someone|somebody)\b/.test(text) &&
    findPeriod(text, context.now).period
  ) {
    return {
      kind: "history_what",
      label: findLabel(text) ?? "person",
      ...where,
      ...findPeriod(text, context.now),
    };
  }
  // Now.
  if (
    /^(please )?read (this|that|it|the|me|what)\b|\bwhat (does|do) (it|this|that|the \w+) say\b/
      .test(text)
  ) {
    return { kind: "read", ...where };
  }
  const count = /\bhow many ([a-z]+)\b/.exec(text);
  if (count && labelOf(count[1])) return { kind: "count", label: labelOf(count[1]), ...where };
  if (/^(is|are) (there )?(anyone|anybody|someone|somebody|any|a|an|the|people)\b/.test(text)) {
    const label = findLabel(text.replace(PLACE, ""));
    if (label) return { kind: "presence", label, ...where };
  }
  if (
    /\bwhat (do|can) you see\b|\b(what is|whats) (in|on) (this|the) (picture|photo|image|camera)\b|\b(describe|look at) (this|the|what)\b|\b(what is|whats) (this|that)$|\b(what is|whats) (happening|going on) (at|in|outside)\b/
      .test(text)
  ) {
    return { kind: "describe", ...where };
  }
  return undefined;
}
