import assert from "node:assert/strict";
import { createTts, EspeakTts, TtsError } from "./mod.ts";

Deno.test("createTts gives espeak-ng when asked, or when no Piper voice exists", async () => {
  const espeak = await createTts({ engine: "espeak", voice: "en-gb" });
  try {
    assert.ok(espeak instanceof EspeakTts);
    assert.equal(espeak.name, "espeak-ng:en-gb");
  } finally {
    await espeak.close?.();
  }
});

Deno.test("createTts names the Piper voice it cannot load", async () => {
  await assert.rejects(
    createTts({ engine: "piper", piperVoice: "/nonexistent/v.onnx" }),
    (error: TtsError) => error instanceof TtsError && error.message.includes("/nonexistent/v.onnx"),
  );
});
