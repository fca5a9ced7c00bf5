import assert from "node:assert/strict";
import { errorReply, rebuildWorkerError, WorkerRpc } from "./worker_rpc.ts";

type Request =
  | { type: "echo"; id: number; text: string }
  | { type: "hold"; id: number }
  | { type: "fail"; id: number }
  | { type: "crash"; id: number }
  | { type: "abort"; id: number };
type Reply =
  | { id: number; ok: true; text?: string; aborted?: number[] }
  | ReturnType<typeof errorReply>;

/**
 * A real worker thread: echoes, holds a request until it is aborted (then reports the aborts it
 * saw), fails with a coded error, or throws uncaught.
 */
const WORKER_SOURCE = `
const held = new Map();
self.onmessage = ({ data }) => {
  if (data.type === "echo") self.postMessage({ id: data.id, ok: true, text: data.text });
  if (data.type === "hold") held.set(data.id, true);
  if (data.type === "abort" && held.delete(data.id)) {
    self.postMessage({ id: data.id, ok: true, aborted: [data.id] });
  }
  if (data.type === "fail") {
    self.postMessage({ id: data.id, ok: false, error: { name: "RangeError", message: "too big", code: "E_BIG" } });
  }
  if (data.type === "crash") throw new Error("boom");
};`;
const WORKER_URL = new URL(`data:application/javascript,${encodeURIComponent(WORKER_SOURCE)}`);

function start(rebuildError?: (error: { name: string; message: string }) => Error) {
  return new WorkerRpc<Request, Reply>(WORKER_URL, { name: "test worker", rebuildError });
}

Deno.test("WorkerRpc: replies pair with their requests by id", async () => {
  const rpc = start();
  try {
    const replies = await Promise.all(
      ["a", "b", "c"].map((text) => rpc.request((id) => ({ type: "echo", id, text }))),
    );
    assert.deepEqual(replies.map((r) => r.ok && r.text), ["a", "b", "c"]);
    assert.equal(rpc.inFlight, 0);
  } finally {
    rpc.close(new Error("closed"));
  }
});

Deno.test("WorkerRpc: a failed reply rejects with the rebuilt error", async () => {
  const rpc = start((error) => new TypeError(`rebuilt ${error.name}: ${error.message}`));
  try {
    await assert.rejects(rpc.request((id) => ({ type: "fail", id })), {
      name: "TypeError",
      message: "rebuilt RangeError: too big",
    });
  } finally {
    rpc.close(new Error("closed"));
  }
});

Deno.test("WorkerRpc: an abort rejects at once and tells the worker; the slot frees when it answers", async () => {
  const rpc = start();
  try {
    const controller = new AbortController();
    const held = rpc.request((id) => ({ type: "hold", id }), { signal: controller.signal });
    assert.equal(rpc.inFlight, 1);
    controller.abort(new Error("caller gave up"));
    await assert.rejects(held, { message: "caller gave up" });
    // The worker answers the abort; the echo after it proves that answer was read.
    const echo = await rpc.request((id) => ({ type: "echo", id, text: "after" }));
    assert.equal(echo.ok && echo.text, "after");
    assert.equal(rpc.inFlight, 0);
    await assert.rejects(
      rpc.request((id) => ({ type: "echo", id, text: "x" }), { signal: AbortSignal.abort() }),
      { name: "AbortError" },
    );
  } finally {
    rpc.close(new Error("closed"));
  }
});

Deno.test("WorkerRpc: a crashed or closed worker rejects pending and later requests", async () => {
  const rpc = start();
  const held = rpc.request((id) => ({ type: "hold", id }));
  const crash = rpc.request((id) => ({ type: "crash", id }));
  await assert.rejects(held, /test worker failed: .*boom/);
  await assert.rejects(crash, /test worker failed/);
  await assert.rejects(
    rpc.request((id) => ({ type: "echo", id, text: "x" })),
    /test worker failed/,
  );
  assert.equal(rpc.inFlight, 0);
  rpc.close(new Error("closed")); // a second end keeps the first reason
  await assert.rejects(
    rpc.request((id) => ({ type: "echo", id, text: "x" })),
    /test worker failed/,
  );
});

Deno.test("errorReply and rebuildWorkerError: name, message and a string code cross the boundary", () => {
  const coded = Object.assign(new Error("no file"), { name: "NotFound", code: "ENOENT" });
  assert.deepEqual(errorReply(3, coded), {
    id: 3,
    ok: false,
    error: { name: "NotFound", message: "no file", code: "ENOENT" },
  });
  assert.deepEqual(errorReply(4, "plain"), {
    id: 4,
    ok: false,
    error: { name: "Error", message: "plain" },
  });
  assert.deepEqual(errorReply(5, Object.assign(new Error("x"), { code: 7 })).error, {
    name: "Error",
    message: "x",
  });
  const rebuilt = rebuildWorkerError({ name: "NotFound", message: "no file" });
  assert.ok(rebuilt instanceof Error);
  assert.equal(rebuilt.name, "NotFound");
  assert.equal(rebuilt.message, "no file");
  const abort = rebuildWorkerError({ name: "AbortError", message: "stopped" });
  assert.ok(abort instanceof DOMException && abort.name === "AbortError");
});
