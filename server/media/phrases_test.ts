import assert from "node:assert/strict";
import type { DetectedObject } from "../vision/mod.ts";
import { countOf, describeObjects, plural, sceneSentence, spokenTime, whereIn } from "./phrases.ts";

const seen = (...labels: string[]): DetectedObject[] =>
  labels.map((label) => ({ label, confidence: 0.9, bbox: [0, 0, 1, 1] }));

Deno.test("sceneSentence: the spoken answer of spec 11.10's example", () => {
  assert.equal(
    sceneSentence(seen("person", "dog", "person"), "front_door"),
    "I see two people and a dog at the front door.",
  );
  assert.equal(sceneSentence(seen("cat"), "kitchen"), "I see a cat in the kitchen.");
  assert.equal(sceneSentence([], "backyard"), "I don't see anything I recognize in the backyard.");
  assert.equal(sceneSentence(seen("umbrella")), "I see an umbrella.");
});

Deno.test("plurals, counts and long lists", () => {
  assert.equal(plural("person"), "people");
  assert.equal(plural("bus"), "buses");
  assert.equal(plural("wine glass"), "wine glasses");
  assert.equal(plural("knife"), "knives");
  assert.equal(plural("cup"), "cups");
  assert.equal(countOf(3, "dog"), "three dogs");
  assert.equal(countOf(14, "car"), "14 cars");
  assert.equal(
    describeObjects(seen("cup", "book", "laptop", "chair", "clock", "vase")),
    "a cup, a book, a laptop, a chair and two more things",
  );
  assert.equal(whereIn("front_door"), "at the front door");
  assert.equal(whereIn("living_room"), "in the living room");
});

Deno.test("spokenTime says today, yesterday or the weekday", () => {
  const now = new Date(2026, 10, 29, 10, 30);
  assert.equal(spokenTime(new Date(2026, 10, 29, 3, 12).getTime(), now), "3:12 AM today");
  assert.equal(spokenTime(new Date(2026, 10, 28, 22, 3).getTime(), now), "10:03 PM yesterday");
  assert.equal(
    spokenTime(new Date(2026, 10, 23, 9, 0).getTime(), now),
    "9:00 AM on Monday, November 23",
  );
});
