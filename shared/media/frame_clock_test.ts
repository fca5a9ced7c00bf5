import assert from "node:assert/strict";
import FakeTimers from "@sinonjs/fake-timers";
import { FrameClock, MAX_CAPTURE_CATCH_UP_FRAMES, MAX_CATCH_UP_FRAMES } from "./frame_clock.ts";

Deno.test("the frame clock runs one frame per 20 ms from its start, without drift", () => {
  const time = FakeTimers.install();
  try {
    const at: number[] = [];
    const clock = new FrameClock({
      frame: () => at.push(performance.now()) > 0,
      keepRunning: () => at.length < 50,
    });
    clock.start();
    clock.start(); // already running: no second anchor
    time.tick(2000);
    assert.equal(at.length, 50);
    assert.deepEqual(at.slice(0, 3), [at[0], at[0] + 20, at[0] + 40]);
    assert.equal(at[49] - at[0], 49 * 20, "frame n at start + n × 20 ms");
    assert.equal(clock.running, false, "stopped when its owner said so");
    assert.equal(clock.takeStats().ticks, 50);
  } finally {
    time.uninstall();
  }
});

Deno.test("after a stall the frame clock re-anchors instead of bursting; a short delay catches up", () => {
  let now = 0;
  const time = FakeTimers.install({ toFake: ["setTimeout", "clearTimeout"] });
  try {
    let frames = 0;
    const clock = new FrameClock({
      now: () => now,
      frame: () => ++frames > 0,
      keepRunning: () => true,
    });
    clock.start();
    assert.equal(frames, 1);
    now = 45; // two frames due (20, 40): caught up
    time.tick(20);
    assert.equal(frames, 3);
    now = 1000; // a stall of ~48 frames
    time.tick(20);
    assert.ok(frames - 3 <= MAX_CATCH_UP_FRAMES, `${frames - 3} frames at once after the stall`);
    const stats = clock.takeStats();
    assert.equal(stats.stalls, 1);
    assert.ok(stats.maxLateMs >= 900);
    assert.equal(clock.takeStats().maxLateMs, 0, "the worst lateness is per call");
    clock.stop();
    assert.equal(clock.running, false);
  } finally {
    time.uninstall();
  }
});

Deno.test("a capture clock catches up a long stall in one burst and stays on real time", () => {
  let now = 0;
  const time = FakeTimers.install({ toFake: ["setTimeout", "clearTimeout"] });
  try {
    let frames = 0;
    const clock = new FrameClock({
      now: () => now,
      frame: () => ++frames > 0,
      keepRunning: () => true,
      maxCatchUpFrames: MAX_CAPTURE_CATCH_UP_FRAMES,
    });
    clock.start();
    now = 500; // the process waited 0.5 s: 25 frames came due
    time.tick(20);
    assert.equal(frames, 26, "every frame up to now, at once");
    assert.equal(clock.takeStats().stalls, 0);
    now = 520;
    time.tick(20);
    assert.equal(frames, 27, "then one per 20 ms, on the first frame's cadence");
    now = 520 + (MAX_CAPTURE_CATCH_UP_FRAMES + 1) * 20; // longer than it catches up: re-anchors
    time.tick(20);
    assert.equal(frames, 28);
    assert.equal(clock.takeStats().stalls, 1);
    clock.stop();
  } finally {
    time.uninstall();
  }
});
