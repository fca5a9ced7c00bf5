import assert from "node:assert/strict";
import { type EndReason, UtteranceSegmenter } from "./utterance_segmenter.ts";
import type { VadState } from "./vad.ts";

function record(preRollFrames: number, maxFrames: number | (() => number)) {
  const log: string[] = [];
  const frames: number[] = [];
  const ends: { reason: EndReason; lastSpeechAt: number }[] = [];
  const seg = new UtteranceSegmenter({ frameSamples: 2, preRollFrames, maxFrames }, {
    utteranceStart: (at, info) => log.push(`start@${at}${info?.afterCap ? "+" : ""}`),
    utteranceAudio: (frame) => frames.push(frame[0]),
    utteranceEnd: (reason, lastSpeechAt) => {
      log.push(`end:${reason}`);
      ends.push({ reason, lastSpeechAt });
    },
  });
  const push = (states: VadState[], from = 0) =>
    states.forEach((s, i) => seg.push(new Float32Array([from + i, 0]), s, from + i));
  return { seg, log, frames, ends, push };
}

Deno.test("speech starts with the pre-roll so the first syllable is kept", () => {
  const r = record(3, 100);
  r.push(["quiet", "quiet", "quiet", "starting", "starting", "speaking"]);
  assert.deepEqual(r.log, ["start@2"]);
  assert.deepEqual(r.frames, [2, 3, 4, 5], "three pre-roll frames, then the speaking frame");
});

Deno.test("the VAD's quiet (after the silence frames) ends it, at the last voiced frame", () => {
  const r = record(1, 100);
  r.push(["starting", "speaking", "speaking", "stopping", "stopping", "quiet", "quiet"]);
  assert.deepEqual(r.log, ["start@0", "end:silence"]);
  assert.equal(r.ends[0].lastSpeechAt, 2);
  assert.deepEqual(r.frames, [0, 1, 2, 3, 4, 5], "trailing silence is part of the utterance");
});

Deno.test("maximum length cuts the utterance and a new one starts while speech goes on", () => {
  const r = record(1, 4);
  r.push(["starting", "speaking", "speaking", "speaking", "speaking", "speaking", "quiet"]);
  assert.deepEqual(r.log, ["start@0", "end:max_length", "start@4+", "end:silence"]);
  assert.equal(r.seg.active, false);
  assert.deepEqual(r.frames, [0, 1, 2, 3, 4, 5, 6], "no frame lost at the cut");
});

Deno.test("after a cap, a short pause then speech still continues; silence makes it new", () => {
  const r = record(2, 4);
  r.push(["speaking", "speaking", "speaking", "speaking", "stopping", "stopping", "speaking"]);
  r.push(["quiet"], 7);
  assert.deepEqual(r.log, ["start@0", "end:max_length", "start@4+", "end:silence"]);
  assert.deepEqual(r.frames, [0, 1, 2, 3, 4, 5, 6, 7], "the pause is in the pre-roll: kept");
  const q = record(1, 3);
  q.push(["speaking", "speaking", "speaking", "stopping", "quiet", "starting", "speaking"]);
  assert.deepEqual(q.log, ["start@0", "end:max_length", "start@5"], "a new request, not +");
});

Deno.test("the cap is read at each utterance's start (a server that takes long turns)", () => {
  let cap = 3;
  const r = record(0, () => cap);
  r.push(["speaking", "speaking", "speaking", "speaking", "quiet"]);
  assert.deepEqual(r.log, ["start@0", "end:max_length", "start@3+", "end:silence"]);
  cap = 100;
  r.push(Array(50).fill("speaking"), 10);
  assert.equal(r.seg.frames, 50, "50 frames, no cut at 3");
  assert.deepEqual(r.log.length, 5);
});

Deno.test("a click (starting, then quiet) never opens an utterance", () => {
  const r = record(2, 10);
  r.push(["starting", "quiet", "starting", "quiet"]);
  assert.deepEqual(r.log, []);
});

Deno.test("flush ends an open utterance", () => {
  const r = record(0, 10);
  r.push(["speaking"]);
  r.seg.flush();
  assert.deepEqual(r.log, ["start@0", "end:flush"]);
});

Deno.test("bad sizes are refused naming the value", () => {
  assert.throws(
    () => new UtteranceSegmenter({ frameSamples: 0, preRollFrames: 0, maxFrames: 1 }, {} as never),
    /frameSamples 0/,
  );
  assert.throws(
    () => new UtteranceSegmenter({ frameSamples: 2, preRollFrames: 5, maxFrames: 5 }, {} as never),
    /preRollFrames 5 must be an integer in 0..4/,
  );
});

Deno.test("a pause after SPECULATE_AFTER_MS of silence, once per stretch; resume before speech", () => {
  const log: string[] = [];
  const seg = new UtteranceSegmenter(
    { frameSamples: 2, preRollFrames: 0, maxFrames: 100, speculateAfterMs: 40 },
    {
      utteranceStart: () => log.push("start"),
      utteranceAudio: (frame) => log.push(`a${frame[0]}`),
      utteranceEnd: (reason) => log.push(`end:${reason}`),
      utterancePause: (at) => log.push(`pause@${at}`),
      utteranceResume: () => log.push("resume"),
    },
  );
  const states: VadState[] = [
    "speaking",
    "stopping",
    "stopping", // 40 ms after the last speaking frame: pause
    "stopping",
    "stopping",
    "speaking", // speech resumes
    "stopping",
    "stopping", // pause again
    "stopping",
    "quiet",
  ];
  states.forEach((state, i) => seg.push(new Float32Array([i, 0]), state, i * 20));
  assert.deepEqual(log, [
    "start",
    "a0",
    "a1",
    "a2",
    "pause@40",
    "a3",
    "a4",
    "resume",
    "a5",
    "a6",
    "a7",
    "pause@140",
    "a8",
    "a9",
    "end:silence",
  ]);
});

Deno.test("no pause when the silence window ends the utterance first", () => {
  const log: string[] = [];
  const seg = new UtteranceSegmenter(
    { frameSamples: 2, preRollFrames: 0, maxFrames: 100, speculateAfterMs: 100 },
    {
      utteranceStart: () => {},
      utteranceAudio: () => {},
      utteranceEnd: (reason) => log.push(`end:${reason}`),
      utterancePause: (at) => log.push(`pause@${at}`),
    },
  );
  (["speaking", "stopping", "quiet"] as VadState[]).forEach((state, i) =>
    seg.push(new Float32Array(2), state, i * 20)
  );
  assert.deepEqual(log, ["end:silence"]);
});

Deno.test("end() closes the open utterance at once, at its last speech", () => {
  const r = record(0, 100);
  assert.equal(r.seg.end(), false, "nothing open");
  r.push(["speaking", "speaking", "stopping"]);
  assert.equal(r.seg.end(), true);
  assert.deepEqual(r.log, ["start@0", "end:silence"]);
  assert.equal(r.ends[0].lastSpeechAt, 1);
  assert.equal(r.seg.active, false);
});
