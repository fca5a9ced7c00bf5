import assert from "node:assert/strict";
import { PacketOrder, sequenceDistance } from "./packet_order.ts";

function run(sequence: number[], window = 3): (number | null)[] {
  const out: (number | null)[] = [];
  const order = new PacketOrder((payload) => out.push(payload ? payload[0] : null), { window });
  for (const seq of sequence) order.push(seq, new Uint8Array([seq % 256]));
  return out;
}

Deno.test("in-order packets pass straight through", () => {
  assert.deepEqual(run([1, 2, 3, 4]), [1, 2, 3, 4]);
});

Deno.test("a swapped pair is put back in order", () => {
  assert.deepEqual(run([1, 3, 2, 4]), [1, 2, 3, 4]);
});

Deno.test("duplicates and late packets are dropped", () => {
  assert.deepEqual(run([1, 2, 2, 3, 1, 4]), [1, 2, 3, 4]);
  const order = new PacketOrder(() => {});
  for (const s of [1, 3, 3, 2]) order.push(s, new Uint8Array(1));
  assert.equal(order.stats.duplicates, 1);
});

Deno.test("a gap that does not fill within the window is reported lost", () => {
  assert.deepEqual(run([1, 3, 4, 5, 6]), [1, null, 3, 4, 5, 6]);
  const order = new PacketOrder(() => {});
  for (const s of [1, 3, 4, 5]) order.push(s, new Uint8Array(1));
  assert.equal(order.stats.lost, 1);
});

Deno.test("after a burst of losses, packets flow again once the window is full", () => {
  assert.deepEqual(run([1, 6, 7, 8]), [1, null, null, null, null, 6, 7, 8]);
});

Deno.test("window 0 never holds a packet", () => {
  assert.deepEqual(run([1, 3, 2, 4], 0), [1, null, 3, 4]);
});

Deno.test("sequence numbers wrap at 65536", () => {
  assert.equal(sequenceDistance(65535, 0), 1);
  assert.equal(sequenceDistance(0, 65535), -1);
  assert.deepEqual(run([65534, 65535, 0, 1]).length, 4);
  assert.deepEqual(run([65535, 1, 0]), [255, 0, 1]);
});

Deno.test("a sender restart (huge jump) resynchronizes instead of inventing losses", () => {
  assert.deepEqual(run([10, 11, 30000, 30001]), [10, 11, 30000 % 256, 30001 % 256]);
});

Deno.test("a window widened while running holds a packet three frames late", () => {
  const out: (number | null)[] = [];
  const order = new PacketOrder((p) => out.push(p ? p[0] : null), { window: 2, maxWindow: 10 });
  order.push(1, new Uint8Array([1]));
  order.window = 4;
  for (const seq of [3, 4, 5, 2, 6]) order.push(seq, new Uint8Array([seq]));
  assert.deepEqual(out, [1, 2, 3, 4, 5, 6]);
  assert.equal(order.stats.lost, 0);
});

Deno.test("shrinking the window declares the held gap lost and emits what waited", () => {
  const out: (number | null)[] = [];
  const order = new PacketOrder((p) => out.push(p ? p[0] : null), { window: 5, maxWindow: 5 });
  for (const seq of [1, 3, 4, 5]) order.push(seq, new Uint8Array([seq]));
  assert.deepEqual(out, [1]);
  order.window = 1;
  assert.deepEqual(out, [1, null, 3, 4, 5]);
  assert.equal(order.window, 1);
  order.window = 99;
  assert.equal(order.window, 5, "clamped to maxWindow");
  assert.throws(() => new PacketOrder(() => {}, { window: 3, maxWindow: 2 }), /maxWindow 2/);
});
