import assert from "node:assert/strict";
import type { DetectedObject } from "../vision/mod.ts";
import { AlertRules, alertTypeOf } from "./alerts.ts";

const person: DetectedObject = { label: "person", confidence: 0.9, bbox: [10, 10, 100, 200] };
const faint: DetectedObject = { label: "person", confidence: 0.3, bbox: [10, 10, 100, 200] };
const dog: DetectedObject = { label: "dog", confidence: 0.8, bbox: [200, 10, 50, 50] };

function rules(): AlertRules {
  return new AlertRules({
    rules: [{ zone: "front_door", label: "person" }, { zone: "*", label: "dog" }],
    cooldownMs: 60_000,
    minConfidence: 0.5,
  });
}

Deno.test("AlertRules fires per zone and label, with count and best confidence", () => {
  const fired = rules().evaluate({
    device: "front_cam",
    zone: "front_door",
    objects: [person, { ...person, confidence: 0.7 }, dog],
    at: 1000,
  });
  assert.deepEqual(
    fired.map((a) => [a.zone, a.alertType, a.count, a.confidence, a.device]),
    [["front_door", "person_detected", 2, 0.9, "front_cam"], [
      "front_door",
      "dog_detected",
      1,
      0.8,
      "front_cam",
    ]],
  );
});

Deno.test("AlertRules: a person in a zone without a person rule, or below the minimum score, is no alert", () => {
  const alerts = rules();
  assert.deepEqual(
    alerts.evaluate({ device: "k", zone: "kitchen", objects: [person], at: 0 }),
    [],
  );
  assert.deepEqual(
    alerts.evaluate({ device: "f", zone: "front_door", objects: [faint], at: 0 }),
    [],
  );
});

Deno.test("AlertRules cooldown: one person standing there is one alert; gone for the cooldown, a new one", () => {
  const alerts = rules();
  const frame = (at: number, objects: DetectedObject[]) =>
    alerts.evaluate({ device: "front_cam", zone: "front_door", objects, at }).length;
  // A frame every 30 s for five minutes with the person in view: one alert.
  const counts = [];
  for (let at = 0; at <= 300_000; at += 30_000) counts.push(frame(at, [person]));
  assert.deepEqual(counts, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  // The person leaves: empty frames do not refresh; back after more than the cooldown → alert.
  assert.equal(frame(330_000, []), 0);
  assert.equal(frame(359_000, [person]), 0, "within 60 s of the last sighting");
  assert.equal(frame(420_000, [person]), 1, "61 s after the last sighting");
  // Another camera in the same zone shares the cooldown.
  assert.equal(
    alerts.evaluate({ device: "porch_cam", zone: "front_door", objects: [person], at: 421_000 })
      .length,
    0,
  );
});

Deno.test("alertTypeOf turns a label into a topic-safe type", () => {
  assert.equal(alertTypeOf("person"), "person_detected");
  assert.equal(alertTypeOf("teddy bear"), "teddy_bear_detected");
});
