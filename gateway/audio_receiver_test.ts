import assert from "node:assert/strict";
import {
  AudioReceiver,
  DEFAULT_STALL_HOLD_MS,
  FRAME_MS,
  type ReceiverSink,
} from "./audio_receiver.ts";

/** 20 ms of Opus's 48 kHz RTP clock. */
const TS_PER_FRAME = 960;

/** What the receiver handed on: payload ids (first byte + 256 × second) or "lost"/"silence×n". */
class Sink implements ReceiverSink {
  inUtterance = true;
  items: string[] = [];
  times: number[] = [];
  silenceFrames = 0;
  push(payload: Uint8Array | null, at: number): void {
    this.items.push(payload === null ? "lost" : String(payload[0] + 256 * payload[1]));
    this.times.push(at);
  }
  pushSilence(frames: number, at: number): void {
    this.items.push(`silence×${frames}`);
    this.times.push(at);
    this.silenceFrames += frames;
  }
}

function payload(n: number): Uint8Array {
  return new Uint8Array([n % 256, Math.floor(n / 256)]);
}

/** A receiver on a fake clock; `send(n, at)` delivers packet n (sequence and timestamp by n). */
function setup(stallHoldMs = DEFAULT_STALL_HOLD_MS) {
  let now = 0;
  const sink = new Sink();
  const receiver = new AudioReceiver(sink, { stallHoldMs, now: () => now });
  const send = (n: number, at: number, timestampFrame = n) => {
    now = Math.max(now, at);
    receiver.receive(
      (1000 + n) % 65536,
      (5000 + timestampFrame * TS_PER_FRAME) >>> 0,
      payload(n),
      at,
    );
  };
  return {
    sink,
    receiver,
    send,
    setNow: (t: number) => (now = t),
    close: () => receiver.close(),
  };
}

Deno.test("a 400 ms stall then a burst of the held packets is not silence: all in order", () => {
  const t = setup();
  try {
    for (let n = 0; n < 50; n++) t.send(n, n * FRAME_MS + 5);
    // Packets 50..69 are held by the Wi-Fi for 400 ms, then arrive within 2 ms.
    const burstAt = 70 * FRAME_MS + 5;
    for (let step = 100; step < 400; step += 100) {
      t.setNow(50 * FRAME_MS + step);
      t.receiver.checkStall(50 * FRAME_MS + step);
    }
    for (let n = 50; n < 70; n++) t.send(n, burstAt + (n - 50) * 0.1);
    for (let n = 70; n < 100; n++) t.send(n, n * FRAME_MS + 5);
    assert.equal(t.sink.silenceFrames, 0, "no silence fed");
    assert.deepEqual(t.sink.items, Array.from({ length: 100 }, (_, n) => String(n)));
    // Capture times follow the media clock: the burst keeps its 20 ms spacing.
    for (let n = 1; n < 100; n++) {
      // (±0.5 ms: the best transit may creep up 1 ms per second of media, TRANSIT_CREEP.)
      const spacing = t.sink.times[n] - t.sink.times[n - 1];
      assert.ok(Math.abs(spacing - FRAME_MS) < 0.5, `frame ${n}: ${spacing} ms`);
    }
    assert.equal(t.receiver.stats.stalls, 0);
  } finally {
    t.close();
  }
});

Deno.test("a device overdue past the stall hold is heard as silent; its late packets are dropped", () => {
  const t = setup(1000);
  try {
    for (let n = 0; n < 10; n++) t.send(n, n * FRAME_MS);
    // Packet 9 arrived at 180 ms; due 200 ms. At 1100 ms it is 900 ms overdue: still held.
    t.receiver.checkStall(1100);
    assert.equal(t.sink.silenceFrames, 0);
    // At 1300 ms, 1100 ms overdue: silence up to where the media should be now.
    t.receiver.checkStall(1300);
    assert.equal(t.sink.silenceFrames, 55, "(1300 − 200) / 20 frames");
    assert.equal(t.receiver.stats.stalls, 1);
    // More silence as time goes on, never twice for the same media.
    t.receiver.checkStall(1400);
    assert.equal(t.sink.silenceFrames, 60);
    // The held packets come after all: their place is already silence.
    for (let n = 10; n < 20; n++) t.send(n, 1450 + n);
    assert.equal(t.receiver.stats.late, 10);
    assert.equal(t.sink.items.filter((i) => /^\d+$/.test(i)).length, 10, "only 0..9 played");
    // The stream goes on where the media clock is now: the packets that never came (20..69)
    // lie in the silence already fed, so nothing more is concealed for them.
    // (The stall raised the jitter estimate, so the window now waits longer for 61..69.)
    for (let n = 70; n < 90; n++) t.send(n, 1500 + n);
    const after = t.sink.items.slice(t.sink.items.indexOf("silence×5") + 1);
    assert.deepEqual(after.slice(0, 2), ["70", "71"], t.sink.items.slice(-10).join(" "));
  } finally {
    t.close();
  }
});

Deno.test("a timestamp jump with no missing sequence number (DTX) is silence of that length", () => {
  const t = setup();
  try {
    for (let n = 0; n < 5; n++) t.send(n, n * FRAME_MS);
    // Packet 5 follows packet 4 in sequence but 500 ms later on the media clock.
    t.send(5, 600, 29);
    assert.deepEqual(t.sink.items, ["0", "1", "2", "3", "4", "silence×24", "5"]);
    assert.ok(Math.abs(t.sink.times[5] - 100) < 1, "the silence starts where packet 4 ended");
    assert.ok(Math.abs(t.sink.times[6] - 580) < 1, "packet 5 at its media position");
    assert.equal(t.receiver.stats.silenceMs, 480);
  } finally {
    t.close();
  }
});

Deno.test("a packet that never arrives is concealed once the window gives up on it", () => {
  const t = setup();
  try {
    for (const n of [0, 1, 3, 4, 5, 6]) t.send(n, n * FRAME_MS);
    assert.deepEqual(t.sink.items, ["0", "1", "lost", "3", "4", "5", "6"]);
    assert.equal(t.receiver.stats.lost, 1);
    assert.ok(Math.abs(t.sink.times[2] - 40) < 1, "the loss has its own place on the media clock");
  } finally {
    t.close();
  }
});

Deno.test("a device that reorders by 60 ms loses only the first such packet, then nothing", () => {
  const t = setup();
  try {
    // Every 25th packet is delayed by 61 ms: it arrives after the three packets sent after it.
    const arrivals: [number, number][] = [];
    for (let n = 0; n < 500; n++) arrivals.push([n, n * FRAME_MS + (n % 25 === 10 ? 61 : 0)]);
    arrivals.sort((a, b) => a[1] - b[1]);
    for (const [n, at] of arrivals) t.send(n, at);
    const played = t.sink.items.filter((i) => /^\d+$/.test(i)).length;
    const stats = t.receiver.stats;
    assert.ok(stats.lost <= 1, `lost ${stats.lost} (only the first, before the depth adapted)`);
    assert.equal(played + stats.lost, 500, "every packet played or concealed, none twice");
    assert.ok(t.receiver.depthMs >= 40, `depth ${t.receiver.depthMs} ms covers the 41 ms wait`);
    assert.ok(stats.reordered >= 19, `reordered ${stats.reordered}`);
    // The items are in sequence order.
    const ids = t.sink.items.map((i) => (/^\d+$/.test(i) ? Number(i) : -1));
    for (let k = 1; k < ids.length; k++) {
      if (ids[k] >= 0 && ids[k - 1] >= 0) assert.ok(ids[k] > ids[k - 1], `order at ${k}`);
    }
  } finally {
    t.close();
  }
});

Deno.test("without an open utterance no stall is watched; a bad hold is refused", () => {
  const t = setup();
  try {
    t.sink.inUtterance = false;
    t.send(0, 0);
    t.receiver.checkStall(5000);
    // checkStall itself still measures; the timer is what only runs in an utterance.
    assert.ok(t.sink.silenceFrames > 0);
  } finally {
    t.close();
  }
  assert.throws(() => new AudioReceiver(new Sink(), { stallHoldMs: -1 }), /stallHoldMs -1/);
});

Deno.test("a sender that restarts its timestamps is followed, not taken as late forever", () => {
  const t = setup();
  try {
    for (let n = 0; n < 10; n++) t.send(n, n * FRAME_MS);
    // Same sequence numbers go on, but the timestamps jump 30 s back.
    for (let n = 10; n < 20; n++) t.send(n, n * FRAME_MS, n - 1500);
    assert.equal(t.receiver.stats.late, 0);
    assert.deepEqual(t.sink.items.slice(-3), ["17", "18", "19"]);
  } finally {
    t.close();
  }
});

Deno.test("a device that falls 1.5 s behind and stays there is heard again, not stalled for good", () => {
  const t = setup(1000);
  try {
    for (let n = 0; n < 50; n++) t.send(n, n * FRAME_MS);
    // The device's clock waits 1.5 s and goes on from there without sending its backlog (no
    // timestamp jump): every later packet arrives 1.5 s later than its media time says.
    const delayMs = 1500;
    let checkAt = 50 * FRAME_MS;
    for (let n = 50; n < 300; n++) {
      const at = n * FRAME_MS + delayMs;
      // The stall watch runs every 100 ms while the utterance is open.
      while (checkAt + 100 <= at) t.receiver.checkStall(checkAt += 100);
      t.send(n, at);
    }
    assert.equal(t.receiver.stats.stalls, 1, "one stall: the wait");
    // The packets whose place the stall's silence took are late; the rest is heard.
    const heard = t.sink.items.filter((i) => /^\d+$/.test(i)).map(Number);
    assert.ok(t.receiver.stats.late <= delayMs / FRAME_MS, `late ${t.receiver.stats.late}`);
    assert.deepEqual(heard.slice(-100), Array.from({ length: 100 }, (_, i) => 200 + i));
    assert.ok(t.sink.silenceFrames <= delayMs / FRAME_MS + 5, `silence ${t.sink.silenceFrames}`);
  } finally {
    t.close();
  }
});
