import assert from "node:assert/strict";
import type { DeviceCommand } from "../../shared/messages.ts";
import { ConversationMemory } from "./memory.ts";
import { StagedEffects } from "./staged_effects.ts";
import { MAX_TIMERS_PER_DEVICE, TimerService } from "./timers.ts";
import { runTool } from "./tools.ts";

function setup() {
  const memory = ConversationMemory.open(":memory:");
  const timers = new TimerService(memory, { onDue: () => {} });
  const commands: DeviceCommand[] = [];
  const now = new Date(2026, 10, 29, 9, 0);
  const stage = () =>
    new StagedEffects({
      context: {
        device: "kitchen",
        now,
        memory,
        timers,
        publishCommand: (_device, command) => commands.push(command),
      },
      markAnnounced: (ids) => timers.markAnnounced(ids),
    });
  const close = () => {
    timers.stop();
    memory.close();
  };
  return { memory, timers, commands, stage, close, now };
}

Deno.test("staged tools answer as the real ones but act only when applied, once", () => {
  const s = setup();
  try {
    const effects = s.stage();
    const timer = runTool({ tool: "set_timer", args: { seconds: 300 } }, effects.context);
    assert.equal(timer.text, "OK, a timer for 5 minutes.");
    assert.equal(timer.data.due_at, new Date(s.now.getTime() + 300_000).toISOString());
    const light = runTool(
      { tool: "device_command", args: { command: "set_power", target: "lights", on: true } },
      effects.context,
    );
    assert.equal(light.text, "OK, turning on the lights.");
    // A staged read sees the staged timer; the real state has none yet.
    const listed = runTool({ tool: "list_timers", args: {} }, effects.context);
    assert.equal((listed.data.timers as unknown[]).length, 1);
    assert.equal(s.timers.pending("kitchen").length, 0);
    assert.equal(s.commands.length, 0);
    assert.equal(effects.size, 2);
    assert.deepEqual(effects.apply(), []);
    assert.equal(s.timers.pending("kitchen").length, 1);
    assert.deepEqual(s.commands, [{
      command: "set_power",
      params: { target: "lights", on: true },
    }]);
    assert.deepEqual(effects.apply(), [], "a second apply does nothing");
    assert.equal(s.timers.pending("kitchen").length, 1);
    assert.equal(s.commands.length, 1);
  } finally {
    s.close();
  }
});

Deno.test("dropped effects never act; a staged cancel counts staged and real timers", () => {
  const s = setup();
  try {
    s.timers.set("kitchen", 60);
    const dropped = s.stage();
    runTool({ tool: "set_timer", args: { seconds: 120 } }, dropped.context);
    dropped.drop();
    assert.equal(dropped.state, "dropped");
    assert.deepEqual(dropped.apply(), []);
    assert.equal(s.timers.pending("kitchen").length, 1);
    const effects = s.stage();
    runTool({ tool: "set_timer", args: { seconds: 120 } }, effects.context);
    const cancelled = runTool({ tool: "cancel_timers", args: {} }, effects.context);
    assert.equal(cancelled.data.cancelled, 2);
    assert.equal(s.timers.pending("kitchen").length, 1, "nothing cancelled before the commit");
    effects.apply();
    assert.equal(s.timers.pending("kitchen").length, 0);
  } finally {
    s.close();
  }
});

Deno.test("a staged timer past the device's limit is refused at once, like a real one", () => {
  const s = setup();
  try {
    for (let i = 0; i < MAX_TIMERS_PER_DEVICE - 1; i++) s.timers.set("kitchen", 60 + i);
    const effects = s.stage();
    runTool({ tool: "set_timer", args: { seconds: 30 } }, effects.context);
    assert.throws(
      () => runTool({ tool: "set_timer", args: { seconds: 31 } }, effects.context),
      /already has 20 timers/,
    );
  } finally {
    s.close();
  }
});
