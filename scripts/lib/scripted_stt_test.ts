import assert from "node:assert/strict";
import { scriptedStt } from "./scripted_stt.ts";

const SECOND = new Float32Array(16000);

Deno.test("scriptedStt: one sentence is heard for every utterance", async () => {
  const stt = scriptedStt("What time is it?");
  assert.equal((await stt.transcribe(SECOND)).text, "What time is it?");
  assert.equal((await stt.transcribe(new Float32Array(0))).text, "What time is it?");
});

Deno.test("scriptedStt: a list is heard in order, one per utterance, then nothing", async () => {
  const stt = scriptedStt(["Turn on the lights.", "Set a timer."]);
  const heard = [];
  for (let i = 0; i < 3; i++) heard.push((await stt.transcribe(SECOND)).text);
  assert.deepEqual(heard, ["Turn on the lights.", "Set a timer.", ""]);
  const { timings } = await stt.transcribe(SECOND);
  assert.deepEqual(timings, { frontend_ms: 0, encoder_ms: 0, decoder_ms: 0, tokens: 0 });
});
