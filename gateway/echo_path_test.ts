import assert from "node:assert/strict";
import { resample, rms } from "../shared/audio.ts";
import { speak } from "../tests/helpers/speech.ts";
import { EchoPath, type EchoVerdict, MAX_SPREAD_MS, MIN_SPEECH_DB } from "./echo_path.ts";

/** The gateway's frames: 20 ms at 48 kHz. */
const RATE = 48000;
const FRAME = 960;
/** The VAD needs 5 voiced frames in a row (echo_guard.ts START_FRAMES): that is a barge-in. */
const BARGE_IN_FRAMES = 5;
/** Issue 9 target: a real barge-in at normal level stops the reply within 300 ms. */
const BARGE_IN_TARGET_MS = 300;

/** espeak-ng speech at 48 kHz, normalized to -20 dBFS RMS (a TTS reply's usual level). */
async function voice(text: string, name: string): Promise<Float32Array> {
  const wav = await speak(text, { voice: name });
  const samples = resample(wav.samples, wav.rate, RATE);
  const gain = 0.1 / rms(samples);
  for (let i = 0; i < samples.length; i++) samples[i] *= gain;
  return samples;
}

const reply = await voice(
  "The weather today is mostly sunny with a light breeze from the west, and temperatures " +
    "will reach about twenty degrees in the afternoon before clouds arrive in the evening.",
  "en-us",
);
const users = [
  await voice("stop, wait, I want to ask something else please", "en-gb"),
  await voice("no no, turn off the kitchen lights instead", "en-us+f3"),
  await voice("hey, what time is it", "en-gb-x-rp"),
];

interface Scenario {
  /** Echo level relative to the reply as sent, dB; undefined: the device cancels its echo. */
  echoDb?: number;
  delayMs?: number;
  /** The user's speech, when it starts (ms after the reply) and its level relative to the reply. */
  user?: Float32Array;
  userAtMs?: number;
  userDb?: number;
  /** Microphone frames stamped with up to ± this much arrival jitter, ms. */
  jitterMs?: number;
  /** The device's volume goes up by `stepDb` at `stepAtMs` of the reply. */
  stepAtMs?: number;
  stepDb?: number;
}

/**
 * The microphone of a device without echo cancellation: its speaker (a one-pole low-pass and a
 * soft saturation, as small speakers are) heard after `delayMs` at `echoDb`, with two room
 * reflections (25 ms at -10 dB, 60 ms at -16 dB), -66 dBFS of noise, and the user if given.
 * Returns the microphone and the user's onset (first sample above -40 dBFS), ms.
 */
function microphone(s: Scenario): { mic: Float32Array; onsetMs: number } {
  const total = reply.length + RATE;
  const mic = new Float32Array(total);
  if (s.echoDb !== undefined) {
    const gain = 10 ** (s.echoDb / 20);
    const delay = Math.round(((s.delayMs ?? 0) * RATE) / 1000);
    let low = 0;
    const taps: [number, number][] = [[0, 1], [Math.round(0.025 * RATE), 0.3], [
      Math.round(0.06 * RATE),
      0.15,
    ]];
    const step = 10 ** ((s.stepDb ?? 0) / 20);
    const stepAt = ((s.stepAtMs ?? Infinity) * RATE) / 1000;
    for (let i = 0; i < reply.length; i++) {
      low += 0.6 * (Math.tanh(1.5 * reply[i]) / 1.5 - low);
      const level = i >= stepAt ? gain * step : gain;
      for (const [offset, tap] of taps) {
        const at = i + delay + offset;
        if (at < total) mic[at] += level * tap * low;
      }
    }
  }
  let onsetMs = Infinity;
  if (s.user) {
    const start = Math.round(((s.userAtMs ?? 0) * RATE) / 1000);
    const gain = 10 ** ((s.userDb ?? 0) / 20);
    for (let i = 0; i < s.user.length && start + i < total; i++) {
      mic[start + i] += gain * s.user[i];
      if (onsetMs === Infinity && Math.abs(gain * s.user[i]) > 0.01) {
        onsetMs = ((start + i) / RATE) * 1000;
      }
    }
  }
  let seed = 7;
  for (let i = 0; i < total; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    mic[i] += (seed / 0x7fffffff - 0.5) * 0.001;
  }
  return { mic, onsetMs };
}

interface Run {
  echo: EchoPath;
  verdicts: EchoVerdict[];
  converged: boolean[];
  onsetMs: number;
}

/** Feeds the reply as reference and the microphone frame by frame on one 20 ms clock. */
function run(s: Scenario): Run {
  const { mic, onsetMs } = microphone(s);
  const echo = new EchoPath();
  const verdicts: EchoVerdict[] = [];
  const converged: boolean[] = [];
  let seed = 11;
  const jitter = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return (seed / 0x7fffffff - 0.5) * 2 * (s.jitterMs ?? 0);
  };
  for (let f = 0; (f + 1) * FRAME <= mic.length; f++) {
    const at = f * 20;
    if ((f + 1) * FRAME <= reply.length) {
      echo.reference(reply.subarray(f * FRAME, (f + 1) * FRAME), at);
    }
    const decision = echo.microphone(mic.subarray(f * FRAME, (f + 1) * FRAME), at + jitter());
    verdicts.push(decision.verdict);
    converged.push(decision.converged);
  }
  return { echo, verdicts, converged, onsetMs };
}

/** Times (ms) at which a run of {@link BARGE_IN_FRAMES} `speech` frames completes. */
function bargeIns(verdicts: EchoVerdict[]): number[] {
  const at: number[] = [];
  let runLength = 0;
  verdicts.forEach((v, f) => {
    runLength = v === "speech" ? runLength + 1 : 0;
    if (runLength === BARGE_IN_FRAMES) at.push((f + 1) * 20);
  });
  return at;
}

for (const echoDb of [-6, -10, -14, -20]) {
  Deno.test(`echo at ${echoDb} dB, 50-250 ms: path found, no frame run counts as barge-in`, () => {
    for (const delayMs of [50, 153, 250]) {
      const { echo, verdicts, converged } = run({ echoDb, delayMs });
      const estimate = echo.estimate;
      assert.ok(estimate.converged, `${delayMs} ms: not converged`);
      // The speaker's low-pass and reflections shift the envelope's centre a few ms late.
      assert.ok(
        Math.abs(estimate.delayMs - delayMs) <= 10,
        `${delayMs} ms: delay ${estimate.delayMs}`,
      );
      assert.ok(Math.abs(estimate.gainDb - echoDb) <= 3, `${delayMs} ms: gain ${estimate.gainDb}`);
      assert.deepEqual(bargeIns(verdicts), [], `${echoDb} dB / ${delayMs} ms`);
      // Converged within the first 2 s of reply, and stayed so.
      const first = converged.indexOf(true);
      assert.ok(first > 0 && first * 20 <= 2000, `converged at ${first * 20} ms`);
      assert.ok(converged.slice(first).every(Boolean));
    }
  });
}

Deno.test("arrival jitter of ±10 ms on the microphone frames: still no barge-in", () => {
  for (const echoDb of [-6, -10]) {
    const { echo, verdicts } = run({ echoDb, delayMs: 150, jitterMs: 10 });
    assert.ok(echo.estimate.converged);
    assert.ok(Math.abs(echo.estimate.delayMs - 150) <= 15, `delay ${echo.estimate.delayMs}`);
    assert.deepEqual(bargeIns(verdicts), []);
  }
});

Deno.test("the device's volume going up 6 dB mid-reply is followed, not taken for the user", () => {
  const { echo, verdicts } = run({ echoDb: -14, delayMs: 150, stepAtMs: 4000, stepDb: 6 });
  assert.deepEqual(bargeIns(verdicts), []);
  assert.ok(echo.estimate.gainDb > -12, `gain ${echo.estimate.gainDb} after the step`);
});

Deno.test("before convergence the verdict is conservative: a user at reply level cannot barge in", () => {
  const { verdicts, converged, onsetMs } = run({
    echoDb: -10,
    delayMs: 150,
    user: users[0],
    userAtMs: 100,
  });
  const end = Math.ceil((onsetMs + 600) / 20);
  assert.ok(converged.slice(0, end).every((c) => !c), "not trusted while the user talks at once");
  assert.deepEqual(bargeIns(verdicts.slice(0, end)), []);
  // Speech well above the reply (+12 dB: a raised voice next to the device) gets through even then.
  const loud = run({ echoDb: -10, delayMs: 150, user: users[0], userAtMs: 100, userDb: 12 });
  assert.ok(bargeIns(loud.verdicts).some((t) => t - loud.onsetMs <= BARGE_IN_TARGET_MS));
});

Deno.test("the user over the reply at normal level barges in within 300 ms (echo -10 dB)", () => {
  for (const [i, user] of users.entries()) {
    for (const userAtMs of [2500, 4000]) {
      const { verdicts, converged, onsetMs } = run({ echoDb: -10, delayMs: 150, user, userAtMs });
      const first = bargeIns(verdicts).find((t) => t > onsetMs);
      assert.ok(first !== undefined, `voice ${i} at ${userAtMs} ms: never`);
      const latency = first - onsetMs;
      assert.ok(latency <= BARGE_IN_TARGET_MS, `voice ${i} at ${userAtMs} ms: ${latency} ms`);
      assert.ok(bargeIns(verdicts).every((t) => t > onsetMs), "no false barge-in before");
      // Double talk does not throw the estimate away.
      assert.ok(converged.slice(Math.ceil(onsetMs / 20)).every(Boolean));
    }
  }
});

Deno.test("a device that cancels its own echo: no echo predicted, the user gets through", () => {
  const quiet = run({});
  assert.ok(quiet.echo.estimate.converged);
  assert.ok(quiet.echo.estimate.gainDb <= -35, `gain ${quiet.echo.estimate.gainDb}`);
  for (const user of users) {
    const { verdicts, onsetMs } = run({ user, userAtMs: 2500 });
    const first = bargeIns(verdicts).find((t) => t > onsetMs);
    assert.ok(first !== undefined && first - onsetMs <= BARGE_IN_TARGET_MS, `${first}`);
  }
});

Deno.test("frames below the speech floor are never speech", () => {
  const echo = new EchoPath();
  const frame = new Float32Array(FRAME).fill(10 ** ((MIN_SPEECH_DB - 3) / 20));
  const decision = echo.microphone(frame, 0);
  assert.equal(decision.verdict, "echo");
  assert.ok(Math.abs(decision.micDb - (MIN_SPEECH_DB - 3)) < 0.01);
  assert.equal(decision.echoDb, -Infinity);
  frame.fill(0.05);
  assert.equal(echo.microphone(frame, 20).verdict, "speech", "no reply: nothing to echo");
});

Deno.test("reset forgets the path", () => {
  const { echo } = run({ echoDb: -10, delayMs: 150 });
  assert.ok(echo.estimate.converged);
  echo.reset();
  assert.equal(echo.estimate.converged, false);
});

Deno.test("bad options are named", () => {
  assert.throws(() => new EchoPath({ marginDb: -1 }), /marginDb -1/);
  assert.throws(() => new EchoPath({ maxDelayMs: 5000 }), /maxDelayMs 5000/);
  assert.throws(() => new EchoPath({ memoryMs: 10 }), /memoryMs 10/);
});

Deno.test("per-frame cost (printed; 40 devices at 50 frames/s)", () => {
  const { mic } = microphone({ echoDb: -10, delayMs: 150 });
  const echo = new EchoPath();
  const frames = Math.floor(reply.length / FRAME);
  // Warm-up passes (the JIT), then timed passes over the same audio on a continuing clock.
  let at = 0;
  const pass = () => {
    for (let f = 0; f < frames; f++, at += 20) {
      echo.reference(reply.subarray(f * FRAME, (f + 1) * FRAME), at);
      echo.microphone(mic.subarray(f * FRAME, (f + 1) * FRAME), at);
    }
  };
  for (let warm = 0; warm < 5; warm++) pass();
  // The median pass: this machine is shared, a pass that lost the CPU says nothing.
  const passes: number[] = [];
  for (let p = 0; p < 9; p++) {
    const started = performance.now();
    pass();
    passes.push(performance.now() - started);
  }
  passes.sort((a, b) => a - b);
  const perFrameUs = (passes[4] / frames) * 1000;
  const coreShare = (perFrameUs * 50 * 40) / 1e6;
  console.log(
    `echo path: ${perFrameUs.toFixed(1)} µs per 20 ms frame (reference + microphone, 48 kHz); ` +
      `40 devices × 50 frames/s = ${(coreShare * 100).toFixed(2)} % of one core`,
  );
  assert.ok(echo.estimate.converged);
});

/**
 * A starved gateway: its playback clock wakes up late (a `late` ms stall every ~`everyMs`)
 * and catches up in a burst. The reference times follow device_session.ts (each frame sent at
 * max(now, previous + 20 ms)); the device plays from a 60 ms jitter buffer, so it absorbs most
 * of the lateness and plays on the sender's original cadence, underrunning only when a frame is
 * later than its buffer. Returns the verdicts of the microphone frames (echo at `echoDb`,
 * 150 ms acoustic+network delay, the user if given).
 */
function starved(
  options: {
    echoDb: number;
    late: number;
    everyMs: number;
    user?: Float32Array;
    userAtMs?: number;
  },
): { verdicts: EchoVerdict[]; onsetMs: number } {
  const bufferMs = 60;
  const delayMs = 150;
  const frames = Math.floor(reply.length / FRAME);
  let seed = 5;
  const random = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  // The reply comes in talkspurts (TTS sentences) of 1.5 s with 200 ms between them. When each
  // frame leaves (the clock's due time, or later after a stall) and its reference time.
  const spurtFrames = 75;
  const gapMs = 200;
  const sentAt: number[] = [];
  const referenceAt: number[] = [];
  const playAt: number[] = [];
  const spurtStart: boolean[] = [];
  let stallUntil = -1;
  let previous = -Infinity;
  let play = 0;
  for (let f = 0; f < frames; f++) {
    const spurt = Math.floor(f / spurtFrames);
    const first = f % spurtFrames === 0;
    const due = f * 20 + spurt * gapMs;
    if (!first && due > stallUntil && random() < 20 / options.everyMs) {
      stallUntil = due + options.late;
    }
    const sent = stallUntil > due ? stallUntil : due;
    sentAt.push(sent);
    previous = first ? sent : Math.max(sent, previous + 20);
    referenceAt.push(previous);
    spurtStart.push(first);
    // The device's playout: a 60 ms buffer from the talkspurt's first frame, on its cadence;
    // a frame later than the buffer shifts it (an underrun).
    play = first ? sent + bufferMs : Math.max(play + 20, sent);
    playAt.push(play);
  }
  const total = Math.ceil(((playAt[frames - 1] + delayMs + 1000) * RATE) / 1000);
  const mic = new Float32Array(total);
  const gain = 10 ** (options.echoDb / 20);
  for (let f = 0; f < frames; f++) {
    const start = Math.round(((playAt[f] + delayMs) * RATE) / 1000);
    for (let i = 0; i < FRAME; i++) {
      const at = start + i;
      if (at < total) mic[at] += gain * reply[f * FRAME + i];
    }
  }
  let onsetMs = Infinity;
  if (options.user) {
    const start = Math.round(((options.userAtMs ?? 0) * RATE) / 1000);
    for (let i = 0; i < options.user.length && start + i < total; i++) {
      mic[start + i] += options.user[i];
      if (onsetMs === Infinity && Math.abs(options.user[i]) > 0.01) {
        onsetMs = ((start + i) / RATE) * 1000;
      }
    }
  }
  for (let i = 0; i < total; i++) mic[i] += (random() - 0.5) * 0.001;
  const echo = new EchoPath();
  const verdicts: EchoVerdict[] = [];
  let next = 0;
  for (let m = 0; (m + 1) * FRAME <= total; m++) {
    const at = m * 20;
    // Every reference frame sent by now goes in first, as on the gateway's one event loop.
    while (next < frames && sentAt[next] <= at) {
      const frame = reply.subarray(next * FRAME, (next + 1) * FRAME);
      echo.reference(frame, referenceAt[next], spurtStart[next]);
      next++;
    }
    verdicts.push(echo.microphone(mic.subarray(m * FRAME, (m + 1) * FRAME), at).verdict);
  }
  return { verdicts, onsetMs };
}

Deno.test("a starved playback clock (late ticks, catch-up bursts) does not make echo a barge-in", () => {
  const falseBargeIns: string[] = [];
  for (const echoDb of [-6, -10, -14]) {
    for (const late of [40, 60, 80, 120]) {
      for (const everyMs of [300, 1000]) {
        const { verdicts } = starved({ echoDb, late, everyMs });
        const at = bargeIns(verdicts);
        if (at.length > 0) {
          falseBargeIns.push(`${echoDb} dB, ${late} ms every ${everyMs} ms: ${at}`);
        }
      }
    }
  }
  assert.deepEqual(falseBargeIns, []);
});

Deno.test("with a starved playback clock the user over the reply still barges in within 300 ms", () => {
  for (const [i, user] of users.entries()) {
    for (const userAtMs of [2500, 4000]) {
      const { verdicts, onsetMs } = starved({
        echoDb: -10,
        late: 80,
        everyMs: 300,
        user,
        userAtMs,
      });
      const first = bargeIns(verdicts).find((t) => t > onsetMs);
      assert.ok(first !== undefined, `voice ${i} at ${userAtMs} ms: never`);
      assert.ok(first - onsetMs <= BARGE_IN_TARGET_MS, `voice ${i}: ${first - onsetMs} ms`);
      assert.ok(bargeIns(verdicts).every((t) => t > onsetMs), "no false barge-in before");
    }
  }
});

Deno.test("the window widens by the playback lateness, not by a talkspurt's start", () => {
  const echo = new EchoPath();
  const frame = reply.subarray(0, FRAME);
  for (let f = 0; f < 50; f++) echo.reference(frame, f * 20);
  assert.equal(echo.spreadMs, 0, "a punctual clock: no widening");
  echo.reference(frame, 50 * 20 + 500, true);
  assert.equal(echo.spreadMs, 0, "a new talkspurt after the queue ran dry is not lateness");
  echo.reference(frame, 51 * 20 + 500 + 70);
  assert.equal(echo.spreadMs, 70, "a tick 70 ms late");
  echo.reference(frame, 52 * 20 + 500 + 70 + 1000);
  assert.equal(echo.spreadMs, MAX_SPREAD_MS, "capped");
  // Forgotten over MEMORY_MS (3 s) of punctual frames.
  let at = 53 * 20 + 1570;
  for (let f = 0; f < 300; f++) echo.reference(frame, at += 20);
  assert.ok(echo.spreadMs < MAX_SPREAD_MS * 0.2, `after 6 s: ${echo.spreadMs} ms`);
  echo.reset();
  assert.equal(echo.spreadMs, 0);
});
