import assert from "node:assert/strict";
import { DeviceAssignment, rendezvousWeight, rendezvousWinner } from "./device_assignment.ts";

const DEVICES = Array.from({ length: 200 }, (_, i) => `device_${i}`);

Deno.test("rendezvous hashing spreads devices over gateways and moves only a dead one's", () => {
  const three = ["g_a", "g_b", "g_c"];
  const before = new Map(DEVICES.map((d) => [d, rendezvousWinner(three, d)!]));
  const counts = three.map((g) => [...before.values()].filter((w) => w === g).length);
  // 200 devices over 3 gateways: each gets a fair share (expected 67, 5 sd ≈ 33).
  for (const count of counts) assert.ok(count > 35 && count < 100, `${counts}`);
  const after = new Map(DEVICES.map((d) => [d, rendezvousWinner(["g_a", "g_c"], d)!]));
  for (const device of DEVICES) {
    if (before.get(device) !== "g_b") assert.equal(after.get(device), before.get(device));
    else assert.notEqual(after.get(device), "g_b");
  }
  assert.equal(rendezvousWeight("g_a", "x"), rendezvousWeight("g_a", "x"));
  assert.equal(rendezvousWinner([], "x"), undefined);
});

Deno.test("two assignments with the same members agree on exactly one owner per device", () => {
  const serving1 = new Set<string>();
  const serving2 = new Set<string>();
  const g1 = new DeviceAssignment("g1", (d) => serving1.has(d));
  const g2 = new DeviceAssignment("g2", (d) => serving2.has(d));
  g1.memberUp("g2", []);
  g2.memberUp("g1", []);
  for (const device of DEVICES) assert.notEqual(g1.owns(device), g2.owns(device), device);
  // Both claimed one device in a race: both agree on one of them.
  serving1.add("device_0");
  serving2.add("device_0");
  g1.memberUp("g2", ["device_0"]);
  g2.memberUp("g1", ["device_0"]);
  assert.notEqual(g1.owns("device_0"), g2.owns("device_0"));
});

Deno.test("a device stays with the gateway that holds it, and moves when that one dies", () => {
  const mine = new Set<string>();
  const g1 = new DeviceAssignment("g1", (d) => mine.has(d));
  // A device the hash would give g1 is held by g2: it stays with g2 while g2 lives.
  const device = DEVICES.find((d) => rendezvousWinner(["g1", "g2"], d) === "g1")!;
  g1.memberUp("g2", [device]);
  assert.equal(g1.owner(device), "g2");
  assert.equal(g1.memberDown("g2"), true);
  assert.equal(g1.owns(device), true);
  // The lease: a member not heard of expires; its own presence never counts as a member.
  g1.memberUp("g3", [device], 0);
  g1.memberUp("g1", [device], 0);
  assert.deepEqual(g1.peers, ["g3"]);
  assert.deepEqual(g1.expire(30_001), ["g3"]);
  assert.equal(g1.owns(device), true);
});
