import assert from "node:assert/strict";
import { type CapacityLevel, capacitySummary, MIN_DELIVERED } from "./bench_gateway_capacity.ts";

function level(devices: number, ok: boolean): CapacityLevel {
  return {
    devices,
    ok,
    inbound_delivered: ok ? 1 : 0.9,
    outbound_delivered: 1,
    late_share: 0,
    max_late_ms: 0,
    stalls: 0,
    gateway_cpu_percent: 10,
    devices_process_cpu_percent: 10,
  };
}

Deno.test("capacitySummary: the capacity is the largest passing step below the first failing one", () => {
  const levels = [level(20, true), level(30, true), level(40, false), level(50, true)];
  const summary = capacitySummary(levels);
  assert.equal(summary.devices_ok, 30);
  assert.equal(summary.first_failing, 40);
  assert.equal(summary.criteria.min_delivered, MIN_DELIVERED);
  assert.equal(summary.levels, levels);
});

Deno.test("capacitySummary: no failing step, or no passing one", () => {
  assert.deepEqual(
    [capacitySummary([level(5, true), level(10, true)])].map((
      s,
    ) => [s.devices_ok, s.first_failing]),
    [[10, null]],
  );
  assert.deepEqual(
    [capacitySummary([level(5, false)])].map((s) => [s.devices_ok, s.first_failing]),
    [[0, 5]],
  );
});
