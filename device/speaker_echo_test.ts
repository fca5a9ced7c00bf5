import assert from "node:assert/strict";
import { SpeakerEcho } from "./speaker_echo.ts";

Deno.test("the reply comes back at the gain, after the delay, over the mic's audio", () => {
  const echo = new SpeakerEcho({ gainDb: -20, delayMs: 150 });
  assert.equal(echo.due, false);
  echo.heard(new Float32Array(960).fill(0.5), 1000);
  assert.equal(echo.due, true);
  const frame = new Float32Array(960).fill(0.1);
  assert.equal(echo.mix(frame, true, 1100), false, "not yet: 150 ms late");
  assert.ok(Math.abs(frame[0] - 0.1) < 1e-6, "untouched");
  assert.equal(echo.mix(frame, true, 1150), true);
  assert.ok(Math.abs(frame[0] - (0.1 + 0.05)) < 1e-6, `${frame[0]}: -20 dB is 0.1 ×`);
  assert.equal(echo.due, false, "all of it was heard");
  echo.heard(new Float32Array(480).fill(1), 2000);
  const silent = new Float32Array(960).fill(0.3);
  echo.mix(silent, false, 3000);
  assert.ok(Math.abs(silent[0] - 0.1) < 1e-6 && silent[959] === 0, "no mic audio: echo only");
});

Deno.test("a gain above 0 dB or a negative delay is refused, naming it", () => {
  assert.throws(() => new SpeakerEcho({ gainDb: 3, delayMs: 0 }), /gainDb 3/);
  assert.throws(() => new SpeakerEcho({ gainDb: -3, delayMs: -1 }), /delayMs -1/);
});
