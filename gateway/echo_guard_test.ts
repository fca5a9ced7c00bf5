import assert from "node:assert/strict";
import {
  ENERGY_THRESHOLD,
  GUARD_ENERGY_FACTOR,
  GUARD_SILERO_THRESHOLD,
  GUARD_START_FRAMES,
  SILERO_THRESHOLD,
  START_FRAMES,
  vadParams,
} from "./echo_guard.ts";

Deno.test("vadParams: Silero and energy thresholds, the utterance's silence frames", () => {
  assert.deepEqual(vadParams("silero", "off", 15).normal, {
    threshold: SILERO_THRESHOLD,
    startFrames: START_FRAMES,
    stopFrames: 15,
  });
  assert.deepEqual(vadParams("energy", "off", 20).normal, {
    threshold: ENERGY_THRESHOLD,
    startFrames: START_FRAMES,
    stopFrames: 20,
  });
});

Deno.test("vadParams: raise and estimate raise the threshold and the start frames while a reply plays", () => {
  for (const guard of ["raise", "estimate"] as const) {
    assert.deepEqual(vadParams("silero", guard, 15).guarded, {
      threshold: GUARD_SILERO_THRESHOLD,
      startFrames: GUARD_START_FRAMES,
      stopFrames: 15,
    });
    const energy = vadParams("energy", guard, 15).guarded;
    assert.equal(energy.threshold, Math.min(1, ENERGY_THRESHOLD * GUARD_ENERGY_FACTOR));
    assert.ok(energy.threshold > ENERGY_THRESHOLD && energy.threshold <= 1);
  }
});

Deno.test("vadParams: half_duplex and off raise nothing (the guarded params are the normal ones)", () => {
  for (const guard of ["half_duplex", "off"] as const) {
    const { normal, guarded } = vadParams("silero", guard, 15);
    assert.equal(guarded, normal);
  }
});
