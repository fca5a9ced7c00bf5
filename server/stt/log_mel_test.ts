import assert from "node:assert/strict";
import {
  hzToMel,
  LogMelOptionError,
  LogMelSpectrogram,
  melFilterbank,
  melToHz,
  N_MELS,
  WINDOW_FRAMES,
} from "./log_mel.ts";

const RATE = 16_000;
/** Hz between adjacent bins of a 400-point DFT at 16 kHz. */
const BIN_HZ = RATE / 400;

function sine(hz: number, seconds: number, amplitude: number): Float32Array {
  const out = new Float32Array(Math.round(seconds * RATE));
  for (let i = 0; i < out.length; i++) out[i] = amplitude * Math.sin((2 * Math.PI * hz * i) / RATE);
  return out;
}

function noise(length: number, seed: number, amplitude: number): Float32Array {
  const out = new Float32Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = amplitude * (state / 2 ** 31 - 1);
  }
  return out;
}

/**
 * Whisper's front end written the slow, obvious way, independently of log_mel.ts's buffers and
 * its Bluestein DFT: per-sample reflect indexing, a naive 400-point DFT, dense filterbank sums.
 * Returns log10 mel energies [nMels][frames] before the clamp/normalize step.
 */
function naiveLogMel(samples: Float32Array, frames: number): number[][] {
  const length = frames * 160;
  const window = (i: number) => (i >= 0 && i < samples.length && i < length ? samples[i] : 0);
  const reflect = (i: number) => {
    if (i < 0) return window(-i);
    if (i >= length) return window(2 * (length - 1) - i);
    return window(i);
  };
  const { weights, nBins } = melFilterbank();
  const out: number[][] = Array.from({ length: N_MELS }, () => new Array(frames).fill(0));
  for (let t = 0; t < frames; t++) {
    const power = new Array(nBins).fill(0);
    for (let k = 0; k < nBins; k++) {
      let re = 0, im = 0;
      for (let n = 0; n < 400; n++) {
        const x = reflect(t * 160 - 200 + n) * (0.5 - 0.5 * Math.cos((2 * Math.PI * n) / 400));
        re += x * Math.cos((2 * Math.PI * k * n) / 400);
        im -= x * Math.sin((2 * Math.PI * k * n) / 400);
      }
      power[k] = re * re + im * im;
    }
    for (let m = 0; m < N_MELS; m++) {
      let energy = 0;
      for (let k = 0; k < nBins; k++) energy += weights[m * nBins + k] * power[k];
      out[m][t] = Math.log10(Math.max(energy, 1e-10));
    }
  }
  return out;
}

Deno.test("hzToMel follows Slaney's scale: linear to 1 kHz (15 mel), log above", () => {
  assert.equal(hzToMel(0), 0);
  assert.ok(Math.abs(hzToMel(200) - 3) < 1e-12);
  assert.ok(Math.abs(hzToMel(1000) - 15) < 1e-12);
  // 6.4 × 1 kHz is 27 log steps above 1 kHz by definition of the scale.
  assert.ok(Math.abs(hzToMel(6400) - 42) < 1e-12);
  assert.ok(Math.abs(hzToMel(8000) - (15 + (27 * Math.log(8)) / Math.log(6.4))) < 1e-12);
  for (const hz of [0, 123, 999, 1000, 2500, 8000]) {
    assert.ok(Math.abs(melToHz(hzToMel(hz)) - hz) < 1e-9);
  }
});

Deno.test("melFilterbank: 80 filters over 201 bins, centers equally spaced in mel up to 8 kHz", () => {
  const bank = melFilterbank();
  assert.equal(bank.nMels, 80);
  assert.equal(bank.nBins, 201);
  assert.equal(bank.weights.length, 80 * 201);
  const step = hzToMel(8000) / 81;
  for (let i = 0; i < 82; i++) assert.ok(Math.abs(hzToMel(bank.edgesHz[i]) - i * step) < 1e-9);
  assert.equal(bank.edgesHz[0], 0);
  assert.ok(Math.abs(bank.edgesHz[81] - 8000) < 1e-6);
});

Deno.test("melFilterbank: each filter is a triangle from edge m to edge m+2 peaking at m+1", () => {
  const bank = melFilterbank();
  for (let m = 0; m < 80; m++) {
    const row = Array.from(bank.weights.subarray(m * 201, (m + 1) * 201));
    const lo = bank.edgesHz[m], center = bank.edgesHz[m + 1], hi = bank.edgesHz[m + 2];
    const height = 2 / (hi - lo);
    for (let k = 0; k < 201; k++) {
      const hz = k * BIN_HZ;
      // Independent reconstruction of the triangle's value at this bin's frequency.
      const expected = hz <= lo || hz >= hi
        ? 0
        : hz <= center
        ? (height * (hz - lo)) / (center - lo)
        : (height * (hi - hz)) / (hi - center);
      assert.ok(Math.abs(row[k] - expected) < 1e-6, `filter ${m} bin ${k}`);
    }
    const nonZero = row.flatMap((w, k) => (w > 0 ? [k] : []));
    assert.ok(nonZero.length > 0, `filter ${m} is empty`);
    assert.equal(nonZero.at(-1)! - nonZero[0] + 1, nonZero.length, `filter ${m} has a gap`);
    assert.equal(bank.firstBin[m], nonZero[0]);
    assert.equal(bank.endBin[m], nonZero.at(-1)! + 1);
    const peak = row.indexOf(Math.max(...row));
    // The largest sampled weight is at one of the two bins around the center frequency.
    assert.ok(Math.abs(peak * BIN_HZ - center) < BIN_HZ, `filter ${m} peaks at bin ${peak}`);
  }
});

Deno.test("melFilterbank: Slaney normalization gives every triangle unit area in Hz", () => {
  const bank = melFilterbank();
  for (let m = 0; m < 80; m++) {
    const width = bank.edgesHz[m + 2] - bank.edgesHz[m];
    // Only filters spanning many bins have a sampled sum close to the continuous area.
    if (width < 20 * BIN_HZ) continue;
    let sum = 0;
    for (let k = 0; k < 201; k++) sum += bank.weights[m * 201 + k];
    assert.ok(Math.abs(sum * BIN_HZ - 1) < 0.01, `filter ${m}: area ${sum * BIN_HZ}`);
  }
  // Filter 0 (0 → 37.2 → 74.5 Hz) reaches bin 1 (40 Hz) on its falling edge: librosa's value.
  const e = bank.edgesHz;
  assert.ok(Math.abs(bank.weights[1] - ((e[2] - 40) / (e[2] - e[1])) * (2 / e[2])) < 1e-7);
});

Deno.test("LogMelSpectrogram: silence is the floor everywhere, (log10(1e-10) + 4) / 4 = -1.5", () => {
  const features = new LogMelSpectrogram().compute(new Float32Array(RATE));
  assert.equal(features.length, N_MELS * WINDOW_FRAMES);
  assert.ok(features.every((v) => v === -1.5));
});

Deno.test("LogMelSpectrogram: a 2 kHz sine peaks in the mel band centered nearest 2 kHz", () => {
  const frontEnd = new LogMelSpectrogram();
  const features = frontEnd.compute(sine(2000, 1, 0.5));
  const centers = Array.from(frontEnd.filterbank.edgesHz.subarray(1, 81));
  const nearest = centers.reduce(
    (best, hz, m) => Math.abs(hz - 2000) < Math.abs(centers[best] - 2000) ? m : best,
    0,
  );
  assert.equal(nearest, 44); // mel(2 kHz) = 25.08 ≈ 45 steps of 0.5586 mel
  const frame = 50; // mid-signal, away from the edges
  const column = Array.from({ length: N_MELS }, (_, m) => features[m * WINDOW_FRAMES + frame]);
  assert.equal(column.indexOf(Math.max(...column)), nearest);
  // The loudest value is the global max, so after normalization it is (max + 4) / 4 and the
  // quietest kept values are exactly 2 below it (8 log10 units / 4).
  const max = features.reduce((a, b) => Math.max(a, b));
  const min = features.reduce((a, b) => Math.min(a, b));
  assert.ok(Math.abs(max - min - 2) < 1e-6);
  // Frames after the 1 s signal (+ the 200-sample reflect margin) sit on the clamp floor.
  assert.equal(features[10 * WINDOW_FRAMES + 200], min);
});

Deno.test("LogMelSpectrogram matches a naive-DFT implementation frame by frame", () => {
  const frames = 40;
  const samples = noise(frames * 160 - 300, 7, 0.3);
  for (let i = 0; i < samples.length; i++) samples[i] += 0.2 * Math.sin(i * 0.37);
  const features = new LogMelSpectrogram({ frames }).compute(samples);
  const reference = naiveLogMel(samples, frames);
  const max = Math.max(...reference.flat());
  let worst = 0;
  for (let m = 0; m < N_MELS; m++) {
    for (let t = 0; t < frames; t++) {
      const expected = (Math.max(reference[m][t], max - 8) + 4) / 4;
      worst = Math.max(worst, Math.abs(features[m * frames + t] - expected));
    }
  }
  assert.ok(worst < 1e-5, `largest difference ${worst}`);
});

Deno.test("LogMelSpectrogram matches the naive version in the full 30 s window (first frames)", () => {
  const samples = noise(3 * RATE, 11, 0.1);
  const features = new LogMelSpectrogram().compute(samples);
  const reference = naiveLogMel(samples.subarray(0, 6 * 160), 4);
  // The first 3 frames only see the first 3·160 + 200 samples; compare before the global clamp
  // (noise keeps every value well above max − 8).
  for (let t = 0; t < 3; t++) {
    for (let m = 0; m < N_MELS; m++) {
      const got = features[m * WINDOW_FRAMES + t] * 4 - 4;
      assert.ok(Math.abs(got - reference[m][t]) < 1e-5, `frame ${t} band ${m}`);
    }
  }
});

Deno.test("LogMelSpectrogram trims input longer than its window and reflects real samples", () => {
  const frames = 20;
  const long = noise(frames * 160 + 5000, 3, 0.5);
  const features = new LogMelSpectrogram({ frames }).compute(long);
  const reference = naiveLogMel(long, frames);
  const max = Math.max(...reference.flat());
  for (const t of [0, frames - 1]) {
    for (let m = 0; m < N_MELS; m++) {
      const expected = (Math.max(reference[m][t], max - 8) + 4) / 4;
      assert.ok(Math.abs(features[m * frames + t] - expected) < 1e-5);
    }
  }
});

Deno.test("LogMelSpectrogram rejects a non-integer window and band count", () => {
  assert.throws(() => new LogMelSpectrogram({ frames: 0 }), LogMelOptionError);
  assert.throws(() => new LogMelSpectrogram({ nMels: 2.5 }), /nMels is 2.5/);
});

Deno.test("LogMelSpectrogram computes a shorter window on request, as a window-sized instance would", () => {
  const samples = noise(5000, 9, 0.4);
  const short = new LogMelSpectrogram({ frames: 40 }).compute(samples).slice();
  const frontEnd = new LogMelSpectrogram();
  const view = frontEnd.compute(samples, 40);
  assert.equal(view.length, N_MELS * 40);
  assert.deepEqual(Array.from(view), Array.from(short));
  assert.throws(
    () => frontEnd.compute(samples, 3001),
    /frames is 3001, expected an integer from 1 to 3000/,
  );
});
