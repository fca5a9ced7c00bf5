import assert from "node:assert/strict";
import { matchZone, parseVisualQuestion } from "./questions.ts";

const now = new Date(2026, 10, 29, 10, 30);
const context = { zones: ["front_door", "kitchen", "backyard"], now };
const parse = (text: string) => parseVisualQuestion(text, context);

Deno.test("parseVisualQuestion: what is asked now, and where", () => {
  assert.deepEqual(parse("What do you see?"), { kind: "describe" });
  assert.deepEqual(parse("Is anyone at the front door?"), {
    kind: "presence",
    label: "person",
    zone: "front_door",
    place: "front door",
  });
  assert.deepEqual(parse("Is there anyone at the door?"), {
    kind: "presence",
    label: "person",
    zone: "front_door",
    place: "door",
  });
  assert.deepEqual(parse("How many people are in the kitchen?"), {
    kind: "count",
    label: "person",
    zone: "kitchen",
    place: "kitchen",
  });
  assert.deepEqual(parse("Is there a cat in the kitchen?"), {
    kind: "presence",
    label: "cat",
    zone: "kitchen",
    place: "kitchen",
  });
  assert.deepEqual(parse("Read this."), { kind: "read" });
  assert.deepEqual(parse("What does it say?"), { kind: "read" });
  assert.deepEqual(parse("What's in this picture?"), { kind: "describe" });
  assert.deepEqual(parse("Is anyone in the garage?"), {
    kind: "presence",
    label: "person",
    place: "garage",
  }, "a place no zone matches is kept, so the answer can name it");
});

Deno.test("parseVisualQuestion: questions about the past, with their period", () => {
  const hour = 3_600_000;
  const today = new Date(2026, 10, 29).getTime();
  assert.deepEqual(parse("What did the front door camera see last night?"), {
    kind: "history_what",
    zone: "front_door",
    place: "front door",
    from: today - 24 * hour + 18 * hour,
    to: today + 6 * hour,
    period: "last night",
  });
  assert.deepEqual(parse("When was someone last at the door?"), {
    kind: "history_when",
    label: "person",
    zone: "front_door",
    place: "door",
  });
  assert.deepEqual(parse("Show me the last alert from the backyard."), {
    kind: "history_show",
    zone: "backyard",
    place: "backyard",
  });
  assert.equal(parse("Was there anyone in the backyard yesterday?")?.kind, "history_what");
});

Deno.test("parseVisualQuestion leaves everything else to the other engines", () => {
  for (
    const text of [
      "What time is it?",
      "What's the weather like?",
      "Set a timer for five minutes.",
      "Turn on the kitchen lights.",
      "What did I ask yesterday?",
      "",
    ]
  ) {
    assert.equal(parse(text), undefined, text);
  }
});

Deno.test("matchZone: every word of a zone, or a unique last word", () => {
  assert.equal(matchZone("front door", ["front_door", "back_door"]), "front_door");
  assert.equal(matchZone("door", ["front_door", "back_door"]), undefined, "ambiguous");
  assert.equal(matchZone("door", ["front_door", "kitchen"]), "front_door");
  assert.equal(matchZone("garage", ["front_door"]), undefined);
});
