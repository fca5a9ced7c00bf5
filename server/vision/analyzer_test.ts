import assert from "node:assert/strict";
import { createAnalyzer } from "./analyzer.ts";
import { photo } from "./test_images.ts";
import type { DetectedObject } from "./types.ts";

/** The object of `label` with the highest confidence, failing with what was found instead. */
function find(objects: DetectedObject[], label: string): DetectedObject {
  const found = objects.find((o) => o.label === label);
  assert.ok(
    found,
    `no ${label} among ${JSON.stringify(objects.map((o) => [o.label, o.confidence]))}`,
  );
  return found;
}

/** Whether `inner`'s centre lies inside `outer` ([x, y, w, h]). */
function centreInside(inner: number[], outer: number[]): boolean {
  const cx = inner[0] + inner[2] / 2;
  const cy = inner[1] + inner[3] / 2;
  return cx >= outer[0] && cx <= outer[0] + outer[2] && cy >= outer[1] && cy <= outer[1] + outer[3];
}

Deno.test("analyzer (CenterNet): finds the object in each real photo, boxed where it is", async (t) => {
  const analyzer = await createAnalyzer();
  try {
    // [photo, label, a region of the original image the object's box centre must fall in]
    const cases = [
      ["astronaut", "person", [0, 0, 512, 512], 512, 512], // the astronaut fills the frame
      ["chelsea", "cat", [50, 0, 350, 300], 451, 300],
      ["coffee", "cup", [150, 0, 300, 300], 600, 400], // the cup sits in the upper middle
      ["motorcycle_left", "motorcycle", [100, 50, 550, 400], 741, 500],
    ] as const;
    for (const [name, label, region, width, height] of cases) {
      await t.step(`${name}.png: a ${label}`, async () => {
        const context = await analyzer.analyze(await photo(name));
        assert.deepEqual(context.media, { width, height, format: "png" });
        const object = find(context.objects, label);
        assert.ok(object.confidence >= 0.3 && object.confidence <= 1);
        assert.ok(centreInside(object.bbox, [...region]), `${label} box ${object.bbox}`);
        for (const { bbox } of context.objects) {
          assert.ok(
            bbox[0] >= 0 && bbox[1] >= 0 && bbox[0] + bbox[2] <= width &&
              bbox[1] + bbox[3] <= height,
          );
        }
        assert.match(context.description, new RegExp(`^I see .*\\b${label}\\b.*\\.$`));
        assert.equal(context.text_detected, undefined, "no OCR unless asked");
        assert.ok(context.timing_ms.detect > 0);
      });
    }
    await t.step(
      "chelsea.png letterboxed is a cat, not a dog (stretching made it a dog)",
      async () => {
        const { objects } = await analyzer.analyze(await photo("chelsea"));
        assert.equal(objects[0].label, "cat");
        assert.ok(!objects.some((o) => o.label === "dog"));
      },
    );
    await t.step("page.png with ocr: reads the printed lines, top to bottom", async () => {
      const context = await analyzer.analyze(await photo("page"), { ocr: true });
      const lines = context.text_detected ?? [];
      assert.equal(lines[0], "Region-based segmentation");
      assert.ok(lines.length >= 6, `read ${JSON.stringify(lines)}`);
      assert.ok(lines.some((line) => line.includes("histogram of grey values")));
      assert.ok((context.timing_ms.ocr ?? 0) > 0);
    });
  } finally {
    await analyzer.close();
  }
});

Deno.test("analyzer: 'yolo' without a model path is refused with the option named", async () => {
  await assert.rejects(createAnalyzer({ detector: "yolo" }), /yoloModelPath/);
});
