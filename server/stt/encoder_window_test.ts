import assert from "node:assert/strict";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { EncoderWindowError, sliceEncoderPositions } from "./encoder_window.ts";
import { ENCODER_FILE } from "./whisper.ts";
import { ensureWhisperFixture, makeWhisperFixture } from "../../scripts/lib/whisper_fixture.ts";

const MODELS_DIR = new URL("../../models", import.meta.url).pathname;
/** Current exports' layout (optimum ≥ 1.18): input_features [batch, 80, 3000]. */
const fixture = await ensureWhisperFixture(MODELS_DIR);
/** The fixture encoder adds a [1500, 8] table to its pooled frames, like the standard export. */
const DIMS = { positions: 1500, width: 8 };
/** float32 tolerance for outputs computed by differently shaped runs of the same graph. */
const TOLERANCE = 1e-6;

function features(frames: number): ort.Tensor {
  const data = new Float32Array(80 * frames);
  for (let m = 0; m < 80; m++) {
    for (let t = 0; t < frames; t++) data[m * frames + t] = Math.sin(m * 0.7 + t * 0.013);
  }
  return new ort.Tensor("float32", data, [1, 80, frames]);
}

/** The encoder bytes of both export layouts: fixed frame axis (current) and free (pre-1.18). */
async function layouts(): Promise<{ name: string; bytes: Uint8Array; refusal: RegExp }[]> {
  const dir = await Deno.makeTempDir({ prefix: "naila-encoder-window-" });
  try {
    await makeWhisperFixture(join(dir, "dynamic"), { encoderAxes: "dynamic" });
    return [
      {
        name: "fixed frame axis (optimum ≥ 1.18)",
        bytes: await Deno.readFile(join(fixture, ENCODER_FILE)),
        refusal: /invalid dimensions for input: input_features/,
      },
      {
        name: "free frame axis (older exports)",
        bytes: await Deno.readFile(join(dir, "dynamic", ENCODER_FILE)),
        refusal: /broadcast/,
      },
    ];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function assertClose(got: Float32Array, expected: Float32Array, what: string) {
  assert.equal(got.length, expected.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    assert.ok(
      Math.abs(got[i] - expected[i]) <= TOLERANCE,
      `${what}: element ${i} is ${got[i]}, expected ${expected[i]}`,
    );
  }
}

for (const { name, bytes, refusal } of await layouts()) {
  Deno.test(`${name}: the export as published refuses a 400-frame window`, async () => {
    const encoder = await ort.InferenceSession.create(bytes);
    // An expected failure: keep onnxruntime from logging it as an error (4 = fatal only).
    await assert.rejects(
      encoder.run({ input_features: features(400) }, { logSeverityLevel: 4 }),
      refusal,
    );
  });

  Deno.test(`${name}: sliceEncoderPositions takes 400 frames, the first positions match the 3000-frame window's`, async () => {
    const original = await ort.InferenceSession.create(bytes);
    const sliced = await ort.InferenceSession.create(sliceEncoderPositions(bytes, DIMS));
    const short = await sliced.run({ input_features: features(400) });
    assert.deepEqual(short.last_hidden_state.dims, [1, 200, 8]);
    const full = features(3000);
    const expected = (await original.run({ input_features: full })).last_hidden_state;
    const got = (await sliced.run({ input_features: full })).last_hidden_state;
    assert.deepEqual(got.dims, [1, 1500, 8]);
    assertClose(got.data as Float32Array, expected.data as Float32Array, "3000 frames");
    // The first 200 positions of the long window only see the first 400 frames here (the fixture
    // pools pairs of frames), so they match the short window's output.
    assertClose(
      short.last_hidden_state.data as Float32Array,
      (expected.data as Float32Array).subarray(0, 200 * 8),
      "first 200 positions",
    );
  });
}

Deno.test("sliceEncoderPositions names what it looked for when the graph has no such table", async () => {
  const bytes = await Deno.readFile(join(fixture, ENCODER_FILE));
  assert.throws(
    () => sliceEncoderPositions(bytes, { positions: 1499, width: 8 }),
    (error: Error) =>
      error instanceof EncoderWindowError &&
      /one Add of a \[1499, 8\] positional-embedding table in the encoder, found 0/.test(
        error.message,
      ),
  );
});
