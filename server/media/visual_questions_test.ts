import assert from "node:assert/strict";
import type { VisualContext } from "../vision/mod.ts";
import { DeviceDirectory } from "./devices.ts";
import { MediaStore } from "./store.ts";
import { answerFromContext, VisualQuestions } from "./visual_questions.ts";

const context = (labels: string[], text?: string[]): VisualContext => ({
  source: "test",
  media: { width: 640, height: 480, format: "jpeg" },
  objects: labels.map((label) => ({ label, confidence: 0.9, bbox: [0, 0, 10, 10] })),
  description: "",
  ...(text ? { text_detected: text } : {}),
  timing_ms: { decode: 1, detect: 1 },
});

Deno.test("answerFromContext: describe, count, presence and read, spoken", () => {
  const seen = context(["person", "dog", "person"]);
  assert.equal(
    answerFromContext({ kind: "describe" }, seen, "front_door"),
    "I see two people and a dog at the front door.",
  );
  assert.equal(
    answerFromContext({ kind: "count", label: "person" }, seen, "kitchen"),
    "I see two people in the kitchen.",
  );
  assert.equal(
    answerFromContext({ kind: "count", label: "cat" }, seen),
    "I don't see any cats.",
  );
  assert.equal(
    answerFromContext({ kind: "presence", label: "person" }, context([]), "front_door"),
    "No, I don't see anyone at the front door.",
  );
  assert.equal(
    answerFromContext({ kind: "presence", label: "dog" }, seen),
    "Yes, I see a dog.",
  );
  assert.equal(
    answerFromContext({ kind: "read" }, context([], ["NAILA", "Meeting at 3pm"])),
    "It says: NAILA. Meeting at 3pm.",
  );
  assert.equal(
    answerFromContext({ kind: "read" }, context([])),
    "I don't see any text I can read.",
  );
});

Deno.test("VisualQuestions: history from the store, and honest answers when nothing can see", async () => {
  const now = new Date(2026, 10, 29, 10, 30);
  const dataDir = await Deno.makeTempDir({ prefix: "naila_vq_" });
  const store = await MediaStore.open({
    dataDir,
    databasePath: ":memory:",
    retentionDays: 7,
    retentionBytes: 1_000_000,
    now: () => now.getTime(),
  });
  const devices = new DeviceDirectory({ kitchen_hub: "kitchen" });
  const shown: string[] = [];
  const options = {
    vision: () => Promise.reject(new Error("no image is analysed in these questions")),
    devices,
    ruleZones: ["*", "backyard"],
    snapshot: () => Promise.reject(new Error("no camera is asked in these questions")),
    show: (device: string, _media: unknown, answer: string) => {
      shown.push(`${device}: ${answer}`);
      return Promise.resolve();
    },
    now: () => now,
  };
  const questions = new VisualQuestions({ ...options, store });
  const noStore = new VisualQuestions(options);
  try {
    const at = (h: number, m: number, day = 29) => new Date(2026, 10, day, h, m).getTime();
    const person = {
      label: "person",
      confidence: 0.9,
      bbox: [0, 0, 1, 1] as [number, number, number, number],
    };
    const cat = { ...person, label: "cat" };
    for (const [when, objects] of [[at(23, 40, 28), [cat]], [at(3, 12), [person]]] as const) {
      await store.add({
        at: when,
        zone: "backyard",
        device: "yard_cam",
        objects: [...objects],
        description: "",
        format: "jpeg",
        image: new Uint8Array(4),
      });
    }
    assert.equal(
      await questions.answer("kitchen_hub", "What did the backyard camera see last night?"),
      "Last night, the backyard camera saw a cat at 11:40 PM yesterday and a person at 3:12 AM today.",
    );
    assert.equal(
      await questions.answer("kitchen_hub", "When was someone last in the backyard?"),
      "Someone was last seen in the backyard at 3:12 AM today.",
    );
    assert.equal(
      await questions.answer("kitchen_hub", "Show me the last alert from the backyard."),
      "Here is the last alert from the backyard: a person at 3:12 AM today.",
    );
    assert.deepEqual(shown, [
      "kitchen_hub: Here is the last alert from the backyard: a person at 3:12 AM today.",
    ]);
    assert.match(
      (await noStore.answer("kitchen_hub", "When was someone last in the backyard?"))!,
      /^I don't keep any camera history: media storage is off/,
    );
    assert.equal(
      await questions.answer("kitchen_hub", "How many people are in the kitchen?"),
      "I can't see the kitchen: no camera there is online.",
    );
    assert.equal(questions.answer("kitchen_hub", "Set a timer for two minutes."), undefined);
  } finally {
    store.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
