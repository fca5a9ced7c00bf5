import assert from "node:assert/strict";
import { CameraPipeline, type MotionFrame } from "./camera_pipeline.ts";
import { loadVideoConfig } from "./video_config.ts";
import { Vp8Packetizer } from "../../shared/video/vp8_packetizer.ts";
import type { RtpVideoPacket } from "../../shared/video/vp8_payload.ts";
import { encodeVp8, ivfFrames, testPhoto } from "./testing.ts";

const SCENE = await testPhoto("coffee.png");
const PERSON = await testPhoto("astronaut.png");
/** 5 fps: 200 ms and 18 000 RTP ticks per frame. */
const FRAME_MS = 200;
const TICKS = 18_000;

/** 10 frames of a still scene, then 10 with a person at (400, 220, 200×200), 5 fps. */
const WALK_IN = ivfFrames(
  await encodeVp8({
    inputs: [
      "-loop",
      "1",
      "-framerate",
      "5",
      "-i",
      SCENE,
      "-loop",
      "1",
      "-framerate",
      "5",
      "-i",
      PERSON,
    ],
    filter: "[0:v]scale=640:480[b];[1:v]scale=200:200[p];" +
      "[b][p]overlay=x=400:y=220:enable='gte(n,10)'[out]",
    frames: 20,
  }),
);

function rtp(frames: Uint8Array[]): RtpVideoPacket[][] {
  const packetizer = new Vp8Packetizer({ initialSequence: 100 });
  return frames.map((frame, i) => packetizer.packetize(frame, i * TICKS));
}

function camera(env: Record<string, string> = {}) {
  let now = 1_000_000;
  const motion: MotionFrame[] = [];
  const requests: string[] = [];
  const logs: string[] = [];
  const pipeline = new CameraPipeline(loadVideoConfig(env), {
    onKeyframeRequest: (reason) => requests.push(reason),
    onMotionFrame: (frame) => motion.push(frame),
    onLog: (message) => logs.push(message),
  }, { now: () => now });
  const feed = (frames: RtpVideoPacket[][]) => {
    for (const packets of frames) {
      for (const packet of packets) pipeline.push(packet);
      now += FRAME_MS;
    }
  };
  return { pipeline, motion, requests, logs, feed, advance: (ms: number) => now += ms };
}

Deno.test("a still scene forwards nothing; a person walking in is forwarded at ≤ 2 fps with a box", () => {
  const { pipeline, motion, requests, feed } = camera();
  try {
    feed(rtp(WALK_IN));
    assert.deepEqual(requests, []);
    assert.equal(pipeline.stats.framesDecoded, 20);
    assert.equal(pipeline.stats.framesAnalyzed, 20);
    // Frames 10..19 have motion (the background adapts slowly): 2 s at 2 fps → frames 10, 13,
    // 16, 19 (5 fps, one in 2.5).
    assert.deepEqual(motion.map((m) => m.rtpTimestamp / TICKS), [10, 13, 16, 19]);
    const first = motion[0];
    assert.deepEqual([first.width, first.height, first.i420.length], [640, 480, 640 * 480 * 1.5]);
    assert.ok(Math.abs(first.box.x - 400) <= 12 && Math.abs(first.box.y - 220) <= 12);
    assert.ok(first.changedFraction > 0.05);
  } finally {
    pipeline.close();
  }
});

Deno.test("motion at 5 fps of a 15 fps stream decodes all reference frames, analyses about a third, and the person's first frame at once", () => {
  const { pipeline, feed, motion } = camera({ VIDEO_MOTION_FPS: "5" });
  try {
    const packetizer = new Vp8Packetizer();
    feed(WALK_IN.map((frame, i) => packetizer.packetize(frame, i * 6000)));
    assert.equal(pipeline.stats.framesDecoded, 20);
    // Due every third frame (0, 3, 6, 9, 12, ...): frame 10, the first with the person, is not;
    // its size spike gets it analysed and forwarded anyway, not 2 frames (133 ms) later.
    assert.equal(motion[0].rtpTimestamp / 6000, 10);
    // Early analyses are few: a third of the frames plus a couple of spikes, not every frame.
    assert.ok(
      pipeline.stats.framesAnalyzed >= 7 && pipeline.stats.framesAnalyzed <= 9,
      `${pipeline.stats.framesAnalyzed} frames analysed`,
    );
  } finally {
    pipeline.close();
  }
});

Deno.test("a lost packet asks for a keyframe once and logs it; the next keyframe resumes", async () => {
  const frames = ivfFrames(
    await encodeVp8({
      inputs: ["-f", "lavfi", "-i", "testsrc=size=640x480"],
      frames: 12,
      keyframeInterval: 6,
    }),
  );
  const { pipeline, requests, logs, feed } = camera();
  try {
    const packets = rtp(frames);
    packets[2].shift();
    feed(packets);
    assert.equal(requests.length, 1);
    assert.match(requests[0], /an RTP packet was lost/);
    assert.deepEqual(logs.filter((l) => l.startsWith("decoding")), [
      "decoding 640x480",
      "decoding 640x480",
    ]);
    assert.equal(pipeline.stats.framesDecoded, 2 + 6); // 0, 1, then 6..11
  } finally {
    pipeline.close();
  }
});

Deno.test("a live grab returns the latest picture at once, or waits for a keyframe", async () => {
  const { pipeline, requests, feed, advance } = camera();
  try {
    const packetizer = new Vp8Packetizer();
    const send = (frame: Uint8Array, i: number) => feed([packetizer.packetize(frame, i * TICKS)]);
    WALK_IN.slice(0, 3).forEach(send);
    const frame = await pipeline.grab();
    assert.deepEqual([frame.width, frame.height, frame.rtpTimestamp], [640, 480, 2 * TICKS]);
    advance(5000); // stale now: the grab waits for the next decoded frame
    const pending = pipeline.grab(1000);
    send(WALK_IN[3], 3);
    assert.equal((await pending).rtpTimestamp, 3 * TICKS);
    assert.deepEqual(requests, []);
  } finally {
    pipeline.close();
  }
});

Deno.test("a grab from a camera that sends nothing fails after its timeout with a clear error", async () => {
  const { pipeline, requests } = camera();
  try {
    await assert.rejects(pipeline.grab(50), /no decodable video frame within 50 ms/);
    assert.deepEqual(requests, ["a live frame is wanted"]);
  } finally {
    pipeline.close();
  }
});

Deno.test("a stream over the size cap is refused with one log line, then a fitting one decodes", async () => {
  const huge = ivfFrames(
    await encodeVp8({ inputs: ["-f", "lavfi", "-i", "testsrc=size=1280x720"], frames: 3 }),
  );
  const { pipeline, logs, feed } = camera({ VIDEO_MAX_WIDTH: "960", VIDEO_MAX_HEIGHT: "540" });
  try {
    const packetizer = new Vp8Packetizer();
    feed([...huge, ...WALK_IN.slice(0, 2)].map((f, i) => packetizer.packetize(f, i * TICKS)));
    const refusals = logs.filter((l) => l.includes("over the 960x540 cap"));
    assert.ok(refusals.length >= 1 && refusals.length <= 2, logs.join("\n"));
    assert.match(refusals[0], /VP8 keyframe is 1280x720, over the 960x540 cap/);
    assert.equal(pipeline.stats.framesDecoded, 2);
    assert.equal(logs.at(-1), "decoding 640x480");
  } finally {
    pipeline.close();
  }
});

Deno.test("corrupt VP8 and garbage packets never throw; the stream recovers at a keyframe", async () => {
  const frames = ivfFrames(
    await encodeVp8({
      inputs: ["-f", "lavfi", "-i", "testsrc=size=640x480"],
      frames: 8,
      keyframeInterval: 4,
    }),
  );
  frames[1] = frames[1].map((b, i) => (i > 3 ? b ^ 0x5a : b));
  const { pipeline, requests, feed } = camera();
  try {
    const packets = rtp(frames);
    packets[2].push({
      sequenceNumber: 60_000,
      timestamp: 1,
      marker: true,
      payload: new Uint8Array(),
    });
    feed(packets);
    assert.ok(pipeline.stats.decodeErrors >= 1);
    assert.ok(requests.length >= 1);
    assert.equal(pipeline.stats.framesDecoded, 1 + 4); // 0, then 4..7
  } finally {
    pipeline.close();
  }
});

Deno.test("a camera that stops sending is logged once; frames coming back are logged again", () => {
  const { pipeline, logs, feed, advance } = camera();
  try {
    const packetizer = new Vp8Packetizer();
    const send = (i: number) => feed([packetizer.packetize(WALK_IN[i], i * TICKS)]);
    send(0);
    advance(4000);
    pipeline.tick();
    assert.ok(!logs.some((l) => l.includes("stopped")));
    advance(2000);
    pipeline.tick();
    pipeline.tick();
    assert.deepEqual(logs.filter((l) => l.includes("stopped")), [
      "no video frames for 5 s: the camera stopped sending",
    ]);
    send(1);
    assert.equal(logs.at(-1), "decoding 640x480");
  } finally {
    pipeline.close();
  }
});
