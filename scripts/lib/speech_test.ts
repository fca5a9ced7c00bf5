import assert from "node:assert/strict";
import { rms } from "../../shared/audio.ts";
import { speak } from "./speech.ts";

Deno.test("speak renders non-silent speech of plausible length", async () => {
  const { rate, samples } = await speak("what time is it");
  assert.equal(rate, 22050);
  const seconds = samples.length / rate;
  assert.ok(seconds > 0.5 && seconds < 3, `${seconds} s`);
  assert.ok(rms(samples) > 0.02, `rms ${rms(samples)}`);
});
