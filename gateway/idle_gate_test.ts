import assert from "node:assert/strict";
import { OPUS_FRAME_SAMPLES } from "../shared/media/opus_codec.ts";
import { IDLE_GATE_RMS, IdleGate, NOISE_GATE_RATIO, NoiseFloor } from "./idle_gate.ts";

Deno.test("the noise floor is the quietest of the last 2 s, known after 1 s", () => {
  const floor = new NoiseFloor();
  for (let i = 0; i < 49; i++) assert.equal(floor.update(0.01 + (i % 3) * 0.001), 0);
  assert.equal(floor.update(0.02), 0.01);
  // A louder stretch (speech, a reply's echo) does not lift it for 2 s...
  for (let i = 0; i < 90; i++) assert.equal(floor.update(0.3), 0.01);
  // ...after which the floor follows the new level; a quiet frame lowers it at once.
  for (let i = 0; i < 20; i++) floor.update(0.3);
  assert.equal(floor.update(0.3), 0.3);
  assert.equal(floor.update(0.002), 0.002);
});

/** A 20 ms frame of a 300 Hz sine with RMS `level`. */
function frameAt(level: number): Float32Array {
  const amplitude = level * Math.SQRT2;
  return new Float32Array(OPUS_FRAME_SAMPLES).map((_, i) =>
    amplitude * Math.sin((2 * Math.PI * 300 * i) / 48000)
  );
}

Deno.test("the idle gate passes frames below -46 dBFS, and once the floor is known, within 6 dB of it", () => {
  assert.equal(new IdleGate().quiet(frameAt(IDLE_GATE_RMS * 0.8)), true);
  assert.equal(new IdleGate().quiet(frameAt(IDLE_GATE_RMS * 1.2)), false);
  // A fan at 2 × the gate: loud enough to pass while the floor is unknown (under 1 s)...
  const gate = new IdleGate();
  const fan = IDLE_GATE_RMS * 2;
  for (let i = 0; i < 49; i++) assert.equal(gate.quiet(frameAt(fan)), false, `frame ${i}`);
  // ...then gated as the room's noise.
  assert.equal(gate.quiet(frameAt(fan)), true);
  assert.equal(gate.quiet(frameAt(fan * NOISE_GATE_RATIO * 0.9)), true);
  // Speech 6 dB and more above the floor is not.
  assert.equal(gate.quiet(frameAt(fan * NOISE_GATE_RATIO * 1.1)), false);
  assert.equal(gate.quiet(frameAt(0.1)), false);
});
