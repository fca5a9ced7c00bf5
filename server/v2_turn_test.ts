import assert from "node:assert/strict";
import { DEFAULT_FRAME_LIMITS } from "../shared/frame_codec.ts";
import {
  continuationProblem,
  eotMessage,
  MAX_CONTINUATIONS,
  maxTurnSeconds,
  newTurn,
  TURN_MAX_SECONDS,
} from "./v2_turn.ts";

Deno.test("a continuation must be of the same device and rate, within the chain limit", () => {
  const earlier = { device: "kitchen", links: 0, rate: 16000 };
  assert.equal(continuationProblem("t1", earlier, "kitchen", 16000), undefined);
  assert.match(continuationProblem("t1", earlier, "hall", 16000)!, /device kitchen, not hall/);
  assert.match(continuationProblem("t1", earlier, "kitchen", 48000)!, /rate 16000, not 48000/);
  const long = { ...earlier, links: MAX_CONTINUATIONS };
  assert.match(continuationProblem("t1", long, "kitchen", 16000)!, /at most 8/);
});

Deno.test("eot silence is clamped to the codec's 20..5000 ms, whole ms", () => {
  const hint = (silenceMs: number) =>
    eotMessage("t1", { completion: "complete", silenceMs, reason: "" }).silence_ms;
  assert.equal(hint(120.4), 120);
  assert.equal(hint(3), 20);
  assert.equal(hint(9000), 5000);
});

Deno.test("a continued turn starts with the earlier audio; long turns only with continue", () => {
  const turn = newTurn("t2", "kitchen", 16000, { pcm: new Uint8Array(6), links: 1 });
  assert.equal(turn.bytes, 6);
  assert.equal(turn.links, 1);
  assert.equal(turn.chunks.length, 1);
  assert.equal(
    newTurn("t3", "kitchen", 16000, { pcm: new Uint8Array(0), links: 0 }).chunks.length,
    0,
  );
  assert.equal(maxTurnSeconds(DEFAULT_FRAME_LIMITS, false), DEFAULT_FRAME_LIMITS.maxAudioSeconds);
  assert.equal(maxTurnSeconds(DEFAULT_FRAME_LIMITS, true), TURN_MAX_SECONDS);
});
