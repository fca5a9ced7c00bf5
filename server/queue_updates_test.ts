import assert from "node:assert/strict";
import FakeTimers from "@sinonjs/fake-timers";
import type { QueuePosition } from "./inference_queue.ts";
import { watchQueuedTurn } from "./queue_updates.ts";

Deno.test("a queued turn hears its place at once, again when it changes, and one notice", async () => {
  const clock = FakeTimers.install({ now: 0 });
  try {
    const states: number[] = [];
    let notices = 0;
    let where: QueuePosition | undefined = { position: 3, waitMs: 900 };
    let queued = true;
    const timers = watchQueuedTurn({
      where,
      now: () => where,
      timing: { noticeMs: 1500, updateMs: 2000 },
      state: (at) => states.push(at.position),
      notice: () => notices++,
      queued: () => queued,
    });
    assert.deepEqual(states, [3]);
    await clock.tickAsync(1500);
    assert.equal(notices, 1, "one moment after noticeMs");
    await clock.tickAsync(500);
    assert.deepEqual(states, [3], "no repeat while the place is the same");
    where = { position: 1, waitMs: 300 };
    await clock.tickAsync(2000);
    assert.deepEqual(states, [3, 1]);
    queued = false;
    await clock.tickAsync(10_000);
    assert.deepEqual(states, [3, 1], "nothing once the turn left the queue");
    assert.equal(notices, 1);
    for (const timer of timers) clearTimeout(timer);
  } finally {
    clock.uninstall();
  }
});

Deno.test("a turn whose estimate already passes noticeMs hears the notice at once", () => {
  let notices = 0;
  const timers = watchQueuedTurn({
    where: { position: 9, waitMs: 4000 },
    now: () => undefined,
    timing: { noticeMs: 1500, updateMs: 2000 },
    state: () => {},
    notice: () => notices++,
    queued: () => true,
  });
  assert.equal(notices, 1);
  for (const timer of timers) clearTimeout(timer);
});
