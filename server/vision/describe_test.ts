import assert from "node:assert/strict";
import { countPhrase, describeObjects } from "./describe.ts";
import type { DetectedObject } from "./types.ts";

function seen(...labels: string[]): DetectedObject[] {
  return labels.map((label, i) => ({ label, confidence: 0.9 - i * 0.01, bbox: [0, 0, 1, 1] }));
}

Deno.test("describeObjects: counts per label, most frequent first (spec 11.11, issue 12)", () => {
  assert.equal(describeObjects(seen("dog", "person", "person")), "I see two people and a dog.");
  assert.equal(
    describeObjects(seen("person", "cup", "laptop")),
    "I see a person, a cup and a laptop.",
  );
  assert.equal(describeObjects(seen("cat")), "I see a cat.");
  assert.equal(describeObjects([]), "I see nothing I recognise.");
});

Deno.test("countPhrase: articles, number words, irregular plurals", () => {
  assert.equal(countPhrase("apple", 1), "an apple");
  assert.equal(countPhrase("person", 3), "three people");
  assert.equal(countPhrase("mouse", 2), "two mice");
  assert.equal(countPhrase("car", 12), "12 cars");
  assert.equal(countPhrase("scissors", 1), "a pair of scissors");
});
