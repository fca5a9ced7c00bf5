import assert from "node:assert/strict";
import { matchIntent, matchIntents, parseDuration, parseNumber } from "./builtin_engine.ts";

Deno.test("parseNumber reads digits and English number words", () => {
  assert.equal(parseNumber("25"), 25);
  assert.equal(parseNumber("twenty five"), 25);
  assert.equal(parseNumber("twenty-five"), 25);
  assert.equal(parseNumber("a"), 1);
  assert.ok(Number.isNaN(parseNumber("lots")));
});

Deno.test("parseDuration sums hours, minutes and seconds", () => {
  assert.equal(parseDuration("five minutes"), 300);
  assert.equal(parseDuration("1 hour and 30 minutes"), 5400);
  assert.equal(parseDuration("half an hour"), 1800);
  assert.equal(parseDuration("an hour and a half"), 5400);
  assert.equal(parseDuration("later"), undefined);
});

Deno.test("matchIntent recognizes time and date questions", () => {
  assert.deepEqual(matchIntent("What time is it?"), { tool: "get_time", args: {} });
  assert.deepEqual(matchIntent(" what's the time"), { tool: "get_time", args: {} });
  assert.deepEqual(matchIntent("What's the date today?"), { tool: "get_date", args: {} });
  assert.deepEqual(matchIntent("What day is it?"), { tool: "get_date", args: {} });
});

Deno.test("matchIntent recognizes timers and reminders", () => {
  assert.deepEqual(matchIntent("Set a timer for five minutes."), {
    tool: "set_timer",
    args: { seconds: 300, label: "" },
  });
  assert.deepEqual(matchIntent("Set a 10 minute timer for the pasta"), {
    tool: "set_timer",
    args: { seconds: 600, label: "pasta" },
  });
  assert.deepEqual(matchIntent("Remind me to call my mom in 2 hours."), {
    tool: "set_timer",
    args: { seconds: 7200, label: "call your mom", reminder: true },
  });
  assert.deepEqual(matchIntent("Remind me in twenty minutes to check the oven"), {
    tool: "set_timer",
    args: { seconds: 1200, label: "check the oven", reminder: true },
  });
  assert.deepEqual(matchIntent("Cancel the timer"), { tool: "cancel_timers", args: {} });
  assert.deepEqual(matchIntent("How much time is left on my timer?"), {
    tool: "list_timers",
    args: {},
  });
});

Deno.test("matchIntent recognizes device commands", () => {
  assert.deepEqual(matchIntent("Turn on the kitchen lights."), {
    tool: "device_command",
    args: { command: "set_power", target: "kitchen lights", on: true },
  });
  assert.deepEqual(matchIntent("turn the TV off"), {
    tool: "device_command",
    args: { command: "set_power", target: "tv", on: false },
  });
  assert.deepEqual(matchIntent("Set the volume to forty"), {
    tool: "device_command",
    args: { command: "set_volume", level: 40 },
  });
  assert.deepEqual(matchIntent("Stop."), { tool: "device_command", args: { command: "stop" } });
});

Deno.test("matchIntent recognizes recall questions with their period", () => {
  assert.deepEqual(matchIntent("What was I asking about yesterday?"), {
    tool: "recall",
    args: { period: "yesterday" },
  });
  assert.deepEqual(matchIntent("What did I ask you today?"), {
    tool: "recall",
    args: { period: "today" },
  });
});

Deno.test("matchIntent leaves what it does not know to the caller", () => {
  assert.equal(matchIntent("What's the capital of France?"), undefined);
  assert.equal(matchIntent(""), undefined);
});

Deno.test("matchIntents splits a joined request only when every clause is a command", () => {
  assert.deepEqual(
    matchIntents("Turn on the kitchen lights and set a timer for five minutes."),
    [
      {
        tool: "device_command",
        args: { command: "set_power", target: "kitchen lights", on: true },
      },
      { tool: "set_timer", args: { seconds: 300, label: "" } },
    ],
  );
  assert.deepEqual(matchIntents("turn off the tv, and then what time is it"), [
    { tool: "device_command", args: { command: "set_power", target: "tv", on: false } },
    { tool: "get_time", args: {} },
  ]);
  // Not every clause is a command: one request.
  assert.deepEqual(matchIntents("Remind me to buy bread and milk in 2 hours"), [
    { tool: "set_timer", args: { seconds: 7200, label: "buy bread and milk", reminder: true } },
  ]);
  assert.deepEqual(matchIntents("turn on the lights in the hall and kitchen"), [
    {
      tool: "device_command",
      args: { command: "set_power", target: "lights in the hall and kitchen", on: true },
    },
  ]);
  assert.deepEqual(matchIntents("what's the weather"), []);
});
