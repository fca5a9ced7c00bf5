import assert from "node:assert/strict";
import FakeTimers from "@sinonjs/fake-timers";
import type { DeviceCommand } from "../../shared/messages.ts";
import { Assistant, heardReply, LLM_FAILURE_REPLY } from "./assistant.ts";
import { FALLBACK_REPLY } from "./builtin_engine.ts";
import { LlmClient } from "./llm_client.ts";
import { ConversationMemory } from "./memory.ts";
import { startFakeLlm, testAssistant } from "./testing.ts";
import { TimerService } from "./timers.ts";

/** 2026-11-21 15:05 local time. */
const NOW = new Date(2026, 10, 21, 15, 5, 0);

function setup(options: { memory?: ConversationMemory; llm?: LlmClient } = {}) {
  const memory = options.memory ?? ConversationMemory.open(":memory:");
  const commands: { device: string; command: DeviceCommand }[] = [];
  const due: string[] = [];
  const timers = new TimerService(memory, { onDue: (t) => due.push(t.id) });
  const assistant = new Assistant({
    memory,
    timers,
    publishCommand: (device, command) => commands.push({ device, command }),
    llm: options.llm,
    now: () => NOW,
  });
  return { assistant, memory, timers, commands, due };
}

async function reply(assistant: Assistant, device: string, text: string): Promise<string> {
  let out = "";
  for await (const piece of assistant.respond(device, text)) out += piece;
  return out;
}

Deno.test("Assistant answers the time and the date offline", async () => {
  const { assistant, memory } = setup();
  assert.equal(await reply(assistant, "kitchen", "What time is it?"), "It's 3:05 PM.");
  assert.equal(
    await reply(assistant, "kitchen", "what's the date"),
    "Today is Saturday, November 21, 2026.",
  );
  memory.close();
});

Deno.test("Assistant says nothing to an empty transcript", async () => {
  const { assistant, memory } = setup();
  assert.equal(await reply(assistant, "kitchen", "  "), "");
  memory.close();
});

Deno.test("Assistant publishes device commands for the device spoken to", async () => {
  const { assistant, memory, commands } = setup();
  assert.equal(
    await reply(assistant, "hall", "Turn off the lights."),
    "OK, turning off the lights.",
  );
  assert.equal(await reply(assistant, "hall", "set the volume to 30"), "Volume set to 30.");
  assert.deepEqual(commands, [
    { device: "hall", command: { command: "set_power", params: { target: "lights", on: false } } },
    { device: "hall", command: { command: "set_volume", params: { level: 30 } } },
  ]);
  memory.close();
});

Deno.test("Assistant gives a polite fallback for what it does not know", async () => {
  const { assistant, memory } = setup();
  assert.equal(await reply(assistant, "d", "Who won the match?"), FALLBACK_REPLY);
  memory.close();
});

Deno.test("Assistant announces a due timer in the next reply, or to an empty pull turn", async () => {
  const clock = FakeTimers.install({ now: NOW });
  const { assistant, memory, timers, due } = setup();
  try {
    assert.equal(
      await reply(assistant, "kitchen", "Set a timer for 2 minutes for the eggs"),
      "OK, a timer for 2 minutes for the eggs.",
    );
    await clock.tickAsync(120_000);
    assert.equal(due.length, 1);
    // The device's next turn, even an empty one, speaks the announcement once.
    assert.equal(await reply(assistant, "kitchen", ""), "Your timer for the eggs is done. ");
    assert.equal(await reply(assistant, "kitchen", ""), "");
    timers.set("kitchen", 60);
    await clock.tickAsync(60_000);
    assert.equal(
      await reply(assistant, "kitchen", "what time is it"),
      "Your timer for 1 minute is done. It's 3:05 PM.",
    );
    timers.stop();
  } finally {
    clock.uninstall();
    memory.close();
  }
});

Deno.test("Assistant recalls yesterday's questions from memory after a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila_assistant_" });
  try {
    const path = `${dir}/naila.db`;
    const yesterday = new Date(2026, 10, 20, 18, 30).getTime();
    const first = setup({ memory: ConversationMemory.open(path) });
    first.assistant.record({
      device: "kitchen",
      turn: "t1",
      at: yesterday,
      transcript: "How long do I boil an egg?",
      reply: "About nine minutes.",
      timings: { stt_ms: 100 },
    });
    first.assistant.record({
      device: "kitchen",
      turn: "t2",
      at: yesterday + 60_000,
      transcript: "Set a timer for nine minutes.",
      reply: "OK, a timer for 9 minutes.",
      timings: {},
    });
    first.assistant.record({
      device: "office",
      turn: "t1",
      at: yesterday,
      transcript: "Not in the kitchen",
      reply: "",
      timings: {},
    });
    first.memory.close();

    const second = setup({ memory: ConversationMemory.open(path) });
    assert.equal(
      await reply(second.assistant, "kitchen", "What was I asking about yesterday?"),
      "Yesterday you asked: How long do I boil an egg; Set a timer for nine minutes.",
    );
    assert.equal(
      await reply(second.assistant, "kitchen", "What did I ask today?"),
      "I don't have anything you asked today.",
    );
    second.memory.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("heardReply keeps only what was played before a barge-in", () => {
  const base = {
    id: 1,
    device: "d",
    turn: "t",
    at: 0,
    transcript: "q",
    reply: "one two three four five six seven eight nine ten",
    timings: {},
  };
  assert.equal(
    heardReply({ ...base, replyAudioMs: 1000, interrupted: true, playedMs: 300 }),
    "one two three… (interrupted)",
  );
  assert.equal(
    heardReply({ ...base, replyAudioMs: 1000, interrupted: false, playedMs: null }),
    base.reply,
  );
});

Deno.test("Assistant asks the LLM what it does not know, with tools and history", async () => {
  const fake = startFakeLlm([
    { toolCalls: [{ id: "c1", name: "device_command", arguments: '{"command":"stop"}' }] },
    { tokens: ["Paris is ", "the capital. ", "I also stopped the music."] },
  ]);
  const { assistant, memory, commands } = setup({
    llm: new LlmClient({ url: fake.url, model: "m" }),
  });
  try {
    assistant.record({
      device: "d",
      turn: "t0",
      at: NOW.getTime() - 1000,
      transcript: "Hello",
      reply: "Hello! How can I help?",
      timings: {},
    });
    const pieces: string[] = [];
    for await (const piece of assistant.respond("d", "What's the capital of France?")) {
      pieces.push(piece);
    }
    assert.deepEqual(pieces, ["Paris is ", "the capital. ", "I also stopped the music."]);
    assert.deepEqual(commands, [{ device: "d", command: { command: "stop", params: {} } }]);
    const [first, second] = fake.requests as { messages: Record<string, unknown>[] }[];
    assert.deepEqual(first.messages.slice(1).map((m) => m.content), [
      "Hello",
      "Hello! How can I help?",
      "What's the capital of France?",
    ]);
    const toolMessage = second.messages.at(-1)!;
    assert.equal(toolMessage.role, "tool");
    assert.equal(toolMessage.tool_call_id, "c1");
    assert.deepEqual(JSON.parse(toolMessage.content as string).say, "OK.");
  } finally {
    memory.close();
    await fake.close();
  }
});

Deno.test("Assistant says so when the LLM fails before answering", async () => {
  const fake = startFakeLlm([{ status: 500 }]);
  const { assistant, memory } = setup({ llm: new LlmClient({ url: fake.url, model: "m" }) });
  try {
    assert.equal(await reply(assistant, "d", "Tell me a story"), LLM_FAILURE_REPLY);
  } finally {
    memory.close();
    await fake.close();
  }
});

Deno.test("a request joining two commands runs both; staged, they act only when applied", async () => {
  const { assistant, timers, commands, close } = testAssistant();
  try {
    const effects = assistant.stage("kitchen");
    let reply = "";
    for await (
      const piece of assistant.respond(
        "kitchen",
        "Turn on the kitchen lights and set a timer for five minutes.",
        { effects },
      )
    ) reply += piece;
    assert.equal(reply, "OK, turning on the kitchen lights. OK, a timer for 5 minutes.");
    assert.equal(commands.length, 0);
    assert.equal(timers.pending("kitchen").length, 0);
    effects.apply();
    assert.deepEqual(commands, [
      { command: "set_power", params: { target: "kitchen lights", on: true } },
    ]);
    assert.equal(timers.pending("kitchen").length, 1);
  } finally {
    close();
  }
});

Deno.test("Assistant asks the visual hook after its own intents, before the fallback", async () => {
  const memory = ConversationMemory.open(":memory:");
  const asked: string[] = [];
  const assistant = new Assistant({
    memory,
    timers: new TimerService(memory, { onDue: () => {} }),
    publishCommand: () => {},
    now: () => NOW,
    visual: (device, text) => {
      asked.push(`${device}: ${text}`);
      return /front door/.test(text)
        ? Promise.resolve("I see a person at the front door.")
        : undefined;
    },
  });
  assert.equal(
    await reply(assistant, "hall", "Is anyone at the front door?"),
    "I see a person at the front door.",
  );
  assert.equal(await reply(assistant, "hall", "What time is it?"), "It's 3:05 PM.");
  assert.equal(await reply(assistant, "hall", "Sing me a song."), FALLBACK_REPLY);
  assert.deepEqual(asked, ["hall: Is anyone at the front door?", "hall: Sing me a song."]);
  memory.close();
});

Deno.test("Assistant says queued speech (alerts, recording answers) on the device's next pull", async () => {
  const { assistant, memory } = setup();
  assistant.say("hall", "Alert: a person at the front door.");
  assert.equal(await reply(assistant, "kitchen", ""), "", "only for the device it was queued for");
  assert.equal(
    await reply(assistant, "hall", "What time is it?"),
    "It's 3:05 PM.",
    "not in a turn",
  );
  assert.equal(await reply(assistant, "hall", ""), "Alert: a person at the front door. ");
  assert.equal(await reply(assistant, "hall", ""), "", "said once");
  for (let i = 1; i <= 7; i++) assistant.say("hall", `Message ${i}.`);
  assert.equal(
    await reply(assistant, "hall", ""),
    "Message 3. Message 4. Message 5. Message 6. Message 7. ",
    "bounded: the oldest drop first",
  );
  memory.close();
});
