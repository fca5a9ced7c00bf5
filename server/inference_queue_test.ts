import assert from "node:assert/strict";
import { InferenceQueue, QueueError, stopIfCancelled } from "./inference_queue.ts";

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => open = resolve);
  return { promise, open };
}

Deno.test("InferenceQueue runs jobs one at a time in arrival order", async () => {
  const queue = new InferenceQueue({ capacity: 4 });
  const log: string[] = [];
  let concurrent = 0;
  const job = (name: string) => async () => {
    concurrent++;
    assert.deepEqual(concurrent, 1);
    log.push(`start ${name}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
    log.push(`end ${name}`);
    concurrent--;
    return name;
  };
  const results = await Promise.all([queue.run("a", job("a")), queue.run("b", job("b"))]);
  assert.deepEqual(results, ["a", "b"]);
  assert.deepEqual(log, ["start a", "end a", "start b", "end b"]);
});

Deno.test("InferenceQueue refuses a turn with busy when capacity turns already wait", async () => {
  const queue = new InferenceQueue({ capacity: 1 });
  const first = gate();
  const running = queue.run("t1", () => first.promise);
  const waiting = queue.run("t2", () => Promise.resolve());
  const error = await queue.run("t3", () => Promise.resolve()).catch((e) => e);
  assert.deepEqual(error instanceof QueueError, true);
  assert.deepEqual(error.code, "busy");
  assert.deepEqual(error.message, "inference queue is full (1 turns)");
  first.open();
  await running;
  await waiting;
  assert.deepEqual(queue.waiting, 0);
});

Deno.test("InferenceQueue drops a turn cancelled while waiting without running it", async () => {
  const queue = new InferenceQueue({ capacity: 2 });
  const first = gate();
  const running = queue.run("t1", () => first.promise);
  const controller = new AbortController();
  let ran = false;
  const cancelled = queue.run("t2", () => {
    ran = true;
    return Promise.resolve();
  }, { signal: controller.signal });
  assert.deepEqual(queue.waiting, 1);
  controller.abort();
  await assert.rejects(cancelled, (e: QueueError) => e.code === "cancelled");
  assert.deepEqual(queue.waiting, 0);
  first.open();
  await running;
  assert.deepEqual(ran, false);
});

Deno.test("InferenceQueue lets a running turn see its cancel at the next stage boundary", async () => {
  const queue = new InferenceQueue();
  const controller = new AbortController();
  const stages: string[] = [];
  const stage = gate();
  const result = queue.run("t1", async (signal) => {
    stages.push("stt");
    await stage.promise;
    stopIfCancelled(signal, "t1");
    stages.push("assistant");
  }, { signal: controller.signal });
  controller.abort();
  stage.open();
  await assert.rejects(result, (e: QueueError) => e.code === "cancelled");
  assert.deepEqual(stages, ["stt"]);
  // The queue moves on after a cancelled turn.
  assert.deepEqual(await queue.run("t2", () => Promise.resolve("next")), "next");
});

Deno.test("InferenceQueue keeps going after a job throws", async () => {
  const queue = new InferenceQueue();
  await assert.rejects(queue.run("t1", () => Promise.reject(new Error("boom"))), /boom/);
  assert.deepEqual(await queue.run("t2", () => Promise.resolve(2)), 2);
});
