import assert from "node:assert/strict";
import { resample } from "../shared/audio.ts";
import { speak } from "../tests/helpers/speech.ts";
import { AudioInput, decodeRate } from "./audio_input.ts";
import { ECHO_HANGOVER_MS, type EchoGuard } from "./echo_guard.ts";
import { OPUS_FRAME_SAMPLES, OpusEncoder } from "../shared/media/opus_codec.ts";
import { EnergyModel } from "./vad.ts";

const speech = await speak("Please set a timer for ten minutes.");
const speech48k = resample(speech.samples, speech.rate, 48000);
const speechSeconds = speech.samples.length / speech.rate;

/** Opus packets of `seconds` of silence, the speech, then one second of silence. */
function packets(leadSeconds = 0.5): Uint8Array[] {
  const encoder = new OpusEncoder();
  const lead = Math.round(leadSeconds * 50);
  const total = lead + Math.ceil(speech48k.length / OPUS_FRAME_SAMPLES) + 50;
  const out: Uint8Array[] = [];
  const frame = new Float32Array(OPUS_FRAME_SAMPLES);
  for (let i = 0; i < total; i++) {
    frame.fill(0);
    const from = (i - lead) * OPUS_FRAME_SAMPLES;
    if (from >= 0 && from < speech48k.length) {
      frame.set(speech48k.subarray(from, from + OPUS_FRAME_SAMPLES));
    }
    out.push(encoder.encode(frame));
  }
  encoder.close();
  return out;
}

function input(sampleRate: number, echoGuard: EchoGuard = "raise") {
  const events: string[] = [];
  const utterances: { samples: number; ends: string[] }[] = [];
  let current: { samples: number; ends: string[] } | undefined;
  const reply = { replyPlaying: false };
  const audio = new AudioInput({
    model: new EnergyModel({ threshold: 300 }),
    silenceFrames: 15,
    sampleRate,
    echoGuard,
    reply,
  }, {
    utteranceStart: () => {
      events.push("start");
      current = { samples: 0, ends: [] };
      utterances.push(current);
    },
    utteranceAudio: (frame) => void (current!.samples += frame.length),
    utteranceEnd: (reason) => {
      events.push(`end:${reason}`);
      current!.ends.push(reason);
    },
  });
  return { audio, events, utterances, reply };
}

Deno.test("libopus decodes straight to the utterance rate; 8 kHz utterances are decoded at the VAD's 16 kHz", () => {
  assert.deepEqual(
    [8000, 16000, 22050, 24000, 44100, 48000].map(decodeRate),
    [16000, 16000, 24000, 24000, 48000, 48000],
  );
  const { audio } = input(16000);
  assert.equal(audio.rate, 16000);
  audio.close();
});

for (const rate of [16000, 48000, 24000, 8000]) {
  Deno.test(`speech becomes exactly one utterance at ${rate} Hz of about its length`, () => {
    const { audio, events, utterances } = input(rate);
    let at = 0;
    for (const packet of packets()) audio.push(packet, at += 20);
    assert.deepEqual(events, ["start", "end:silence"]);
    const seconds = utterances[0].samples / rate;
    // Pre-roll 0.3 s before, the 0.3 s silence window after; the VAD trims espeak's quiet ends.
    assert.ok(seconds > speechSeconds - 0.5 && seconds < speechSeconds + 0.7, `${seconds} s`);
    audio.close();
  });
}

/**
 * Not Opus: a TOC byte with code 3 and a frame count of 0 (RFC 6716 3.2.5). Random bytes would
 * sometimes be valid Opus of 60 or 120 ms and stretch a pause past the silence window.
 */
const GARBAGE = Uint8Array.of(0xfb, 0x00, 0x13, 0x37, 0x42, 0x99, 0x07);

Deno.test("lost, reordered-away and garbage packets are concealed, not fatal", () => {
  const { audio, events } = input(16000);
  let at = 0;
  packets().forEach((packet, i) => {
    at += 20;
    if (i % 10 === 3) audio.push(null, at);
    else if (i % 17 === 5) audio.push(GARBAGE, at);
    else audio.push(packet, at);
  });
  assert.deepEqual(events, ["start", "end:silence"]);
  assert.ok(audio.stats.concealed > 10);
  assert.ok(audio.stats.undecodable > 3, `${audio.stats.undecodable} undecodable`);
  audio.close();
});

Deno.test("half-duplex echo guard ignores the microphone while a reply plays", () => {
  const { audio, events, reply } = input(16000, "half_duplex");
  reply.replyPlaying = true;
  let at = 0;
  for (const packet of packets()) audio.push(packet, at += 20);
  assert.deepEqual(events, []);
  reply.replyPlaying = false;
  for (const packet of packets()) audio.push(packet, at += 20);
  assert.deepEqual(events, ["start", "end:silence"]);
  audio.close();
});

Deno.test("a device that stops sending mid-utterance is heard as silence", () => {
  const { audio, events } = input(16000);
  const all = packets(0.2);
  let at = 0;
  for (const packet of all.slice(0, all.length - 60)) audio.push(packet, at += 20);
  assert.deepEqual(events, ["start"]);
  audio.pushSilence(20, at + 400);
  assert.deepEqual(events, ["start", "end:silence"]);
  audio.close();
});

Deno.test("a quiet room is gated: no resampling or VAD until someone speaks", () => {
  const { audio, events } = input(16000);
  const encoder = new OpusEncoder();
  const noise = new Float32Array(OPUS_FRAME_SAMPLES);
  let at = 0;
  for (let i = 0; i < 100; i++) {
    noise.forEach((_, j) => (noise[j] = (Math.random() - 0.5) * 0.004));
    audio.push(encoder.encode(noise), at += 20);
  }
  encoder.close();
  assert.ok(audio.stats.gated >= 95, `${audio.stats.gated} of 100 frames gated`);
  for (const packet of packets()) audio.push(packet, at += 20);
  assert.deepEqual(events, ["start", "end:silence"], "speech after the gate still detected");
  audio.close();
});

Deno.test("a noisy room above the fixed gate is gated against its own noise floor; speech over it is not", () => {
  const { audio, events } = input(16000);
  const encoder = new OpusEncoder();
  // White noise at about -40 dBFS: above the fixed -46 dBFS gate, like a fan or a busy street.
  const level = 0.01 * Math.sqrt(12);
  const noisy = (frame: Float32Array) => frame.map((v) => v + (Math.random() - 0.5) * level);
  let at = 0;
  for (let i = 0; i < 150; i++) {
    audio.push(encoder.encode(noisy(new Float32Array(OPUS_FRAME_SAMPLES))), at += 20);
  }
  const learning = 50; // the first second has no floor yet
  assert.ok(
    audio.stats.gated >= (150 - learning) * 0.9,
    `${audio.stats.gated} of ${150 - learning} noise frames gated after the first second`,
  );
  assert.deepEqual(events, [], "noise alone is no utterance");
  const speechFrames = Math.ceil(speech48k.length / OPUS_FRAME_SAMPLES) + 50;
  for (let i = 0; i < speechFrames; i++) {
    const frame = new Float32Array(OPUS_FRAME_SAMPLES);
    frame.set(speech48k.subarray(i * OPUS_FRAME_SAMPLES, (i + 1) * OPUS_FRAME_SAMPLES));
    audio.push(encoder.encode(noisy(frame)), at += 20);
  }
  encoder.close();
  assert.deepEqual(events, ["start", "end:silence"], "speech over the noise is one utterance");
  audio.close();
});

/**
 * A reply of `replyFrames` frames (the speech, repeated) sent as the reference; the mic hears it
 * `gain` × louder (an echo 120 ms late), plus the user's speech from frame `userFrom`, if given.
 */
function echoRun(echoGuard: EchoGuard, gain: number, userFrom?: number) {
  const run = input(16000, echoGuard);
  const encoder = new OpusEncoder();
  const delayFrames = 6;
  const speechFrames = Math.floor(speech48k.length / OPUS_FRAME_SAMPLES);
  const replyFrames = speechFrames * 2;
  const replyFrame = (i: number) => {
    const k = i % speechFrames;
    return speech48k.subarray(k * OPUS_FRAME_SAMPLES, (k + 1) * OPUS_FRAME_SAMPLES);
  };
  run.reply.replyPlaying = true;
  const mic = new Float32Array(OPUS_FRAME_SAMPLES);
  for (let i = 0; i < replyFrames + 50; i++) {
    const at = i * 20;
    if (i < replyFrames) run.audio.reference(replyFrame(i), at);
    else run.reply.replyPlaying = false;
    mic.fill(0);
    const echoed = i - delayFrames;
    if (echoed >= 0 && echoed < replyFrames) {
      const ref = replyFrame(echoed);
      for (let j = 0; j < mic.length; j++) mic[j] = ref[j] * gain;
    }
    if (userFrom !== undefined && i >= userFrom && i - userFrom < speechFrames) {
      const user = replyFrame(i - userFrom);
      for (let j = 0; j < mic.length; j++) mic[j] += user[j];
    }
    run.audio.push(encoder.encode(mic), at);
  }
  encoder.close();
  run.audio.close();
  return run;
}

Deno.test("estimate: the reply's echo at -10 dB is not speech (with guard off it would be)", () => {
  const minus10dB = 10 ** (-10 / 20);
  const off = echoRun("off", minus10dB);
  assert.ok(off.events.includes("start"), "control: the echo alone starts an utterance");
  const estimate = echoRun("estimate", minus10dB);
  assert.deepEqual(estimate.events, [], "no utterance from the echo");
  assert.ok(estimate.audio.stats.echo > 50, `${estimate.audio.stats.echo} frames called echo`);
  const path = estimate.audio.echoEstimate!;
  assert.ok(path.converged, "the echo path converged");
  assert.ok(Math.abs(path.delayMs - 120) <= 10, `delay ${path.delayMs} ms`);
  assert.ok(Math.abs(path.gainDb - -10) <= 3, `gain ${path.gainDb} dB`);
});

Deno.test("estimate: the user over the reply at its level is heard (a real barge-in)", () => {
  const run = echoRun("estimate", 10 ** (-10 / 20), 150);
  assert.equal(run.events[0], "start", `events ${run.events.join(",")}`);
});

/** `seconds` of continuous speech (the phrase over and over, its quiet ends trimmed). */
function longSpeechPackets(seconds: number): Uint8Array[] {
  let from = 0;
  let to = speech48k.length;
  const loud = (i: number) => Math.abs(speech48k[i]) > 0.02;
  while (from < to && !loud(from)) from++;
  while (to > from && !loud(to - 1)) to--;
  const phrase = speech48k.subarray(from, to);
  const encoder = new OpusEncoder();
  const frames = seconds * 50;
  const out: Uint8Array[] = [];
  const frame = new Float32Array(OPUS_FRAME_SAMPLES);
  for (let i = 0; i < frames + 50; i++) {
    frame.fill(0);
    if (i < frames) {
      for (let j = 0; j < OPUS_FRAME_SAMPLES; j++) {
        frame[j] = phrase[(i * OPUS_FRAME_SAMPLES + j) % phrase.length];
      }
    }
    out.push(encoder.encode(frame));
  }
  encoder.close();
  return out;
}

Deno.test("a 36 s request: one utterance when the server takes long turns, else parts flagged as continuing", () => {
  const packets36 = longSpeechPackets(36);
  for (const cap of [120_000, 30_000]) {
    const starts: boolean[] = [];
    const ends: string[] = [];
    let samples = 0;
    const audio = new AudioInput({
      model: new EnergyModel({ threshold: 300 }),
      silenceFrames: 15,
      sampleRate: 16000,
      echoGuard: "estimate",
      maxUtteranceMs: () => cap,
    }, {
      utteranceStart: (_at, info) => void starts.push(info?.afterCap ?? false),
      utteranceAudio: (frame) => void (samples += frame.length),
      utteranceEnd: (reason) => void ends.push(reason),
    });
    let at = 0;
    for (const packet of packets36) audio.push(packet, at += 20);
    audio.close();
    const seconds = samples / 16000;
    assert.ok(seconds >= 36, `${seconds} s of audio in all, none lost at a cut`);
    if (cap === 120_000) {
      assert.deepEqual(starts, [false], "one utterance");
      assert.deepEqual(ends, ["silence"]);
    } else {
      assert.deepEqual(starts, [false, true], "the second part continues the first");
      assert.deepEqual(ends, ["max_length", "silence"]);
    }
  }
});

Deno.test("a turn-taking decision may lengthen the VAD's silence window and end the utterance itself", () => {
  const { audio, events } = input(16000, "estimate");
  audio.silenceFrames = 150; // 3 s: the VAD alone no longer ends it after 300 ms
  assert.equal(audio.silenceFrames, 150);
  let at = 0;
  for (const packet of packets()) audio.push(packet, at += 20); // ~1.3 s of silence after it
  assert.deepEqual(events, ["start"], "still open after the silence");
  assert.equal(audio.endUtterance(), true);
  assert.deepEqual(events, ["start", "end:silence"]);
  assert.equal(audio.endUtterance(), false);
  assert.throws(() => (audio.silenceFrames = 0), /silence frames 0/);
  audio.close();
});

Deno.test("after a late playback clock, mic frames are checked for echo that much longer", () => {
  const echoFrames: number[] = [];
  for (const lateMs of [0, 150]) {
    const audio = new AudioInput({
      model: new EnergyModel({ threshold: 300 }),
      silenceFrames: 15,
      sampleRate: 16000,
      echoGuard: "estimate",
      reply: { replyPlaying: false },
    }, { utteranceStart() {}, utteranceAudio() {}, utteranceEnd() {} });
    const reply = new Float32Array(OPUS_FRAME_SAMPLES).fill(0.3);
    let at = 0;
    for (let f = 0; f < 50; f++) audio.reference(reply, at += 20);
    audio.reference(reply, at += 20 + lateMs); // the clock woke up late
    // Quiet mic frames just past the hangover of a punctual clock (echo could still be in them).
    const encoder = new OpusEncoder();
    const tone = new Float32Array(OPUS_FRAME_SAMPLES).map((_, i) => 0.1 * Math.sin(i / 8));
    for (let f = 0; f < 5; f++) {
      audio.push(encoder.encode(tone), at + ECHO_HANGOVER_MS + 20 + f * 20);
    }
    encoder.close();
    echoFrames.push(audio.stats.echo);
    audio.close();
  }
  assert.equal(echoFrames[0], 0, "a punctual clock: past the hangover, no echo is predicted");
  assert.ok(echoFrames[1] > 0, `a late clock: still checked (${echoFrames[1]} echo frames)`);
});
