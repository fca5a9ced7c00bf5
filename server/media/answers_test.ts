import assert from "node:assert/strict";
import { parseVisualContext } from "../../shared/messages.ts";
import { ImageError, VisionBusyError, type VisualContext } from "../vision/mod.ts";
import { describeError, failure, wireContext } from "./answers.ts";
import { MediaError } from "./link.ts";

Deno.test("wireContext gives spec 11.11's shape, which the schema accepts; boxes clipped at 0", () => {
  const context: VisualContext = {
    source: "mqtt_upload:web_1",
    media: { width: 640, height: 480, format: "jpeg" },
    objects: [{ label: "cup", confidence: 0.56, bbox: [-3, 10, 100, 90] }],
    description: "I see a cup.",
    text_detected: ["NAILA"],
    timing_ms: { decode: 5, detect: 200 },
  };
  const wire = wireContext(
    context,
    { type: "mqtt_upload", session_id: "web_1" },
    "2026-11-29T10:00:00.000Z",
    "What is this?",
  );
  assert.deepEqual(wire, {
    source: { type: "mqtt_upload", session_id: "web_1" },
    media: {
      type: "image",
      format: "jpeg",
      width: 640,
      height: 480,
      timestamp: "2026-11-29T10:00:00.000Z",
    },
    analysis: {
      description: "I see a cup.",
      objects: [{ label: "cup", confidence: 0.56, bbox: [0, 10, 100, 90] }],
      text_detected: ["NAILA"],
    },
    user_context: "What is this?",
  });
  assert.equal(parseVisualContext(wire).ok, true);
});

Deno.test("describeError keeps the code of media, image and busy errors; anything else is internal", () => {
  assert.deepEqual(describeError(new MediaError("timeout", "no snapshot")), {
    code: "timeout",
    message: "no snapshot",
  });
  assert.equal(describeError(new ImageError("truncated", "cut off")).code, "truncated");
  assert.equal(describeError(new VisionBusyError("queue full")).code, "busy");
  assert.deepEqual(failure(new Error("boom")), {
    ok: false,
    error: { code: "internal", message: "internal error: boom" },
  });
});
