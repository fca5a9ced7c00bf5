/**
 * The short sentence of spec 11.11's `description`, built from the detections alone: "I see two
 * people and a dog." It is what a visual answer speaks (issue 12), so it counts objects per label,
 * most frequent first, in plain English.
 */
import type { DetectedObject } from "./types.ts";

/** Number words read better than digits when spoken; above this, digits. */
const NUMBER_WORDS = ["no", "a", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
/** Plurals the "+s" rule gets wrong, among the COCO labels. */
const IRREGULAR_PLURALS: Record<string, string> = {
  person: "people",
  bus: "buses",
  sheep: "sheep",
  skis: "skis",
  "wine glass": "wine glasses",
  knife: "knives",
  sandwich: "sandwiches",
  "hot dog": "hot dogs",
  couch: "couches",
  "dining table": "dining tables",
  tv: "TVs",
  mouse: "mice",
  "hair drier": "hair driers",
  toothbrush: "toothbrushes",
  bench: "benches",
  "sports ball": "sports balls",
  "potted plant": "potted plants",
  "cell phone": "cell phones",
  scissors: "pairs of scissors",
  broccoli: "heads of broccoli",
};
/** Labels that read better with "an". */
const VOWEL_START = /^[aeiou]/;

/** "a dog", "two dogs", "12 dogs", "an apple", "a pair of scissors". */
export function countPhrase(label: string, count: number): string {
  if (count === 1) {
    if (label === "scissors") return "a pair of scissors";
    if (label === "tv") return "a TV";
    return `${VOWEL_START.test(label) ? "an" : "a"} ${label}`;
  }
  const plural = IRREGULAR_PLURALS[label] ?? `${label}s`;
  return `${count < NUMBER_WORDS.length ? NUMBER_WORDS[count] : count} ${plural}`;
}

/**
 * "I see nothing I recognise." / "I see a cat." / "I see two people and a dog." / "I see a person,
 * a cup and a laptop." Labels are ordered by count, then by their best confidence.
 */
export function describeObjects(objects: readonly DetectedObject[]): string {
  const byLabel = new Map<string, { count: number; best: number }>();
  for (const { label, confidence } of objects) {
    const entry = byLabel.get(label) ?? { count: 0, best: 0 };
    entry.count++;
    entry.best = Math.max(entry.best, confidence);
    byLabel.set(label, entry);
  }
  if (byLabel.size === 0) return "I see nothing I recognise.";
  const phrases = [...byLabel.entries()]
    .sort(([, a], [, b]) => b.count - a.count || b.best - a.best)
    .map(([label, { count }]) => countPhrase(label, count));
  const list = phrases.length === 1
    ? phrases[0]
    : `${phrases.slice(0, -1).join(", ")} and ${phrases.at(-1)}`;
  return `I see ${list}.`;
}
