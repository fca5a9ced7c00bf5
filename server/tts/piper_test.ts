import assert from "node:assert/strict";
import onnxProto from "onnx-proto";
import { pcmToFloat32, rms } from "../../shared/audio.ts";
import { phonemeIds, phonemize, PiperTts, type PiperVoiceConfig } from "./piper.ts";
import { TtsError } from "./types.ts";

const { onnx } = onnxProto;
/** Samples the fake voice makes per phoneme id. */
const SAMPLES_PER_ID = 256;

/**
 * A stand-in for a Piper voice with the real export's inputs and output (`input` int64 [1, n],
 * `input_lengths` int64 [1], `scales` float [3] → `output` float [1, 1, 1, samples]): it holds
 * sin(id) for 256 samples per id, so duration follows the phoneme count. Real voices cannot be
 * downloaded here (shared/ENVIRONMENT.md).
 */
function fakeVoiceModel(): Uint8Array {
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const INT64 = onnx.TensorProto.DataType.INT64;
  const ints = (name: string, values: number[]) => ({
    name,
    dims: [values.length],
    dataType: INT64,
    int64Data: values,
  });
  const floats = (name: string, values: number[]) => ({
    name,
    dims: [],
    dataType: FLOAT,
    floatData: values,
  });
  const node = (opType: string, input: string[], output: string, attribute: object[] = []) => ({
    opType,
    input,
    output: [output],
    name: output,
    attribute,
  });
  const graph = {
    name: "fake_piper",
    input: [
      {
        name: "input",
        type: {
          tensorType: { elemType: INT64, shape: { dim: [{ dimValue: 1 }, { dimParam: "n" }] } },
        },
      },
      {
        name: "input_lengths",
        type: { tensorType: { elemType: INT64, shape: { dim: [{ dimValue: 1 }] } } },
      },
      {
        name: "scales",
        type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimValue: 3 }] } } },
      },
    ],
    output: [{ name: "output", type: { tensorType: { elemType: FLOAT } } }],
    initializer: [
      ints("shape5", [1, 1, 1, -1, 1]),
      ints("expand", [1, 1, 1, 1, SAMPLES_PER_ID]),
      ints("shape4", [1, 1, 1, -1]),
      floats("half", [0.5]),
      floats("zero", [0]),
    ],
    node: [
      node("Cast", ["input"], "ids", [{ name: "to", type: 2, i: FLOAT }]),
      node("Reshape", ["ids", "shape5"], "ids5"),
      node("Expand", ["ids5", "expand"], "held"),
      node("Reshape", ["held", "shape4"], "flat"),
      node("Sin", ["flat"], "wave"),
      node("Mul", ["wave", "half"], "quiet"),
      // Use the other inputs, as a real voice does (length scale, noise), without changing sound.
      node("ReduceSum", ["scales"], "scale_sum", [{ name: "keepdims", type: 2, i: 0 }]),
      node("Mul", ["scale_sum", "zero"], "scale_zero"),
      node("Add", ["quiet", "scale_zero"], "output"),
    ],
  };
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 17 }],
    producerName: "naila server/tts/piper_test.ts",
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

const ID_MAP: Record<string, number[]> = {
  "^": [1],
  "$": [2],
  "_": [0],
  " ": [3],
  "h": [20],
  "ə": [59],
  "l": [24],
  "ˈ": [120],
  "o": [27],
  "ʊ": [100],
  ".": [10],
};

Deno.test("phonemeIds wraps phonemes in ^ … $ with _ after each, skipping unknown ones", () => {
  assert.deepEqual(phonemeIds("həlˈoʊ.", ID_MAP), [
    1,
    0,
    20,
    0,
    59,
    0,
    24,
    0,
    120,
    0,
    27,
    0,
    100,
    0,
    10,
    0,
    2,
  ]);
  assert.deepEqual(phonemeIds("hx", ID_MAP), [1, 0, 20, 0, 2]);
});

Deno.test("phonemize gives espeak-ng's IPA with each clause's punctuation", async () => {
  assert.equal(await phonemize("Hello world. Right?", "en-us"), "həlˈoʊ wˈɜːld. ɹˈaɪt?");
});

Deno.test("PiperTts runs a voice model and resamples its output to the rate asked for", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila_piper_" });
  const path = `${dir}/fake-voice.onnx`;
  const config: PiperVoiceConfig = {
    audio: { sample_rate: 22050 },
    espeak: { voice: "en-us" },
    inference: { noise_scale: 0.667, length_scale: 1, noise_w: 0.8 },
    phoneme_id_map: ID_MAP,
  };
  await Deno.writeFile(path, fakeVoiceModel());
  await Deno.writeTextFile(`${path}.json`, JSON.stringify(config));
  const voice = await PiperTts.load(path);
  try {
    assert.equal(voice.name, "piper:fake-voice");
    const ids = phonemeIds(await phonemize("Hello.", "en-us"), ID_MAP);
    const speech = await voice.synthesize("Hello.", { rate: 16000 });
    const samples = pcmToFloat32(speech.pcm);
    const expected = Math.ceil((ids.length * SAMPLES_PER_ID * 16000) / 22050);
    assert.ok(Math.abs(samples.length - expected) <= 1, `${samples.length} vs ${expected}`);
    assert.ok(rms(samples) > 0.05);
  } finally {
    await voice.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PiperTts.load names the file it cannot use", async () => {
  await assert.rejects(PiperTts.load("/nonexistent/voice.onnx"), (error: TtsError) => {
    assert.ok(error instanceof TtsError);
    assert.match(error.message, /voice config \/nonexistent\/voice\.onnx\.json/);
    return true;
  });
});
