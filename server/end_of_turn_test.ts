import assert from "node:assert/strict";
import {
  classifyTranscript,
  COMMAND_SILENCE_MS,
  EndOfTurn,
  INCOMPLETE_SILENCE_MS,
  SENTENCE_SILENCE_MS,
  type TurnCompletion,
  type TurnModel,
} from "./end_of_turn.ts";

const CASES: [string, TurnCompletion][] = [
  // Commands the built-in engine recognizes in full.
  ["Turn on the kitchen lights.", "complete"],
  ["turn on the kitchen lights", "complete"],
  ["Set a timer for five minutes.", "complete"],
  ["set a timer for five minutes", "complete"],
  ["What time is it?", "complete"],
  ["what's the date today", "complete"],
  ["Remind me to call my mom in 2 hours.", "complete"],
  ["turn the TV off", "complete"],
  ["Set the volume to forty", "complete"],
  ["Turn it off, please.", "complete"],
  ["thanks", "complete"],
  ["Turn on the kitchen lights and set a timer for five minutes.", "complete"],
  // Punctuated sentences the engine does not know.
  ["Tell me a joke about penguins.", "complete"],
  ["Why is the sky blue?", "complete"],
  ["That's great!", "complete"],
  // Unfinished: dangling words.
  ["set a timer for", "incomplete"],
  ["Set a timer for", "incomplete"],
  ["turn on the kitchen lights and", "incomplete"],
  ["Turn on the kitchen lights, and", "incomplete"],
  ["um", "incomplete"],
  ["Uh.", "incomplete"],
  ["what is", "incomplete"],
  ["What's the weather like in", "incomplete"],
  ["turn off the", "incomplete"],
  ["play some music from my", "incomplete"],
  ["so", "incomplete"],
  ["remind me to buy milk because", "incomplete"],
  ["can you", "incomplete"],
  ["Could you please", "incomplete"],
  // Unfinished: dangling phrases and missing units.
  ["turn on", "incomplete"],
  ["switch off", "incomplete"],
  ["remind me", "incomplete"],
  ["set a timer", "incomplete"],
  ["set a timer for five", "incomplete"],
  ["remind me to stretch in ten", "incomplete"],
  // Unfinished: punctuation.
  ["Set a timer for...", "incomplete"],
  ["turn on the lights,", "incomplete"],
  ["I was thinking —", "incomplete"],
  // No cue either way.
  ["", "unknown"],
  ["   ", "unknown"],
  ["tell me a joke about penguins", "unknown"],
  ["the weather tomorrow", "unknown"],
];

Deno.test("classifyTranscript on many transcripts", () => {
  const wrong = CASES.filter(([text, expected]) => classifyTranscript(text).completion !== expected)
    .map(([text, expected]) =>
      `${JSON.stringify(text)}: ${classifyTranscript(text).completion} (${
        classifyTranscript(text).reason
      }), expected ${expected}`
    );
  assert.deepEqual(wrong, []);
});

Deno.test("reasons name the cue", () => {
  assert.equal(classifyTranscript("set a timer for").reason, 'dangling word "for"');
  assert.equal(classifyTranscript("Turn on the kitchen lights.").reason, "command recognized");
  assert.equal(classifyTranscript("Tell me a joke.").reason, "sentence end");
  assert.equal(classifyTranscript("turn on").reason, 'dangling "turn on"');
});

Deno.test("EndOfTurn maps the text rule to silence waits, capped by the default window", async () => {
  const eot = new EndOfTurn();
  assert.deepEqual(await eot.decide("Turn on the kitchen lights."), {
    completion: "complete",
    silenceMs: COMMAND_SILENCE_MS,
    reason: "command recognized",
  });
  assert.equal((await eot.decide("Tell me a joke.")).silenceMs, SENTENCE_SILENCE_MS);
  assert.equal((await eot.decide("set a timer for")).silenceMs, INCOMPLETE_SILENCE_MS);
  assert.equal((await eot.decide("the weather tomorrow")).silenceMs, 300);
  // A short configured window stays the cap for complete turns; a long one the floor.
  assert.equal(
    (await new EndOfTurn({ defaultSilenceMs: 100 }).decide("Tell me a joke.")).silenceMs,
    100,
  );
  assert.equal((await new EndOfTurn({ defaultSilenceMs: 2000 }).decide("um")).silenceMs, 2000);
  assert.throws(() => new EndOfTurn({ defaultSilenceMs: 5 }), /defaultSilenceMs 5/);
});

/** A model that answers a fixed probability (the ONNX loader has its own test with a real ONNX graph). */
function fixedModel(p: number | Error): TurnModel & { calls: number } {
  return {
    name: "fixed",
    calls: 0,
    completeProbability(this: { calls: number }) {
      this.calls++;
      return p instanceof Error ? Promise.reject(p) : Promise.resolve(p);
    },
  };
}

Deno.test("with an audio model: it decides what the text leaves open; dangling words and commands win", async () => {
  const audio = new Float32Array(16000);
  const unsure = new EndOfTurn({ model: fixedModel(0.2) });
  const sure = new EndOfTurn({ model: fixedModel(0.9) });
  const open = await unsure.decide("tell me a joke about penguins", audio);
  assert.equal(open.completion, "incomplete");
  assert.equal(open.probability, 0.2);
  assert.equal((await sure.decide("tell me a joke about penguins", audio)).completion, "complete");
  // Punctuation alone is weaker than the model.
  assert.equal((await unsure.decide("Tell me a joke about", audio)).completion, "incomplete");
  assert.equal((await unsure.decide("Tell me a joke.", audio)).completion, "incomplete");
  // The words are certain: a dangling "and" is incomplete whatever the model says.
  assert.equal((await sure.decide("turn on the lights and", audio)).completion, "incomplete");
  // A recognized command ends the turn without asking the model.
  const model = fixedModel(0.1);
  const decision = await new EndOfTurn({ model }).decide("Turn on the kitchen lights.", audio);
  assert.equal(decision.completion, "complete");
  assert.equal(model.calls, 0);
});

Deno.test("a failing model falls back to the text rule", async () => {
  const eot = new EndOfTurn({ model: fixedModel(new Error("onnx broke")) });
  const decision = await eot.decide("Tell me a joke.", new Float32Array(100));
  assert.equal(decision.completion, "complete");
  assert.equal(decision.probability, undefined);
});
