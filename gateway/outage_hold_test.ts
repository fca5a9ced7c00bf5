import assert from "node:assert/strict";
import FakeTimers from "@sinonjs/fake-timers";
import { type HeldTurn, OutageHold } from "./outage_hold.ts";

/** A turn as the hold sees it (the hold's own interface), recording what it was told. */
function heldTurn(replayable = true) {
  const calls: string[] = [];
  const turn: HeldTurn = {
    replayable,
    suspend: () => calls.push("suspend"),
    replay: () => calls.push("replay"),
    abort: (reason, message) => calls.push(`abort ${reason}: ${message}`),
  };
  return { turn, calls };
}

Deno.test("a held turn is suspended and handed back, in order, when the server is back", () => {
  const clock = FakeTimers.install();
  try {
    const hold = new OutageHold(1000);
    hold.serverBack();
    hold.serverLeft();
    const a = heldTurn();
    const b = heldTurn();
    assert.ok(hold.hold(a.turn, "lost"));
    assert.ok(hold.hold(a.turn, "lost"), "holding twice is one hold");
    assert.ok(hold.holdNew(b.turn));
    assert.equal(hold.size, 2);
    assert.deepEqual(a.calls, ["suspend"]);
    clock.tick(999);
    assert.deepEqual(hold.serverBack(), [a.turn, b.turn]);
    clock.tick(5000);
    assert.deepEqual(a.calls, ["suspend"], "no abort once handed back");
  } finally {
    clock.uninstall();
  }
});

Deno.test("a turn that cannot be replayed is not held; a hold that runs out fails the turn", () => {
  const clock = FakeTimers.install();
  try {
    const hold = new OutageHold(1000);
    assert.equal(hold.hold(heldTurn(false).turn, "lost"), false);
    const t = heldTurn();
    hold.hold(t.turn, "connection lost");
    clock.tick(1000);
    assert.deepEqual(t.calls, [
      "suspend",
      "abort unavailable: connection lost, and it was not back within 1000 ms",
    ]);
    assert.equal(hold.size, 0);
  } finally {
    clock.uninstall();
  }
});

Deno.test("after an outage longer than the hold a new turn is not held; release and failAll", () => {
  const clock = FakeTimers.install();
  try {
    const hold = new OutageHold(1000);
    clock.tick(1001); // away since creation
    assert.equal(hold.holdNew(heldTurn().turn), false);
    hold.serverBack();
    hold.serverLeft();
    const released = heldTurn();
    const failed = heldTurn();
    hold.hold(released.turn, "lost");
    hold.hold(failed.turn, "lost");
    hold.release(released.turn);
    hold.failAll("shutting down");
    clock.tick(5000);
    assert.deepEqual(released.calls, ["suspend"]);
    assert.deepEqual(failed.calls, ["suspend", "abort unavailable: shutting down"]);
  } finally {
    clock.uninstall();
  }
});
