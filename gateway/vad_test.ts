import assert from "node:assert/strict";
import { resample } from "../shared/audio.ts";
import { sileroModelPath } from "../tests/helpers/gateway_process.ts";
import { speak } from "../tests/helpers/speech.ts";
import {
  EnergyModel,
  SILERO_CONTEXT,
  SILERO_WINDOW,
  SileroModel,
  SileroSession,
  VAD_FRAME_SAMPLES,
  VadStateMachine,
} from "./vad.ts";

function frames(samples: Float32Array): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i + VAD_FRAME_SAMPLES <= samples.length; i += VAD_FRAME_SAMPLES) {
    out.push(samples.subarray(i, i + VAD_FRAME_SAMPLES));
  }
  return out;
}

Deno.test("state machine: quiet → starting → speaking → stopping → quiet", () => {
  const vad = new VadStateMachine({ threshold: 0.5, startFrames: 2, stopFrames: 2 });
  const states = [0.9, 0.9, 0.1, 0.9, 0.1, 0.1, 0.1].map((c) => vad.update(c));
  assert.deepEqual(states, [
    "starting",
    "speaking",
    "stopping",
    "speaking",
    "stopping",
    "quiet",
    "quiet",
  ]);
});

Deno.test("state machine: a single voiced frame is not speech", () => {
  const vad = new VadStateMachine({ threshold: 0.5, startFrames: 3, stopFrames: 2 });
  assert.deepEqual([0.9, 0.1, 0.9, 0.9].map((c) => vad.update(c)), [
    "starting",
    "quiet",
    "starting",
    "starting",
  ]);
});

Deno.test("state machine: parameters are validated", () => {
  assert.throws(
    () => new VadStateMachine({ threshold: 0.5, startFrames: 0, stopFrames: 1 }),
    /startFrames 0/,
  );
});

Deno.test("energy: confidence 0.5 exactly at the threshold (int16 mean |x|)", () => {
  const model = new EnergyModel({ threshold: 500 });
  const frame = new Float32Array(VAD_FRAME_SAMPLES).fill(500 / 32768);
  assert.ok(Math.abs(model.confidence(frame) - 0.5) < 1e-6);
  assert.equal(model.confidence(new Float32Array(VAD_FRAME_SAMPLES)), 0);
  assert.equal(model.confidence(new Float32Array(VAD_FRAME_SAMPLES).fill(0.5)), 1);
  assert.throws(() => new EnergyModel({ threshold: 0 }), /threshold 0/);
});

const modelPath = sileroModelPath();

Deno.test({
  name: "silero v5: real speech scores high, silence low; devices keep their own state",
  ignore: modelPath === undefined,
  async fn() {
    const session = await SileroSession.load(modelPath!);
    const { samples, rate } = await speak("Turn on the kitchen lights please.");
    const speech = resample(samples, rate, 16000);
    const a = new SileroModel(session);
    const b = new SileroModel(session);
    let maxSpeech = 0;
    for (const frame of frames(speech)) maxSpeech = Math.max(maxSpeech, await a.confidence(frame));
    assert.ok(maxSpeech > 0.8, `speech max confidence ${maxSpeech}`);
    // Device b heard only low noise: its state is its own.
    let maxNoise = 0;
    const noise = new Float32Array(16000).map(() => (Math.random() - 0.5) * 0.004);
    for (const frame of frames(noise)) maxNoise = Math.max(maxNoise, await b.confidence(frame));
    assert.ok(maxNoise < 0.3, `noise max confidence ${maxNoise}`);
    // One window per 512 samples, each with 64 samples of context: 576 inputs per run.
    assert.equal(SILERO_WINDOW + SILERO_CONTEXT, 576);
    assert.ok(session.runs > 0); // timings are for the benchmark, not a test
    // Digital silence never reaches the model.
    const runs = session.runs;
    for (const frame of frames(new Float32Array(16000))) await b.confidence(frame);
    assert.equal(session.runs, runs);
    await session.close();
  },
});

Deno.test({
  name: "silero: the end of speech is heard within a frame (no recurrent hangover)",
  ignore: modelPath === undefined,
  async fn() {
    const session = await SileroSession.load(modelPath!);
    const { samples, rate } = await speak("Stop the music.");
    const speech = resample(samples, rate, 16000);
    let end = speech.length;
    while (end > 0 && Math.abs(speech[end - 1]) < 0.01) end--;
    const model = new SileroModel(session);
    let voicedUntil = 0;
    const all = new Float32Array(end + 16000);
    all.set(speech.subarray(0, end));
    for (let i = end; i < all.length; i++) all[i] = (Math.random() - 0.5) * 0.004;
    const list = frames(all);
    for (let i = 0; i < list.length; i++) {
      if ((await model.confidence(list[i])) >= 0.5) voicedUntil = (i + 1) * VAD_FRAME_SAMPLES;
    }
    const hangoverMs = ((voicedUntil - end) / 16000) * 1000;
    assert.ok(hangoverMs <= 20, `voiced ${hangoverMs.toFixed(0)} ms after the speech ended`);
    await session.close();
  },
});
