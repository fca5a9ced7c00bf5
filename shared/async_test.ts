import assert from "node:assert/strict";
import { backoffDelay, deadline, delay, retry, RetryError } from "./async.ts";

Deno.test("delay", async (t) => {
  await t.step("resolves after the time", async () => {
    const start = performance.now();
    await delay(20);
    assert.ok(performance.now() - start >= 19);
  });
  await t.step("rejects with the abort reason", async () => {
    const controller = new AbortController();
    const pending = delay(10_000, { signal: controller.signal });
    controller.abort(new Error("stop"));
    await assert.rejects(pending, /stop/);
  });
});

Deno.test("deadline", async (t) => {
  await t.step("passes a fast result through", async () => {
    assert.equal(await deadline(Promise.resolve(7), 1000), 7);
  });
  await t.step("rejects a slow promise with a TimeoutError", async () => {
    const slow = delay(1000);
    await assert.rejects(
      deadline(slow, 10),
      (error: DOMException) => error.name === "TimeoutError",
    );
    await slow;
  });
});

Deno.test("retry", async (t) => {
  await t.step("returns once an attempt succeeds", async () => {
    let calls = 0;
    const value = await retry(() => {
      if (++calls < 3) throw new Error(`fail ${calls}`);
      return "ok";
    }, { minTimeout: 1, maxTimeout: 2 });
    assert.equal(value, "ok");
    assert.equal(calls, 3);
  });
  await t.step("gives up with RetryError carrying the last error", async () => {
    const error = await retry(() => Promise.reject(new Error("down")), {
      maxAttempts: 2,
      minTimeout: 1,
    })
      .catch((e) => e);
    assert.ok(error instanceof RetryError);
    assert.match(String((error.cause as Error).message), /down/);
  });
  await t.step("backoff grows exponentially up to the cap", () => {
    const options = { minTimeout: 100, multiplier: 2, maxTimeout: 1000, jitter: 0 };
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, options)), [
      100,
      200,
      400,
      800,
      1000,
      1000,
    ]);
    for (let i = 0; i < 50; i++) {
      const jittered = backoffDelay(2, { ...options, jitter: 0.5 });
      assert.ok(jittered >= 200 && jittered <= 400, `${jittered}`);
    }
  });
});
