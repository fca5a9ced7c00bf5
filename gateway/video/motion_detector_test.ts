import assert from "node:assert/strict";
import { MotionDetector, type MotionResult } from "./motion_detector.ts";
import { encodeVp8, testPhoto, type Thumbnail, thumbnails } from "./testing.ts";

const SCENE = await testPhoto("coffee.png");
const PERSON = await testPhoto("astronaut.png");

/** Real VP8 frames of the scene at 640×480 through `filter` (ffmpeg filter graph tail). */
async function scene(options: { filter?: string; bitrate?: string; frames?: number } = {}) {
  return thumbnails(
    await encodeVp8({
      inputs: ["-loop", "1", "-i", SCENE],
      filter: `[0:v]scale=640:480${options.filter ?? ""}[out]`,
      frames: options.frames ?? 3,
      bitrate: options.bitrate,
    }),
  );
}

/** The scene with the person photo pasted at x, y, scaled to width × height. */
async function pasted(box: { x: number; y: number; width: number; height: number }) {
  return thumbnails(
    await encodeVp8({
      inputs: ["-loop", "1", "-i", SCENE, "-loop", "1", "-i", PERSON],
      filter: `[0:v]scale=640:480[b];[1:v]scale=${box.width}:${box.height}[p];` +
        `[b][p]overlay=x=${box.x}:y=${box.y}[out]`,
      frames: 3,
    }),
  );
}

const BACKGROUND = await scene();

/** Starts a detector on the background frames, then returns its results for `frames`. */
function detectAfterBackground(frames: Thumbnail[], detector = new MotionDetector()) {
  for (const t of BACKGROUND) detector.detect(t.image, t.frame);
  return frames.map((t) => detector.detect(t.image, t.frame));
}

function assertStill(results: MotionResult[], what: string) {
  for (const r of results) {
    assert.equal(r.motion, false, `${what}: ${(r.changedFraction * 100).toFixed(2)} % changed`);
    assert.ok(r.changedFraction < 0.001, `${what}: ${r.changedFraction}`);
  }
}

Deno.test("the first frame starts the background: no motion", () => {
  const first = new MotionDetector().detect(BACKGROUND[0].image, BACKGROUND[0].frame);
  assert.deepEqual(first, { motion: false, changedFraction: 0, freshFraction: 0, reset: true });
});

Deno.test("the same photo re-encoded at another bitrate is not motion", async () => {
  assertStill(detectAfterBackground(await scene({ bitrate: "120k" })), "re-encoded");
});

Deno.test("8 % brighter or darker lighting is not motion", async () => {
  assertStill(detectAfterBackground(await scene({ filter: ",lutyuv=y=val*1.08" })), "brighter");
  assertStill(detectAfterBackground(await scene({ filter: ",lutyuv=y=val*0.92" })), "darker");
});

Deno.test("camera sensor noise (ffmpeg temporal noise, strength 12) is not motion", async () => {
  assertStill(detectAfterBackground(await scene({ filter: ",noise=alls=12:allf=t" })), "noise");
});

Deno.test("a person pasted over the scene is motion, boxed in original-frame pixels", async () => {
  const where = { x: 400, y: 220, width: 200, height: 200 };
  const results = detectAfterBackground(await pasted(where));
  for (const r of results) {
    assert.equal(r.motion, true);
    // 200×200 of 640×480 is 13 %; the person photo's edges match the scene in places.
    assert.ok(r.changedFraction > 0.08 && r.changedFraction < 0.14, `${r.changedFraction}`);
    const box = r.box!;
    // Within a thumbnail pixel (4 px) plus the blur's reach on each side.
    const slack = 12;
    assert.ok(Math.abs(box.x - where.x) <= slack, `x ${box.x}`);
    assert.ok(Math.abs(box.y - where.y) <= slack, `y ${box.y}`);
    assert.ok(Math.abs(box.x + box.width - (where.x + where.width)) <= slack, `w ${box.width}`);
    assert.ok(Math.abs(box.y + box.height - (where.y + where.height)) <= slack, `h ${box.height}`);
  }
});

Deno.test("a small person far away (48×72 px) is still motion at the default area", async () => {
  const [r] = detectAfterBackground(await pasted({ x: 100, y: 60, width: 48, height: 72 }));
  assert.equal(r.motion, true, `${r.changedFraction}`);
  assert.ok(r.box!.x >= 88 && r.box!.x + r.box!.width <= 160, JSON.stringify(r.box));
});

Deno.test("an object that stays becomes background; leaving is motion again briefly", async () => {
  const person = await pasted({ x: 400, y: 220, width: 200, height: 200 });
  const detector = new MotionDetector({ backgroundAlpha: 0.2 });
  const results = detectAfterBackground([...person, ...person, ...person, ...person], detector);
  assert.equal(results[0].motion, true);
  assert.equal(results.at(-1)!.motion, false, `${results.at(-1)!.changedFraction}`);
  assert.equal(detector.detect(BACKGROUND[0].image, BACKGROUND[0].frame).motion, true);
});

Deno.test("fresh change: an object arriving is fresh, the same object standing there is not", async () => {
  const person = await pasted({ x: 400, y: 220, width: 200, height: 200 });
  const [arrives, stays, still] = detectAfterBackground(person);
  // The person (200×200 of 640×480: 13 %) differs from the background and the frame before.
  assert.ok(arrives.freshFraction > 0.05, `${arrives.freshFraction}`);
  assert.ok(Math.abs(arrives.freshFraction - arrives.changedFraction) < 0.02);
  // Standing still: still motion against the background, but nothing fresh.
  for (const r of [stays, still]) {
    assert.equal(r.motion, true);
    assert.ok(r.freshFraction < 0.001, `${r.freshFraction}`);
  }
});

Deno.test("a whole-scene change (camera moved) restarts the background, not motion", async () => {
  const other = thumbnails(
    await encodeVp8({
      inputs: ["-loop", "1", "-i", PERSON],
      filter: "[0:v]scale=640:480,negate[out]",
      frames: 2,
    }),
  );
  const [changed, after] = detectAfterBackground(other);
  assert.equal(changed.motion, false);
  assert.equal(changed.reset, true);
  assert.equal(after.motion, false);
  assert.equal(after.reset, false);
});

Deno.test("a new thumbnail size restarts the background", () => {
  const detector = new MotionDetector();
  detector.detect(BACKGROUND[0].image, BACKGROUND[0].frame);
  const small = { data: new Uint8Array(80 * 60).fill(90), width: 80, height: 60 };
  assert.equal(detector.detect(small, { width: 320, height: 240 }).reset, true);
});

Deno.test("bad options and short images are RangeErrors naming the value", () => {
  assert.throws(() => new MotionDetector({ pixelThreshold: 0 }), /pixelThreshold 0/);
  assert.throws(() => new MotionDetector({ minAreaFraction: 2 }), /minAreaFraction 2/);
  assert.throws(() => new MotionDetector({ backgroundAlpha: -1 }), /backgroundAlpha -1/);
  assert.throws(() => new MotionDetector({ sceneChangeFraction: 0.001 }), /sceneChangeFraction/);
  const image = { data: new Uint8Array(10), width: 160, height: 120 };
  assert.throws(() => new MotionDetector().detect(image, { width: 640, height: 480 }), /needs/);
});
