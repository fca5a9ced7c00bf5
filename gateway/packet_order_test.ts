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
