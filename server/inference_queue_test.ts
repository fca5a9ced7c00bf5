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

Deno.test("InferenceQueue serves devices round-robin: a flooding device gets one turn a round", async () => {
  const queue = new InferenceQueue();
  const first = gate();
  const order: string[] = [];
  const job = (name: string) => () => {
    order.push(name);
    return Promise.resolve();
  };
  const all = [queue.run("a0", () => first.promise, { device: "a" })];
  for (let i = 1; i <= 5; i++) all.push(queue.run(`a${i}`, job(`a${i}`), { device: "a" }));
  const positions: number[] = [];
  all.push(queue.run("b1", job("b1"), {
    device: "b",
    onQueued: ({ position }) => positions.push(position),
  }));
  all.push(queue.run("c1", job("c1"), {
    device: "c",
    onQueued: ({ position }) => positions.push(position),
  }));
  // b waits behind the running turn and one turn of a; c behind those and b.
  assert.deepEqual(positions, [2, 3]);
  first.open();
  await Promise.all(all);
  assert.deepEqual(order, ["a1", "b1", "c1", "a2", "a3", "a4", "a5"]);
});

Deno.test("InferenceQueue tells a waiting turn where it stands as the queue moves", async () => {
  const queue = new InferenceQueue();
  const gates = [gate(), gate()];
  let now: (() => unknown) | undefined;
  const all = [
    queue.run("t1", () => gates[0].promise, { device: "a" }),
    queue.run("t2", () => gates[1].promise, { device: "b" }),
    queue.run("t3", () => Promise.resolve(), {
      device: "c",
      onQueued: (where, later) => {
        assert.equal(where.position, 2);
        now = later;
      },
    }),
  ];
  assert.deepEqual((now!() as { position: number }).position, 2);
  gates[0].open();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual((now!() as { position: number }).position, 1);
  gates[1].open();
  await Promise.all(all);
  assert.equal(now!(), undefined, "a turn that left the queue has no position");
});

Deno.test("InferenceQueue refuses only past its limits on audio, wait and bytes, never when idle", async () => {
  const queue = new InferenceQueue({
    limits: { maxQueuedAudioMs: 5000, maxWaitMs: 60_000, maxBufferedBytes: 100 },
  });
  // Idle: even a turn longer than the audio limit runs.
  assert.equal(await queue.run("long", () => Promise.resolve(1), { audioMs: 9000 }), 1);
  const first = gate();
  const running = queue.run("t1", () => first.promise, { audioMs: 9000 });
  const waiting = queue.run("t2", () => Promise.resolve(), { audioMs: 4000, device: "b" });
  const refused = await queue.run("t3", () => Promise.resolve(), { audioMs: 2000, device: "c" })
    .catch((e) => e);
  assert.equal(refused.code, "busy");
  assert.match(refused.message, /holds 4 s of audio \(limit 5 s\)/);
  assert.deepEqual(queue.load().queuedAudioS, 4);
  assert.deepEqual(queue.load().activeDevices, 2);
  assert.equal(queue.reserve(80), true);
  assert.equal(queue.reserve(30), false, "bytes beyond maxBufferedBytes are refused");
  queue.release(80);
  assert.equal(queue.reserve(100), true);
  queue.release(100);
  first.open();
  await running;
  await waiting;
});

Deno.test("InferenceQueue refuses a turn whose estimated wait passes maxWaitMs", async () => {
  const queue = new InferenceQueue({ limits: { maxWaitMs: 15 } });
  const slow = () => new Promise((resolve) => setTimeout(resolve, 20));
  // One measured turn is not enough to refuse anything on an estimate.
  await queue.run("m0", slow);
  const cold = queue.run("c1", slow, { device: "a" });
  assert.equal(await queue.run("c2", slow, { device: "b" }).then(() => "ran"), "ran");
  await cold;
  // Eight measured turns of ≥ 20 ms are.
  for (let i = 1; i < 8; i++) await queue.run(`m${i}`, slow);
  assert.ok(queue.load().turnMs >= 20);
  const first = gate();
  const running = queue.run("t1", () => first.promise, { device: "a" });
  const refused = await queue.run("t2", () => Promise.resolve(), { device: "b" }).catch((e) => e);
  assert.equal(refused.code, "busy");
  assert.match(refused.message, /estimated wait \d+ ms exceeds 15 ms/);
  first.open();
  await running;
});
