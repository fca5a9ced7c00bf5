import assert from "node:assert/strict";
import { Assistant } from "./assistant/assistant.ts";
import { ConversationMemory } from "./assistant/memory.ts";
import { LlmClient } from "./assistant/llm_client.ts";
import { startFakeLlm } from "./assistant/testing.ts";
import { TimerService } from "./assistant/timers.ts";
import {
  EchoPipeline,
  FullPipeline,
  type ReplySink,
  transcribeLong,
  type Utterance,
} from "./pipeline.ts";
import type { SpeechToText } from "./stt/types.ts";
import { EspeakTts } from "./tts/espeak.ts";
import type { TextToSpeech } from "./tts/types.ts";

function fixedStt(text: string, onTranscribe?: () => void): SpeechToText & { rates: number[] } {
  const rates: number[] = [];
  return {
    rates,
    transcribe(samples) {
      rates.push(samples.length);
      onTranscribe?.();
      return Promise.resolve({
        text,
        timings: { frontend_ms: 1, encoder_ms: 2, decoder_ms: 3, tokens: 4 },
      });
    },
  };
}

function recordingSink() {
  const events: string[] = [];
  const audio: Uint8Array[] = [];
  const sink: ReplySink = {
    transcript: (text) => events.push(`transcript:${text}`),
    reply: (text) => events.push(`reply:${text}`),
    audio: (pcm, rate) => {
      events.push(`audio:${rate}`);
      audio.push(pcm.slice());
    },
  };
  return { sink, events, audio };
}

function makeAssistant(llm?: LlmClient) {
  const memory = ConversationMemory.open(":memory:");
  const timers = new TimerService(memory, { onDue: () => {} });
  return new Assistant({
    memory,
    timers,
    publishCommand: () => {},
    llm,
    now: () => new Date(2026, 10, 21, 9, 30),
  });
}

const utterance: Utterance = {
  device: "kitchen",
  turn: "t1",
  pcm: new Uint8Array(48000 * 2),
  rate: 48000,
  endedAt: 1_700_000_000_000,
};

Deno.test("FullPipeline hears, answers and speaks, and remembers the turn", async () => {
  const assistant = makeAssistant();
  const stt = fixedStt("What time is it?");
  const pipeline = new FullPipeline({ stt, assistant, tts: new EspeakTts() });
  const { sink, events, audio } = recordingSink();
  const result = await pipeline.run(utterance, sink, {
    signal: new AbortController().signal,
    outputRate: 16000,
  });
  assert.deepEqual(stt.rates, [16000], "one second at 48 kHz reaches STT as 16000 samples");
  assert.equal(result.cancelled, false);
  assert.equal(result.reply, "It's 9:30 AM.");
  assert.deepEqual(events.slice(0, 3), [
    "transcript:What time is it?",
    "reply:It's 9:30 AM.",
    "audio:16000",
  ]);
  const bytes = audio.reduce((n, a) => n + a.length, 0);
  assert.ok(bytes > 16000, `reply audio of ${bytes} bytes`);
  assert.ok(Math.abs(result.replyAudioMs - (bytes / 2 / 16000) * 1000) < 1);
  for (
    const stage of ["stt_ms", "assistant_first_ms", "tts_first_ms", "first_audio_ms", "total_ms"]
  ) {
    assert.equal(typeof result.stages[stage], "number", stage);
  }
  const [stored] = assistant.memory.recent("kitchen", 1);
  assert.equal(stored.id, result.memoryId);
  assert.equal(stored.transcript, "What time is it?");
  assert.equal(stored.reply, "It's 9:30 AM.");
  assert.equal(stored.interrupted, false);
  assert.equal(stored.timings.stt_ms, result.stages.stt_ms);
  pipeline.markInterrupted(result.memoryId!, 250);
  assert.equal(assistant.memory.turn(result.memoryId!)?.playedMs, 250);
});

Deno.test("FullPipeline answers an empty transcript with nothing and stores nothing", async () => {
  const assistant = makeAssistant();
  const pipeline = new FullPipeline({ stt: fixedStt(""), assistant, tts: new EspeakTts() });
  const { sink, events } = recordingSink();
  const result = await pipeline.run(utterance, sink, {
    signal: new AbortController().signal,
    outputRate: 48000,
  });
  assert.deepEqual(events, []);
  assert.equal(result.replyAudioMs, 0);
  assert.equal(result.memoryId, undefined);
  assert.deepEqual(assistant.memory.recent("kitchen", 5), []);
});

Deno.test("FullPipeline sends the first sentence's audio before synthesizing the next", async () => {
  const log: string[] = [];
  const tts: TextToSpeech = {
    name: "stub",
    synthesize(text, { rate }) {
      log.push(`synthesize:${text}`);
      return Promise.resolve({ pcm: new Uint8Array(rate / 10), rate });
    },
  };
  const assistant = makeAssistant();
  const pipeline = new FullPipeline({ stt: fixedStt("what's the date"), assistant, tts });
  const sink: ReplySink = {
    transcript: () => {},
    reply: (text) => log.push(`reply:${text}`),
    audio: () => log.push("audio"),
  };
  // A due announcement makes the reply two sentences.
  assistant.memory.addTimer({
    id: "x",
    device: "kitchen",
    kind: "timer",
    label: "tea",
    createdAt: 0,
    dueAt: 1,
    state: "due",
  });
  await pipeline.run(utterance, sink, { signal: new AbortController().signal, outputRate: 16000 });
  assert.deepEqual(log, [
    "synthesize:Your timer for the tea is done.",
    "reply:Your timer for the tea is done.",
    "audio",
    "synthesize:Today is Saturday, November 21, 2026.",
    "reply:Today is Saturday, November 21, 2026.",
    "audio",
  ]);
});

Deno.test("FullPipeline speaks the LLM's first sentence before the LLM has written the next", async () => {
  const fake = startFakeLlm([{
    tokens: ["Paris ", "is the capital. ", "It is ", "lovely in spring."],
    tokenDelayMs: 150,
  }]);
  try {
    const assistant = makeAssistant(new LlmClient({ url: fake.url, model: "m" }));
    const pipeline = new FullPipeline({
      stt: fixedStt("What is the capital of France?"),
      assistant,
      tts: new EspeakTts(),
    });
    const audioAt: number[] = [];
    const replies: string[] = [];
    const result = await pipeline.run(utterance, {
      transcript: () => {},
      reply: (text) => replies.push(text),
      audio: () => audioAt.push(performance.now()),
    }, { signal: new AbortController().signal, outputRate: 16000 });
    assert.deepEqual(replies, ["Paris is the capital.", "It is lovely in spring."]);
    assert.equal(result.reply, "Paris is the capital. It is lovely in spring.");
    // The first sentence is complete once "It is " starts; its audio leaves before "lovely…".
    assert.ok(audioAt[0] < fake.tokenSentAt[3], `${audioAt[0]} vs ${fake.tokenSentAt[3]}`);
  } finally {
    await fake.close();
  }
});

Deno.test("FullPipeline answers a turn without audio with what is waiting, skipping STT", async () => {
  const assistant = makeAssistant();
  const stt = fixedStt("never heard");
  const pipeline = new FullPipeline({ stt, assistant, tts: new EspeakTts() });
  assistant.memory.addTimer({
    id: "x",
    device: "kitchen",
    kind: "reminder",
    label: "water the plants",
    createdAt: 0,
    dueAt: 1,
    state: "due",
  });
  const { sink, events } = recordingSink();
  const result = await pipeline.run({ ...utterance, pcm: new Uint8Array(0) }, sink, {
    signal: new AbortController().signal,
    outputRate: 16000,
  });
  assert.deepEqual(stt.rates, []);
  assert.equal(result.reply, "Reminder: water the plants.");
  assert.equal(events[0], "reply:Reminder: water the plants.");
});

Deno.test("FullPipeline stops at the stage boundary after STT when the turn is cancelled", async () => {
  const assistant = makeAssistant();
  const controller = new AbortController();
  const stt = fixedStt("What time is it?", () => controller.abort());
  const pipeline = new FullPipeline({ stt, assistant, tts: new EspeakTts() });
  const { sink, events } = recordingSink();
  const result = await pipeline.run(utterance, sink, {
    signal: controller.signal,
    outputRate: 16000,
  });
  assert.equal(result.cancelled, true);
  assert.deepEqual(events, ["transcript:What time is it?"]);
  const [stored] = assistant.memory.recent("kitchen", 1);
  assert.equal(stored.interrupted, true);
  assert.equal(stored.reply, "");
});

Deno.test("EchoPipeline answers with the utterance itself at the output rate", async () => {
  const pcm = new Uint8Array(16000 * 2);
  for (let i = 0; i < pcm.length; i += 2) pcm[i + 1] = (i / 2) % 50; // a ramp, non-silent
  const { sink, audio } = recordingSink();
  const same = await new EchoPipeline().run(
    { ...utterance, pcm, rate: 16000 },
    sink,
    { signal: new AbortController().signal, outputRate: 16000 },
  );
  const echoed = new Uint8Array(audio.reduce((n, a) => n + a.length, 0));
  audio.reduce((at, a) => (echoed.set(a, at), at + a.length), 0);
  assert.deepEqual(echoed, pcm);
  assert.equal(audio.length, 2, "1 s goes out as two 500 ms chunks");
  assert.equal(same.replyAudioMs, 1000);
  const up = recordingSink();
  await new EchoPipeline().run({ ...utterance, pcm, rate: 16000 }, up.sink, {
    signal: new AbortController().signal,
    outputRate: 48000,
  });
  assert.equal(up.audio.reduce((n, a) => n + a.length, 0), pcm.length * 3);
});

Deno.test("full pipeline: queued utterances are transcribed in one batch with the running one", async () => {
  const calls: number[] = [];
  const stt: SpeechToText = {
    transcribe: (samples) => stt.transcribeBatch!([samples]).then((all) => all[0]),
    transcribeBatch(all) {
      calls.push(all.length);
      return Promise.resolve(all.map((samples) => ({
        text: `heard ${samples.length}`,
        timings: { frontend_ms: 1, encoder_ms: 2, decoder_ms: 3, tokens: 4, batch: all.length },
      })));
    },
  };
  const assistant = makeAssistant();
  const pipeline = new FullPipeline({ stt, assistant, tts: new EspeakTts(), sttBatch: 3 });
  const make = (turn: string, samples: number): Utterance => ({
    ...utterance,
    turn,
    rate: 16000,
    pcm: new Uint8Array(samples * 2).fill(9),
  });
  const [a, b, c, d] = [make("a", 1000), make("b", 2000), make("c", 3000), make("d", 4000)];
  const queued = [b, c, d];
  const run = async (u: Utterance) => {
    const { sink, events } = recordingSink();
    const result = await pipeline.run(u, sink, {
      signal: new AbortController().signal,
      outputRate: 16000,
      upcoming: (limit) => queued.filter((q) => q !== u).slice(0, limit),
    });
    queued.splice(queued.indexOf(u), 1);
    return { result, events };
  };
  const first = await run(a);
  assert.deepEqual(calls, [3], "a, b and c in one batch of the batch size 3");
  assert.equal(first.result.stages.stt_batch, 3);
  assert.equal(first.events[0], "transcript:heard 1000");
  const second = await run(b);
  assert.deepEqual(calls, [3], "b was transcribed ahead");
  assert.equal(second.events[0], "transcript:heard 2000");
  await run(c);
  // d was not in the first batch; it runs alone, a batch of one.
  const fourth = await run(d);
  assert.deepEqual(calls, [3, 1]);
  assert.equal(fourth.events[0], "transcript:heard 4000");
});

Deno.test("transcribeLong: past 30 s, one run per 30 s window, texts joined in order", async () => {
  const lengths: number[] = [];
  const stt: SpeechToText = {
    transcribe(samples) {
      lengths.push(samples.length);
      return Promise.resolve({
        text: `part${lengths.length}`,
        timings: { frontend_ms: 1, encoder_ms: 2, decoder_ms: 3, tokens: 4 },
      });
    },
  };
  const signal = new AbortController().signal;
  const long = await transcribeLong(stt, new Float32Array(16000 * 65), { signal });
  assert.deepEqual(lengths, [480000, 480000, 80000]);
  assert.equal(long.text, "part1 part2 part3");
  assert.equal(long.timings.tokens, 12);
  lengths.length = 0;
  const short = await transcribeLong(stt, new Float32Array(16000 * 30), { signal });
  assert.deepEqual(lengths, [480000], "30 s is one run");
  assert.equal(short.text, "part1");
});
