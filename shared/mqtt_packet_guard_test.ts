import assert from "node:assert/strict";
import { PacketGuard } from "./mqtt_packet_guard.ts";

function publish(topic: string, payloadBytes: number): Uint8Array {
  const t = new TextEncoder().encode(topic);
  let remaining = 2 + t.length + payloadBytes;
  const length: number[] = [];
  do {
    let byte = remaining % 128;
    remaining = Math.floor(remaining / 128);
    if (remaining > 0) byte |= 0x80;
    length.push(byte);
  } while (remaining > 0);
  const header = [0x30, ...length, t.length >> 8, t.length & 0xff, ...t];
  const packet = new Uint8Array(header.length + payloadBytes);
  packet.set(header);
  return packet;
}

const limit = (topic: string | undefined) => topic?.endsWith("/media") ? 10_000 : 100;

Deno.test("PacketGuard passes packets within their topic's limit, across chunk boundaries", () => {
  const guard = new PacketGuard(limit, 10_000);
  const stream = new Uint8Array([
    ...publish("a/control", 50),
    ...publish("a/media", 5000),
    ...publish("a/control", 10),
  ]);
  // One byte at a time: headers and topics split anywhere.
  for (const byte of stream) assert.equal(guard.feed(new Uint8Array([byte])), undefined);
});

Deno.test("PacketGuard refuses an oversized packet from its header, naming size and topic", () => {
  const guard = new PacketGuard(limit, 10_000);
  assert.equal(guard.feed(publish("a/control", 20)), undefined);
  const big = publish("a/control", 500).subarray(0, 14); // only the header has arrived
  assert.deepEqual(guard.feed(big), { bytes: 514, type: 3, topic: "a/control", limit: 100 });
});

Deno.test("PacketGuard refuses a publish over the largest limit before its topic arrives", () => {
  const guard = new PacketGuard(limit, 10_000);
  // A PUBLISH announcing 100 MiB (remaining length 0x80 0x80 0x80 0x32), its bytes one by one.
  assert.equal(guard.feed(new Uint8Array([0x30, 0x80, 0x80, 0x80])), undefined);
  assert.deepEqual(guard.feed(new Uint8Array([0x32])), {
    bytes: 1 + 4 + 100 * 1024 * 1024,
    type: 3,
    limit: 10_000,
  });
});

Deno.test("PacketGuard limits non-PUBLISH packets to the control limit; rejects bad lengths", () => {
  // SUBSCRIBE (type 8) of 200 bytes.
  assert.deepEqual(new PacketGuard(limit).feed(new Uint8Array([0x82, 0xc8, 0x01])), {
    bytes: 203,
    type: 8,
    limit: 100,
  });
  assert.deepEqual(new PacketGuard(limit).feed(new Uint8Array([0x30, 0xff, 0xff, 0xff, 0xff])), {
    malformed: "remaining length over 4 bytes",
  });
});
