/**
 * Spoken sentences about detections: "I see two people and a dog at the front door." Counts in
 * words, English plurals of the COCO labels, "at"/"in" chosen for the zone, times said the way a
 * person says them ("at 3:12 AM yesterday").
 *
 * @example
 * ```ts
 * describeObjects([person, person, dog]); // "two people and a dog"
 * whereIn("front_door"); // "at the front door"
 * sceneSentence([person, person, dog], "front_door"); // "I see two people and a dog at the front door."
 * ```
 */
import type { DetectedObject } from "../vision/mod.ts";

const NUMBER_WORDS = [
  "no",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
  "ten",
  "eleven",
  "twelve",
];
/** COCO labels whose plural is not "+s". */
const IRREGULAR_PLURALS: Record<string, string> = {
  person: "people",
  mouse: "mice",
  knife: "knives",
  sheep: "sheep",
  skis: "skis",
  scissors: "scissors",
};
/** Object names said most at the most items in one sentence; the rest is "and N more things". */
const MAX_NAMED_LABELS = 4;
/** Zones one stands "at" rather than "in". */
const AT_ZONE = /(door|gate|porch|driveway|entrance|steps|desk|window)$/;

/** "person" → "people", "bus" → "buses", "dog" → "dogs". */
export function plural(label: string): string {
  const last = label.split(" ").pop()!;
  const head = label.slice(0, label.length - last.length);
  if (IRREGULAR_PLURALS[last]) return head + IRREGULAR_PLURALS[last];
  if (/(s|sh|ch|x)$/.test(last)) return `${label}es`;
  return `${label}s`;
}

/** "one" … "twelve", then digits. */
export function numberWord(count: number): string {
  return NUMBER_WORDS[count] ?? String(count);
}

/** "a dog", "an umbrella", "two people". */
export function countOf(count: number, label: string): string {
  if (count === 1) return `${/^[aeiou]/.test(label) ? "an" : "a"} ${label}`;
  return `${numberWord(count)} ${plural(label)}`;
}

/** "a", "a and b", "a, b and c". */
export function joinAnd(items: string[]): string {
  if (items.length <= 1) return items[0] ?? "";
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

/** Detections counted by label, in order of first (highest-confidence) appearance. */
export function countLabels(objects: readonly DetectedObject[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const object of objects) counts.set(object.label, (counts.get(object.label) ?? 0) + 1);
  return counts;
}

/** "two people and a dog"; "" when there is nothing. */
export function describeObjects(objects: readonly DetectedObject[]): string {
  const parts = [...countLabels(objects)].map(([label, count]) => countOf(count, label));
  if (parts.length > MAX_NAMED_LABELS) {
    const rest = parts.length - MAX_NAMED_LABELS;
    return joinAnd([...parts.slice(0, MAX_NAMED_LABELS), `${numberWord(rest)} more things`]);
  }
  return joinAnd(parts);
}

/** The zone said in a sentence: "front_door" → "the front door". */
export function zoneName(zone: string): string {
  return `the ${zone.replaceAll("_", " ")}`;
}

/** "at the front door", "in the kitchen". */
export function whereIn(zone: string): string {
  return `${AT_ZONE.test(zone) ? "at" : "in"} ${zoneName(zone)}`;
}

/** "I see two people and a dog at the front door." (zone optional). */
export function sceneSentence(objects: readonly DetectedObject[], zone?: string): string {
  const where = zone === undefined ? "" : ` ${whereIn(zone)}`;
  const seen = describeObjects(objects);
  return seen.length === 0 ? `I don't see anything I recognize${where}.` : `I see ${seen}${where}.`;
}

/** "3:12 AM today", "10:03 PM yesterday", "9:00 AM on Monday, November 23". */
export function spokenTime(at: number, now: Date): string {
  const date = new Date(at);
  const time = date.toLocaleTimeString("en-US", { hour: "numeric", minute: "2-digit" });
  const dayStart = (d: Date) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((dayStart(now) - dayStart(date)) / 86_400_000);
  if (days === 0) return `${time} today`;
  if (days === 1) return `${time} yesterday`;
  return `${time} on ${
    date.toLocaleDateString("en-US", { weekday: "long", month: "long", day: "numeric" })
  }`;
}
