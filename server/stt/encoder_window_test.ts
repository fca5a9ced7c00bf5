import assert from "node:assert/strict";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { EncoderWindowError, sliceEncoderPositions } from "./encoder_window.ts";
import { ENCODER_FILE } from "./whisper.ts";
import { makeWhisperFixtures } from "../../scripts/make_whisper_models.ts";

const MODELS_DIR = new URL("../../models", import.meta.url).pathname;
const { fixture } = await makeWhisperFixtures(MODELS_DIR, { fixtureOnly: true });
/** The fixture encoder adds a [1500, 8] table to its pooled frames, like the standard export. */
const DIMS = { positions: 1500, width: 8 };

function features(frames: number): ort.Tensor {
  const data = new Float32Array(80 * frames);
  for (let m = 0; m < 80; m++) {
    for (let t = 0; t < frames; t++) data[m * frames + t] = Math.sin(m * 0.7 + t * 0.013);
  }
  return new ort.Tensor("float32", data, [1, 80, frames]);
}

Deno.test("the standard-shaped encoder refuses a 400-frame window", async () => {
  const encoder = await ort.InferenceSession.create(join(fixture, ENCODER_FILE));
  await assert.rejects(encoder.run({ input_features: features(400) }), /broadcast/);
});

Deno.test("sliceEncoderPositions: the rewritten encoder takes 400 frames and keeps 3000-frame outputs", async () => {
  const bytes = await Deno.readFile(join(fixture, ENCODER_FILE));
  const original = await ort.InferenceSession.create(bytes);
  const sliced = await ort.InferenceSession.create(sliceEncoderPositions(bytes, DIMS));
  const short = await sliced.run({ input_features: features(400) });
  assert.deepEqual(short.last_hidden_state.dims, [1, 200, 8]);
  const full = features(3000);
  const expected = (await original.run({ input_features: full })).last_hidden_state.data;
  const got = (await sliced.run({ input_features: full })).last_hidden_state.data;
  assert.deepEqual(Array.from(got as Float32Array), Array.from(expected as Float32Array));
  // The first 200 positions of the long window only see the first 400 frames here (the fixture
  // pools pairs of frames), so they match the short window's output.
  const head = Array.from((got as Float32Array).subarray(0, 200 * 8));
  assert.deepEqual(Array.from(short.last_hidden_state.data as Float32Array), head);
});

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
