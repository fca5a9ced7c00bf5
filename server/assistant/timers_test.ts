import assert from "node:assert/strict";
import FakeTimers from "@sinonjs/fake-timers";
import { ConversationMemory, type TimerRecord } from "./memory.ts";
import { announcementText, describeDuration, type TimerError, TimerService } from "./timers.ts";

Deno.test("TimerService fires a timer when it is due, not before", async () => {
  const clock = FakeTimers.install({ now: 1_700_000_000_000 });
  const memory = ConversationMemory.open(":memory:");
  try {
    const fired: TimerRecord[] = [];
    const timers = new TimerService(memory, { onDue: (t) => fired.push(t) });
    const timer = timers.set("kitchen", 300, { label: "check the oven", kind: "reminder" });
    await clock.tickAsync(299_000);
    assert.equal(fired.length, 0);
    assert.equal(timers.pending("kitchen").length, 1);
    await clock.tickAsync(1_000);
    assert.deepEqual(fired.map((t) => t.id), [timer.id]);
    assert.equal(announcementText(fired[0]), "Reminder: check the oven.");
    assert.deepEqual(timers.pending("kitchen"), []);
    // The announcement is handed to the next turn of that device exactly once.
    assert.deepEqual(timers.takeAnnouncements("kitchen").map((t) => t.id), [timer.id]);
    assert.deepEqual(timers.takeAnnouncements("kitchen"), []);
    timers.stop();
  } finally {
    clock.uninstall();
    memory.close();
  }
});

Deno.test("TimerService re-arms stored timers after a restart and fires overdue ones", async () => {
  const clock = FakeTimers.install({ now: 1_000_000 });
  const memory = ConversationMemory.open(":memory:");
  try {
    const first = new TimerService(memory, { onDue: () => assert.fail("stopped service fired") });
    first.set("office", 60);
    first.set("office", 600);
    first.stop();
    await clock.tickAsync(120_000);
    const fired: string[] = [];
    const second = new TimerService(memory, { onDue: (t) => fired.push(announcementText(t)) });
    second.start();
    await clock.tickAsync(0);
    assert.deepEqual(fired, ["Your timer for 1 minute is done."]);
    await clock.tickAsync(480_000);
    assert.deepEqual(fired, [
      "Your timer for 1 minute is done.",
      "Your timer for 10 minutes is done.",
    ]);
    second.stop();
  } finally {
    clock.uninstall();
    memory.close();
  }
});

Deno.test("TimerService cancels a device's timers", async () => {
  const clock = FakeTimers.install();
  const memory = ConversationMemory.open(":memory:");
  try {
    const timers = new TimerService(memory, { onDue: () => assert.fail("cancelled timer fired") });
    timers.set("d", 5);
    timers.set("d", 10);
    assert.equal(timers.cancelAll("d"), 2);
    await clock.tickAsync(20_000);
    assert.deepEqual(timers.pending("d"), []);
  } finally {
    clock.uninstall();
    memory.close();
  }
});

Deno.test("TimerService refuses durations out of range, naming the field and value", () => {
  const memory = ConversationMemory.open(":memory:");
  const timers = new TimerService(memory, { onDue: () => {} });
  assert.throws(() => timers.set("d", 0), (e: TimerError) => {
    assert.equal(e.field, "seconds");
    assert.equal(e.value, 0);
    return e.message === "timer of 0 s is not allowed, expected 1..86400 s";
  });
  memory.close();
});

Deno.test("describeDuration speaks hours, minutes and seconds", () => {
  assert.equal(describeDuration(45), "45 seconds");
  assert.equal(describeDuration(60), "1 minute");
  assert.equal(describeDuration(5400), "1 hour and 30 minutes");
});
