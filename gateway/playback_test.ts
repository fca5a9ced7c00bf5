import assert from "node:assert/strict";
import { MAX_CATCH_UP_FRAMES } from "../shared/media/frame_clock.ts";
import { MAX_QUEUED_MS, PlaybackClock, PlaybackQueue } from "./playback.ts";
import { OPUS_FRAME_SAMPLES } from "../shared/media/opus_codec.ts";

function queue() {
  const sent: { first: boolean; value: number; at: number }[] = [];
  const drained: [string, number][] = [];
  const q = new PlaybackQueue({
    send: (frame, first) => sent.push({ first, value: frame[0], at: performance.now() }),
  });
  q.listen({ drained: (turn, played) => drained.push([turn, played]) });
  return { q, sent, drained };
}

Deno.test("a queue cuts 48 kHz audio into 20 ms frames and pads the last one", () => {
  const { q, sent, drained } = queue();
  q.enqueue("t1", new Float32Array(OPUS_FRAME_SAMPLES * 2 + 10).fill(0.5), 48000);
  q.finish("t1");
  while (q.tick());
  assert.equal(sent.length, 3);
  assert.deepEqual(sent.map((s) => s.first), [true, false, false]);
  assert.deepEqual(drained, [["t1", 60]]);
  assert.equal(q.playing, false);
});

Deno.test("Opus rates play as sent, in 20 ms frames of that rate; other rates at 48 kHz", () => {
  const { q } = queue();
  const lengths: number[] = [];
  const sink = new PlaybackQueue({ send: (frame) => lengths.push(frame.length) });
  sink.enqueue("t1", new Float32Array(2400), 24000);
  sink.enqueue("t1", new Float32Array(2400), 24000);
  sink.finish("t1");
  assert.equal(sink.queuedMs, 200);
  sink.enqueue("t2", new Float32Array(320 * 3), 16000);
  sink.finish("t2");
  // 22.05 kHz is no Opus rate: resampled to 48 kHz as one stream (the tail comes at finish).
  sink.enqueue("t3", new Float32Array(2205), 22050);
  sink.enqueue("t3", new Float32Array(2205), 22050);
  sink.finish("t3");
  while (sink.tick());
  assert.deepEqual(lengths, [
    ...Array(10).fill(480),
    ...Array(3).fill(320),
    ...Array(10).fill(OPUS_FRAME_SAMPLES),
  ]);
  // A chunk at another rate than its turn's first is resampled to the turn's rate.
  q.enqueue("t4", new Float32Array(480), 24000);
  q.enqueue("t4", new Float32Array(960), 48000);
  q.finish("t4");
  const ms = q.queuedMs;
  assert.ok(Math.abs(ms - 40) < 1, `${ms} ms queued for 40 ms of audio`);
});

Deno.test("flush drops everything at once and reports what was played", () => {
  const { q, sent } = queue();
  q.enqueue("t1", new Float32Array(48000), 48000);
  q.tick();
  q.tick();
  assert.equal(q.flush(), 40);
  assert.equal(q.tick(), false, "not one more frame after a flush");
  assert.equal(sent.length, 2);
});

Deno.test("the clock sends one frame per 20 ms, never faster, and stops when idle", async () => {
  const clock = new PlaybackClock();
  const { q, sent } = queue();
  clock.add(q);
  q.enqueue("t1", new Float32Array(OPUS_FRAME_SAMPLES * 25), 48000);
  q.finish("t1");
  clock.wake();
  while (q.playing) await new Promise((r) => setTimeout(r, 10));
  const span = sent[sent.length - 1].at - sent[0].at;
  assert.equal(sent.length, 25);
  // 24 intervals of 20 ms: never faster than real time (no burst); lateness shows in the stats.
  assert.ok(span >= 460, `25 frames spread over ${span.toFixed(1)} ms`);
  const stats = clock.takeStats();
  assert.equal(stats.ticks, 25);
  assert.equal(stats.stalls, 0);
  clock.stop();
});

Deno.test("after a stall the clock re-anchors instead of bursting the backlog", async () => {
  const clock = new PlaybackClock();
  const { q, sent } = queue();
  clock.add(q);
  q.enqueue("t1", new Float32Array(OPUS_FRAME_SAMPLES * 30), 48000);
  clock.wake();
  await new Promise((r) => setTimeout(r, 100));
  const blockedAt = performance.now();
  while (performance.now() - blockedAt < 200); // The event loop is blocked for 200 ms.
  await new Promise((r) => setTimeout(r, 1));
  const burst = sent.filter((s) => s.at >= blockedAt + 200 && s.at < blockedAt + 205).length;
  assert.ok(burst <= MAX_CATCH_UP_FRAMES, `${burst} frames sent at once after the stall`);
  const stats = clock.takeStats();
  assert.ok(stats.stalls >= 1);
  assert.ok(stats.lateTicks >= 1);
  assert.ok(stats.maxLateMs >= 150, `worst lateness ${stats.maxLateMs} ms`);
  assert.equal(clock.takeStats().maxLateMs, 0, "the worst lateness is reset when taken");
  q.flush();
  await new Promise((r) => setTimeout(r, 50));
  clock.stop();
});

Deno.test("late frames are counted one by one: a catch-up burst's later frames are on time", async () => {
  let now = 0;
  const clock = new PlaybackClock({ now: () => now });
  const { q, sent } = queue();
  const frames = async (n: number) => {
    while (sent.length < n) await new Promise((r) => setTimeout(r, 5));
  };
  clock.add(q);
  q.enqueue("t1", new Float32Array(OPUS_FRAME_SAMPLES * 30), 48000);
  clock.wake(); // frame 0 at t=0
  now = 45; // frames 1 (due at 20, 25 ms late) and 2 (due at 40, 5 ms late) go out together
  await frames(3);
  assert.deepEqual(clock.takeStats(), { ticks: 3, lateTicks: 1, stalls: 0, maxLateMs: 25 });
  now = 200; // a stall: one late frame, the backlog skipped
  await frames(4);
  assert.deepEqual(clock.takeStats(), { ticks: 4, lateTicks: 2, stalls: 1, maxLateMs: 140 });
  q.flush();
  clock.stop();
});

Deno.test("the queue refuses audio beyond MAX_QUEUED_MS instead of growing without bound", () => {
  const { q } = queue();
  const minute = new Float32Array(48000 * 60);
  assert.equal(q.enqueue("t1", minute, 48000), true);
  assert.equal(q.enqueue("t1", minute, 48000), true);
  assert.equal(q.queuedMs, MAX_QUEUED_MS);
  assert.equal(q.enqueue("t1", minute, 48000), false);
  assert.equal(q.queuedMs, MAX_QUEUED_MS);
});
