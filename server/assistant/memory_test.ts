import assert from "node:assert/strict";
import { ConversationMemory } from "./memory.ts";

Deno.test("ConversationMemory keeps turns per device, oldest first", () => {
  const memory = ConversationMemory.open(":memory:");
  memory.addTurn({
    device: "kitchen",
    turn: "t1",
    at: 1000,
    transcript: "a",
    reply: "A",
    timings: {},
  });
  memory.addTurn({
    device: "office",
    turn: "t1",
    at: 1500,
    transcript: "x",
    reply: "X",
    timings: {},
  });
  memory.addTurn({
    device: "kitchen",
    turn: "t2",
    at: 2000,
    transcript: "b",
    reply: "B",
    timings: { stt_ms: 12.5 },
    replyAudioMs: 900,
  });
  const turns = memory.recent("kitchen", 10);
  assert.deepEqual(turns.map((t) => t.transcript), ["a", "b"]);
  assert.deepEqual(turns[1].timings, { stt_ms: 12.5 });
  assert.equal(turns[1].replyAudioMs, 900);
  assert.deepEqual(memory.recent("kitchen", 1).map((t) => t.transcript), ["b"]);
  assert.deepEqual(memory.between("kitchen", 1500, 3000).map((t) => t.turn), ["t2"]);
  memory.close();
});

Deno.test("ConversationMemory records an interruption and how much was heard", () => {
  const memory = ConversationMemory.open(":memory:");
  const id = memory.addTurn({
    device: "d",
    turn: "t",
    at: 1,
    transcript: "q",
    reply: "r",
    timings: {},
  });
  assert.equal(memory.turn(id)?.interrupted, false);
  assert.equal(memory.markInterrupted(id, 420), true);
  assert.equal(memory.turn(id)?.interrupted, true);
  assert.equal(memory.turn(id)?.playedMs, 420);
  assert.equal(memory.markInterrupted(id + 100, 1), false);
  assert.equal(memory.markInterruptedByTurn({ device: "d", turn: "t" }, 300), true);
  assert.equal(memory.turn(id)?.playedMs, 300);
  assert.equal(memory.markInterruptedByTurn({ device: "d", turn: "other" }, 1), false);
  assert.equal(memory.markInterruptedByTurn({ device: "elsewhere", turn: "t" }, 1), false);
  memory.close();
});

Deno.test("ConversationMemory survives closing and reopening its file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila_memory_" });
  try {
    const path = `${dir}/naila.db`;
    const first = ConversationMemory.open(path);
    first.addTurn({
      device: "d",
      turn: "t",
      at: 5,
      transcript: "remember me",
      reply: "ok",
      timings: {},
    });
    first.addTimer({
      id: "x",
      device: "d",
      kind: "timer",
      label: "tea",
      createdAt: 5,
      dueAt: 10,
      state: "pending",
    });
    first.close();
    const second = ConversationMemory.open(path);
    assert.equal(second.recent("d", 1)[0].transcript, "remember me");
    assert.equal(second.timers("pending")[0].label, "tea");
    second.setTimerState("x", "due");
    assert.deepEqual(second.timers("due", "d").map((t) => t.id), ["x"]);
    assert.deepEqual(second.timers("due", "other"), []);
    second.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
