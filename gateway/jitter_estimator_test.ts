import assert from "node:assert/strict";
import {
  InterarrivalJitter,
  MAX_DEPTH_MS,
  MediaClock,
  mediaDistanceMs,
  MIN_DEPTH_MS,
  PlayoutDepth,
  timestampDelta,
} from "./jitter_estimator.ts";

/** One packet of a synthetic stream: sequence, RTP timestamp (48 kHz), arrival ms. */
interface Packet {
  seq: number;
  ts: number;
  at: number;
}

const TS_PER_FRAME = 960;

/** `count` packets sent every 20 ms from `seq0`/`ts0`, arriving `transit(i)` ms after sending. */
function stream(count: number, transit: (i: number) => number, seq0 = 100, ts0 = 5000): Packet[] {
  const packets: Packet[] = [];
  for (let i = 0; i < count; i++) {
    packets.push({
      seq: (seq0 + i) % 0x10000,
      ts: (ts0 + i * TS_PER_FRAME) % 0x1_0000_0000,
      at: 1000 + i * 20 + transit(i),
    });
  }
  return packets.sort((a, b) => a.at - b.at);
}

function feed(packets: Packet[]) {
  const jitter = new InterarrivalJitter();
  const depth = new PlayoutDepth();
  const clock = new MediaClock();
  const steps = packets.map((p) => {
    const j = jitter.update(p.ts, p.at);
    const frames = depth.observe(p.seq, p.at, j);
    return { ...clock.observe(p.ts, p.at), jitter: j, frames, depthMs: depth.depthMs };
  });
  return { jitter, depth, clock, steps };
}

Deno.test("timestamp deltas wrap", () => {
  assert.equal(timestampDelta(0xffff_ff00, 0x100), 0x200);
  assert.equal(mediaDistanceMs(0xffff_fc40, 0x3c0), 40); // 960 + 960 units across the wrap
  assert.throws(() => mediaDistanceMs(0, 1, 0), /clock rate 0 Hz/);
});

Deno.test("a steady stream has ~0 jitter and the minimum depth", () => {
  const { jitter, depth, steps } = feed(stream(200, () => 5));
  assert.ok(jitter.jitterMs < 0.01, `jitter ${jitter.jitterMs}`);
  assert.equal(depth.depthMs, MIN_DEPTH_MS);
  assert.equal(depth.frames, 1);
  assert.ok(steps.every((s) => s.mediaGapMs === 0 && s.lateMs === 0));
});

Deno.test("RFC 3550 jitter follows a constant ±d alternation towards its mean deviation", () => {
  // Transit alternates 0 / 10 ms: |D| is 10 on every packet, so J converges to 10 ms.
  const { jitter } = feed(stream(400, (i) => (i % 2) * 10));
  assert.ok(Math.abs(jitter.jitterMs - 10) < 0.1, `jitter ${jitter.jitterMs}`);
});

Deno.test("a 400 ms stall then a burst: no media gap, the arrival gap shows the stall", () => {
  // Packets 50..69 are held until the stall ends at packet 70's send time, then all arrive.
  const stallEnd = 1000 + 70 * 20;
  // Packets sent after the stall queue behind the burst (3 ms).
  const packets = stream(
    150,
    (i) => (i < 50 ? 0 : i < 70 ? stallEnd - (1000 + i * 20) + (i - 50) * 0.1 : 3),
  );
  const clock = new MediaClock();
  let worstBehind = 0;
  let maxGap = 0;
  let maxArrivalGap = 0;
  let last = packets[0].at;
  for (const p of packets) {
    // Ask the clock how overdue the stream is on the arrival clock just before each packet.
    for (let t = last; t < p.at; t += 5) worstBehind = Math.max(worstBehind, clock.behindMs(t));
    last = p.at;
    const step = clock.observe(p.ts, p.at);
    maxGap = Math.max(maxGap, step.mediaGapMs);
    maxArrivalGap = Math.max(maxArrivalGap, step.arrivalGapMs);
  }
  assert.equal(maxGap, 0, "the media clock has no gap: nothing was lost, nothing was silent");
  assert.ok(maxArrivalGap >= 400, `arrival gap ${maxArrivalGap}`);
  assert.ok(worstBehind >= 370 && worstBehind <= 400, `behind ${worstBehind}`);
  assert.equal(clock.behindMs(packets.at(-1)!.at), 0, "caught up after the burst");
  // On the arrival clock the burst's frames are 20 ms apart again, as they were captured.
  const times = packets.slice(45, 75).map((p) =>
    clock.arrivalClockMs(mediaDistanceMs(5000, p.ts))!
  );
  assert.deepEqual(times.slice(1).map((t, i) => t - times[i]), new Array(29).fill(20));
  // The jitter estimate spikes, and the depth stays bounded.
  const { steps, depth } = feed(packets);
  assert.ok(Math.max(...steps.map((s) => s.jitter)) > 15);
  assert.ok(depth.depthMs <= MAX_DEPTH_MS);
});

Deno.test("DTX or lost packets leave a gap on the media clock", () => {
  const clock = new MediaClock();
  clock.observe(1000, 0);
  clock.observe(1000 + 960, 20);
  // 10 frames never sent (DTX): the next packet's timestamp jumps 11 frames.
  const step = clock.observe(1000 + 12 * 960, 240);
  assert.equal(step.mediaGapMs, 200);
  assert.equal(step.lateMs, 0);
});

Deno.test("reordering by 60 ms grows the depth at once to cover it, then it shrinks slowly", () => {
  // Every 50th packet arrives 60 ms after the packet sent after it (80 ms late).
  const packets = stream(500, (i) => (i % 50 === 10 ? 80 : 0));
  const { depth, steps } = feed(packets);
  assert.ok(depth.reorderings >= 9, `${depth.reorderings} reorderings`);
  // After the first reordering the window holds at least three frames.
  const firstLate = steps.findIndex((s) => s.frames >= 3);
  assert.ok(firstLate >= 0 && firstLate < 20, `first ≥3-frame depth at packet ${firstLate}`);
  assert.ok(steps.slice(firstLate).every((s) => s.frames >= 3), "kept while reordering goes on");
  // Then a clean stream: ~2 s after the last reordering still deep, after 12 s shallower.
  const d = new PlayoutDepth();
  const j = new InterarrivalJitter();
  for (const p of packets) d.observe(p.seq, p.at, j.update(p.ts, p.at));
  const deep = d.depthMs;
  // The same stream continues cleanly (sequence, timestamp and arrival all resume together).
  const clean = stream(600, () => 0, 600, 5000 + 500 * TS_PER_FRAME).map((p) => ({
    ...p,
    at: p.at + 500 * 20,
  }));
  for (const p of clean.slice(0, 50)) d.observe(p.seq, p.at, j.update(p.ts, p.at));
  assert.ok(d.depthMs >= deep - 20 && d.depthMs >= 40, `after 1 s ${d.depthMs}`);
  for (const p of clean.slice(50)) d.observe(p.seq, p.at, j.update(p.ts, p.at));
  assert.ok(d.depthMs < deep, `after 12 s ${d.depthMs}`);
});

Deno.test("the depth is bounded above by maxMs", () => {
  const d = new PlayoutDepth({ maxMs: 100 });
  d.observe(10, 0);
  d.observe(20, 10);
  d.observe(11, 500); // 490 ms late behind its successors
  assert.equal(d.depthMs, 100);
  assert.equal(d.frames, 5);
});

Deno.test("bad options are named", () => {
  assert.throws(() => new PlayoutDepth({ minMs: 50, maxMs: 20 }), /minMs 50, maxMs 20/);
  assert.throws(() => new InterarrivalJitter(-1), /clock rate -1 Hz/);
  assert.throws(() => new MediaClock({ frameMs: 0 }), /frameMs 0/);
});

Deno.test("sequence and timestamp wrap inside a stream change nothing", () => {
  const steady = feed(stream(200, () => 5, 65_450, 0xffff_ffff - 50 * TS_PER_FRAME));
  assert.equal(steady.depth.reorderings, 0);
  assert.equal(steady.depth.frames, 1);
  assert.ok(steady.steps.every((s, i) => s.mediaGapMs === 0 && s.mediaMs === i * 20));
  const swapped = stream(100, (i) => (i === 90 ? 80 : 0), 65_450);
  const { depth } = feed(swapped);
  assert.equal(depth.reorderings, 1);
  assert.ok(depth.frames >= 3, `${depth.frames} frames`);
});

Deno.test("a sender clock 200 ppm slow for an hour never looks overdue", () => {
  const clock = new MediaClock();
  let worst = 0;
  const packets = 3600 * 50;
  for (let i = 0; i < packets; i++) {
    // Each 20 ms frame takes 20.004 ms of our time to arrive (the sender's clock is slow).
    const at = 1000 + i * 20 * 1.0002;
    clock.observe((5000 + i * 960) >>> 0, at);
    worst = Math.max(worst, clock.behindMs(at + 20));
  }
  assert.ok(worst < 25, `behind at most ${worst.toFixed(1)} ms one frame after a packet`);
  // A 400 ms stall still shows almost in full.
  const last = 1000 + (packets - 1) * 20 * 1.0002;
  assert.ok(clock.behindMs(last + 420) > 380, `${clock.behindMs(last + 420)}`);
});
