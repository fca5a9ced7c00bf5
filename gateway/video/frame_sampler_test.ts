import assert from "node:assert/strict";
import {
  FrameSampler,
  type FrameSamplerOptions,
  MIN_SPIKE_BYTES,
  type SampledFrame,
} from "./frame_sampler.ts";

/** 90 kHz ticks per frame at 15 fps. */
const TICKS_15FPS = 6000;

function setup(options: Partial<FrameSamplerOptions> = {}) {
  const requests: string[] = [];
  const sampler = new FrameSampler({ onKeyframeRequest: (r) => requests.push(r), ...options });
  return { sampler, requests };
}

/** Frame i of a 15 fps stream whose frame 0 is a keyframe. */
function frame(i: number, extra: Partial<SampledFrame> = {}): SampledFrame {
  return { timestamp: i * TICKS_15FPS, keyframe: i === 0, nonReference: false, ...extra };
}

Deno.test("motion runs at 5 fps of a 15 fps stream; every reference frame is decoded", () => {
  const { sampler } = setup();
  const plans = Array.from({ length: 15 }, (_, i) => sampler.plan(frame(i)));
  assert.deepEqual(
    plans.flatMap((p, i) => p.analyze ? [i] : []),
    [0, 3, 6, 9, 12],
  );
  assert.ok(plans.every((p) => p.decode));
});

Deno.test("frames nothing references are not decoded unless motion wants them", () => {
  const { sampler } = setup();
  const plans = Array.from(
    { length: 9 },
    (_, i) => sampler.plan(frame(i, { nonReference: i % 2 === 1, temporalLayer: i % 2 })),
  );
  // Analysed: 0, 3, 6 (3 is a non-reference frame: decoded for motion). Skipped: 1, 5, 7.
  assert.deepEqual(plans.map((p) => p.decode), [1, 0, 1, 1, 1, 0, 1, 0, 1].map(Boolean));
});

Deno.test("frameSkip analyses one frame in frameSkip + 1, within the fps cap", () => {
  const { sampler } = setup({ frameSkip: 4, motionFps: 15 });
  const analysed = Array.from({ length: 12 }, (_, i) => sampler.plan(frame(i)).analyze);
  assert.deepEqual(analysed.flatMap((a, i) => a ? [i] : []), [0, 5, 10]);
});

Deno.test("capture-timestamp jitter of a few ms does not halve the motion rate", () => {
  const { sampler } = setup();
  const jitter = [0, 90, -90, 45, -45, 0];
  const analysed = Array.from(
    { length: 18 },
    (_, i) => sampler.plan(frame(i, { timestamp: i * TICKS_15FPS + jitter[i % 6] * 2 })).analyze,
  ).filter(Boolean).length;
  assert.equal(analysed, 6);
});

Deno.test("an inter frame whose size jumps is analysed at once, not at the next due frame", () => {
  const { sampler } = setup();
  const sizes = [60_000, 100, 100, 100, 30_000, 100, 100, 100, 100, 100, 100, 100, 100];
  const analysed = sizes.map((bytes, i) =>
    sampler.plan(frame(i, { data: { byteLength: bytes } })).analyze
  );
  // Due: 0, 3, then every third frame after the last analysed one (4 → 7 → 10).
  assert.deepEqual(analysed.flatMap((a, i) => a ? [i] : []), [0, 3, 4, 7, 10]);
});

Deno.test("keyframes, small frames and spikes under half an interval apart are not early", () => {
  const { sampler } = setup();
  const sizes: Record<number, number> = {
    0: 60_000, // a keyframe: large by nature
    2: MIN_SPIKE_BYTES - 100, // 19× the average, but too small to be motion
    4: 30_000,
    5: 400_000, // a spike 67 ms after the last early one
    8: 400_000,
    9: 400_000, // a keyframe (after a PLI): not a spike
  };
  const analysed = Array.from(
    { length: 15 },
    (_, i) =>
      sampler.plan(
        frame(i, { keyframe: i === 0 || i === 9, data: { byteLength: sizes[i] ?? 100 } }),
      )
        .analyze,
  );
  assert.deepEqual(analysed.flatMap((a, i) => a ? [i] : []), [0, 3, 4, 7, 8, 11, 14]);
});

Deno.test("while motion lasts, at most forwardFps frames go to the server; none when still", () => {
  const { sampler } = setup({ forwardFps: 2 });
  // 5 analysed frames per second for 2 s, RTP timestamps 200 ms apart.
  const forwarded = Array.from({ length: 10 }, (_, i) => sampler.motion(true, i * 18_000));
  assert.deepEqual(forwarded.flatMap((f, i) => f ? [i] : []), [0, 3, 6, 9]);
  assert.equal(sampler.motion(false, 11 * 18_000), false);
  assert.equal(sampler.motion(true, 12 * 18_000), true);
});

Deno.test("new motion while motion lasts is forwarded at once, at most once per forward interval", () => {
  const { sampler } = setup({ forwardFps: 2 });
  // Analysed at 5 fps (18 000 ticks apart), fresh change per frame: lasting motion with little
  // fresh change (a ghost), then a person walks in and keeps moving.
  const fresh = [0, 0.01, 0.3, 0.2, 0.2, 0.2, 0.01, 0.02, 0.3];
  const forwarded = fresh.map((f, i) => sampler.motion(true, i * 18_000, f));
  // 0: first; 2: new (early); 5: due again (3 frames after 2); 8: due.
  assert.deepEqual(forwarded, [true, false, true, false, false, true, false, false, true]);
});

Deno.test("motion that keeps moving, or moves a little, keeps the forward rate", () => {
  const { sampler } = setup({ forwardFps: 2 });
  // Fresh change that lasts is not an onset; a small one (under NEW_MOTION_FRACTION) is none;
  // two onsets within a forward interval forward only the first early.
  const fresh = [0.2, 0.3, 0.2, 0.2, 0.04, 0.3, 0.01, 0.3, 0.01, 0.3];
  const forwarded = fresh.map((f, i) => sampler.motion(true, i * 18_000, f));
  // 0 first, 3 and 6 due; 5 follows 0.04 (not calm); 7 is an onset (early); 9 another within
  // a forward interval of 7.
  assert.deepEqual(forwarded, [true, false, false, true, false, false, true, true, false, false]);
});

Deno.test("RTP timestamp wrap-around keeps the rates", () => {
  const { sampler } = setup();
  const start = 2 ** 32 - 2 * TICKS_15FPS;
  const analysed = Array.from(
    { length: 6 },
    (_, i) => sampler.plan(frame(i, { timestamp: (start + i * TICKS_15FPS) % 2 ** 32 })).analyze,
  );
  assert.deepEqual(analysed.flatMap((a, i) => a ? [i] : []), [0, 3]);
});

Deno.test("a stream that never sends a keyframe gets requests with backoff, nothing decoded", () => {
  const { sampler, requests } = setup({ keyframeRetryMs: 1000, maxKeyframeRetryMs: 4000 });
  const times: number[] = [];
  for (let now = 0; now <= 20_000; now += 100) {
    const before = requests.length;
    sampler.tick(now);
    if (requests.length > before) times.push(now);
    assert.equal(sampler.plan(frame(5)).decode, false);
  }
  // A second of grace, then waits of 1, 2, 4, 4, 4 s.
  assert.deepEqual(times, [1000, 2000, 4000, 8000, 12000, 16000, 20000]);
  assert.match(requests[1], /has not sent a keyframe yet \(still no keyframe, retrying\)/);
  // The keyframe ends the requests.
  assert.equal(sampler.plan(frame(0)).decode, true);
  sampler.tick(60_000);
  assert.equal(requests.length, times.length);
});

Deno.test("a loss requests a keyframe once, retries if unanswered, and the keyframe resumes", () => {
  const { sampler, requests } = setup();
  sampler.plan(frame(0));
  sampler.plan(frame(1));
  sampler.keyframeNeeded("an RTP packet was lost", 5000);
  sampler.keyframeNeeded("an inter frame arrived while no keyframe is decodable", 5100);
  assert.deepEqual(requests, ["an RTP packet was lost"]);
  assert.equal(sampler.plan(frame(2)).decode, false);
  sampler.tick(5900);
  assert.equal(requests.length, 1);
  sampler.tick(6000);
  assert.equal(requests.length, 2);
  assert.equal(sampler.plan({ ...frame(3), keyframe: true }).decode, true);
  assert.equal(sampler.awaitingKeyframe, false);
});

Deno.test("a wanted live frame is captured from the next decodable frame, asking for a keyframe if needed", () => {
  const { sampler, requests } = setup();
  sampler.wantFrame(0);
  assert.deepEqual(requests, ["a live frame is wanted"]);
  assert.equal(sampler.plan(frame(0)).capture, true);
  assert.deepEqual(sampler.plan(frame(1, { nonReference: true })), {
    decode: true,
    analyze: false,
    capture: true,
  });
  sampler.captured();
  assert.equal(sampler.plan(frame(2)).capture, false);
  sampler.wantFrame(1000);
  assert.equal(requests.length, 1); // decodable: no keyframe needed
});

Deno.test("bad rates are RangeErrors naming the value", () => {
  assert.throws(() => setup({ motionFps: 0 }), /motionFps 0/);
  assert.throws(() => setup({ forwardFps: 120 }), /forwardFps 120/);
  assert.throws(() => setup({ frameSkip: -1 }), /frameSkip -1/);
});
