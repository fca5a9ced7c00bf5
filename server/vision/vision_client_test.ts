import assert from "node:assert/strict";
import { createVision, ImageError, VisionBusyError } from "./mod.ts";
import { GIF_1X1, photo, pngDeclaring, truncatedJpeg } from "./test_images.ts";

Deno.test("createVision: analyses in the worker, with source and timings (spec 11.11)", async () => {
  const vision = await createVision();
  try {
    const context = await vision.analyze(await photo("chelsea"), { source: "mqtt_upload:s1" });
    assert.equal(context.source, "mqtt_upload:s1");
    assert.deepEqual(context.media, { width: 451, height: 300, format: "png" });
    assert.equal(context.objects[0].label, "cat");
    assert.equal(context.description, "I see a cat.");
    assert.ok(context.timing_ms.decode >= 0 && context.timing_ms.detect > 0);
    assert.equal(context.timing_ms.ocr, undefined);
  } finally {
    await vision.close();
  }
});

Deno.test("createVision: bad images reject with an ImageError naming what was wrong", async (t) => {
  const vision = await createVision({ maxBytes: 1024 * 1024 });
  try {
    const cases = [
      ["non-image bytes", new TextEncoder().encode('{"json": true}'), "not_image"],
      ["a truncated JPEG", await truncatedJpeg(), "truncated"],
      ["a JPEG cut inside its header", await truncatedJpeg(0.002), "truncated"],
      ["a PNG declaring 100,000 × 100,000", pngDeclaring(100_000, 100_000), "too_large"],
      ["a 64×64 PNG whose pixel data is missing", pngDeclaring(64, 64), "truncated"],
      ["a GIF", GIF_1X1, "unsupported_format"],
      ["a 2 MB payload over a 1 MB limit", new Uint8Array(2 * 1024 * 1024), "too_large"],
    ] as const;
    for (const [what, bytes, code] of cases) {
      await t.step(`${what} → ${code}`, async () => {
        await assert.rejects(vision.analyze(bytes, { source: "test" }), (error) => {
          assert.ok(error instanceof ImageError, `got ${error}`);
          assert.equal(error.code, code);
          return true;
        });
      });
    }
    await t.step("the worker still analyses a good image afterwards", async () => {
      const { objects } = await vision.analyze(await photo("coffee"), { source: "test" });
      assert.ok(objects.some((o) => o.label === "cup"));
    });
  } finally {
    await vision.close();
  }
});

Deno.test("createVision: a full queue refuses at once with VisionBusyError, then frees", async () => {
  const vision = await createVision({ maxQueue: 2 });
  try {
    const image = await photo("astronaut");
    const first = vision.analyze(image, { source: "camera" });
    const second = vision.analyze(image, { source: "camera" });
    await assert.rejects(vision.analyze(image, { source: "camera" }), VisionBusyError);
    const results = await Promise.all([first, second]);
    assert.deepEqual(results.map((r) => r.objects[0].label), ["person", "person"]);
    // Both slots are free again.
    assert.equal((await vision.analyze(image, { source: "camera" })).objects[0].label, "person");
  } finally {
    await vision.close();
  }
});

Deno.test("createVision: an aborted analysis rejects with the signal's reason; others go on", async () => {
  const vision = await createVision({ maxQueue: 2 });
  try {
    const image = await photo("motorcycle_left");
    const running = vision.analyze(image, { source: "a" });
    const controller = new AbortController();
    const queued = vision.analyze(image, { source: "b", signal: controller.signal });
    controller.abort(new Error("user left"));
    await assert.rejects(queued, /user left/);
    assert.equal((await running).objects[0].label, "motorcycle");
    await assert.rejects(
      vision.analyze(image, { source: "c", signal: AbortSignal.abort(new Error("already")) }),
      /already/,
    );
  } finally {
    await vision.close();
  }
});

Deno.test("createVision: close rejects what is pending and later calls", async () => {
  const vision = await createVision();
  const pending = vision.analyze(await photo("coffee"), { source: "x" });
  await vision.close();
  await assert.rejects(pending, /vision closed/);
  await assert.rejects(vision.analyze(await photo("coffee"), { source: "x" }), /vision closed/);
});

Deno.test("createVision: options are checked", async () => {
  await assert.rejects(createVision({ maxQueue: 0 }), RangeError);
  await assert.rejects(createVision({ detector: "yolo" }), /yoloModelPath/);
});
