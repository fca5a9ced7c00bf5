import assert from "node:assert/strict";
import type { onnx as proto } from "onnx-proto";
import { cacheNames } from "../../server/stt/whisper_files.ts";
import { decoderSignature, encoderSignature, WHISPER_TINY_DIMS } from "./whisper_signatures.ts";

/** The declared shape: fixed sizes as numbers, named free axes as strings. */
const dimsOf = (info: proto.IValueInfoProto) =>
  (info.type?.tensorType?.shape?.dim ?? []).map((d) => d.dimParam ?? Number(d.dimValue));

Deno.test("encoderSignature: the frame axis is 3000 in the fixed layout and free in the dynamic one", () => {
  const fixed = encoderSignature(WHISPER_TINY_DIMS);
  assert.deepEqual(dimsOf(fixed.inputs[0]), ["batch_size", 80, 3000]);
  assert.deepEqual(dimsOf(fixed.outputs[0]), ["batch_size", 1500, 384]);
  const dynamic = encoderSignature(WHISPER_TINY_DIMS, { encoderAxes: "dynamic" });
  assert.deepEqual(dimsOf(dynamic.inputs[0]), ["batch_size", 80, "encoder_sequence_length"]);
});

Deno.test("decoderSignature: every name the server's decoding loop feeds and reads (whisper_files.ts)", () => {
  const { inputs, outputs } = decoderSignature(WHISPER_TINY_DIMS);
  const names = cacheNames(WHISPER_TINY_DIMS.decoderLayers);
  assert.deepEqual(
    inputs.map((i) => i.name).sort(),
    [
      "input_ids",
      "encoder_hidden_states",
      ...names.pastDecoder,
      ...names.pastEncoder,
      "use_cache_branch",
    ].sort(),
  );
  assert.deepEqual(
    outputs.map((o) => o.name).sort(),
    ["logits", ...names.presentDecoder, ...names.presentEncoder].sort(),
  );
  assert.deepEqual(dimsOf(inputs.find((i) => i.name === names.pastDecoder[0])!), [
    "batch_size",
    6,
    "past_decoder_sequence_length",
    64,
  ]);
  const withPosition = decoderSignature(WHISPER_TINY_DIMS, { cachePosition: true });
  assert.equal(withPosition.inputs.at(-1)!.name, "cache_position");
});
