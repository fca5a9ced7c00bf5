/**
 * Whisper's log-mel front end, step for step as `whisper.audio.log_mel_spectrogram` and Hugging
 * Face's `WhisperFeatureExtractor` compute it:
 *
 * 1. pad (with zeros) or trim the 16 kHz samples to the window (30 s = 480 000 samples);
 * 2. STFT with n_fft 400 (a 400-point DFT), hop 160, a periodic Hann window, and reflect padding
 *    of n_fft/2 on both sides (`torch.stft(center=True, pad_mode="reflect")`);
 * 3. power spectrum |X|², dropping the last frame (3001 → 3000 frames);
 * 4. an 80-band Slaney mel filterbank with Slaney area normalization (librosa's default, which
 *    Whisper's `mel_filters.npz` was generated with);
 * 5. log10(max(mel, 1e-10)), clamped to (global max − 8), then (x + 4) / 4.
 *
 * The output is laid out mel-major, [nMels, frames], ready to be the `input_features` tensor
 * [1, nMels, frames] of the encoder.
 */

import { BluesteinDft } from "./bluestein_dft.ts";

/** Whisper's input rate (openai/whisper audio.py SAMPLE_RATE). */
export const SAMPLE_RATE = 16_000;
/** Whisper's STFT size: 25 ms at 16 kHz (audio.py N_FFT). */
export const N_FFT = 400;
/** Whisper's STFT hop: 10 ms at 16 kHz, i.e. 100 frames per second (audio.py HOP_LENGTH). */
export const HOP_LENGTH = 160;
/** Mel bands of every Whisper model before large-v3 (large-v3 uses 128). */
export const N_MELS = 80;
/** Frames in Whisper's 30 s training window (audio.py N_FRAMES = 480 000 / 160). */
export const WINDOW_FRAMES = 3_000;
/** The power floor before log10 (audio.py: `torch.clamp(mel_spec, min=1e-10)`). */
const POWER_FLOOR = 1e-10;
/** Dynamic range kept below the loudest bin, in log10 units (80 dB; audio.py `max - 8.0`). */
const DYNAMIC_RANGE = 8;
/** (x + 4) / 4 maps the kept range to roughly [−1, 1] (audio.py). */
const NORM_OFFSET = 4;
const NORM_SCALE = 4;

/** Thrown for options the front end cannot be built with, naming the field and its value. */
export class LogMelOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LogMelOptionError";
  }
}

/** A mel filterbank: nMels triangular filters over nFft/2 + 1 linear-frequency bins. */
export interface MelFilterbank {
  nMels: number;
  /** nFft / 2 + 1 */
  nBins: number;
  /** Dense weights, [nMels, nBins] row-major. */
  weights: Float32Array;
  /** First bin with a non-zero weight, per filter. */
  firstBin: Int32Array;
  /** One past the last bin with a non-zero weight, per filter. */
  endBin: Int32Array;
  /** The nMels + 2 edge frequencies in Hz (filter m rises from edge m, peaks at m+1, ends at m+2). */
  edgesHz: Float64Array;
}

/** Slaney's mel scale (librosa, htk=False): Hz per mel in the linear part below 1 kHz. */
const SLANEY_HZ_PER_MEL = 200 / 3;
/** Where the scale turns logarithmic, in Hz and in mels. */
const SLANEY_MIN_LOG_HZ = 1000;
const SLANEY_MIN_LOG_MEL = SLANEY_MIN_LOG_HZ / SLANEY_HZ_PER_MEL;
/** Log-part step: 27 mels per factor of 6.4 in frequency. */
const SLANEY_LOG_STEP = Math.log(6.4) / 27;

/** Slaney's mel scale (librosa `hz_to_mel(htk=False)`): linear below 1 kHz, logarithmic above. */
export function hzToMel(hz: number): number {
  return hz >= SLANEY_MIN_LOG_HZ
    ? SLANEY_MIN_LOG_MEL + Math.log(hz / SLANEY_MIN_LOG_HZ) / SLANEY_LOG_STEP
    : hz / SLANEY_HZ_PER_MEL;
}

/** Inverse of {@linkcode hzToMel} (librosa `mel_to_hz(htk=False)`). */
export function melToHz(mel: number): number {
  return mel >= SLANEY_MIN_LOG_MEL
    ? SLANEY_MIN_LOG_HZ * Math.exp(SLANEY_LOG_STEP * (mel - SLANEY_MIN_LOG_MEL))
    : SLANEY_HZ_PER_MEL * mel;
}

/**
 * librosa.filters.mel(sr, n_fft, n_mels, fmin=0, fmax=sr/2, htk=False, norm="slaney"), the
 * filterbank in Whisper's `mel_filters.npz`.
 */
export function melFilterbank(
  options: { sampleRate?: number; nFft?: number; nMels?: number } = {},
): MelFilterbank {
  const sampleRate = options.sampleRate ?? SAMPLE_RATE;
  const nFft = options.nFft ?? N_FFT;
  const nMels = options.nMels ?? N_MELS;
  const nBins = Math.floor(nFft / 2) + 1;
  const edgesHz = new Float64Array(nMels + 2);
  const maxMel = hzToMel(sampleRate / 2);
  for (let i = 0; i < nMels + 2; i++) edgesHz[i] = melToHz((maxMel * i) / (nMels + 1));
  const weights = new Float32Array(nMels * nBins);
  const firstBin = new Int32Array(nMels).fill(nBins);
  const endBin = new Int32Array(nMels);
  for (let m = 0; m < nMels; m++) {
    const lowerWidth = edgesHz[m + 1] - edgesHz[m];
    const upperWidth = edgesHz[m + 2] - edgesHz[m + 1];
    // Slaney normalization: each triangle has area 1 in Hz (height 2 / bandwidth).
    const norm = 2 / (edgesHz[m + 2] - edgesHz[m]);
    for (let k = 0; k < nBins; k++) {
      const hz = (k * sampleRate) / nFft;
      const rising = (hz - edgesHz[m]) / lowerWidth;
      const falling = (edgesHz[m + 2] - hz) / upperWidth;
      const weight = Math.max(0, Math.min(rising, falling)) * norm;
      weights[m * nBins + k] = weight;
      if (weight > 0) {
        firstBin[m] = Math.min(firstBin[m], k);
        endBin[m] = k + 1;
      }
    }
    if (endBin[m] === 0) firstBin[m] = 0;
  }
  return { nMels, nBins, weights, firstBin, endBin, edgesHz };
}

/** Options of {@linkcode LogMelSpectrogram}. */
export interface LogMelOptions {
  /** Mel bands (80; 128 for large-v3). */
  nMels?: number;
  /**
   * The longest window in frames (3000 = Whisper's 30 s); `compute` may ask for fewer. Samples
   * beyond the window are trimmed.
   */
  frames?: number;
}

/**
 * Computes Whisper's log-mel features. Every buffer is allocated once, for the longest window;
 * `compute` returns a view of the same output array each time, overwritten by the next call.
 *
 * @example
 * ```ts
 * const frontEnd = new LogMelSpectrogram();
 * const features = frontEnd.compute(samples16k); // Float32Array [80 * 3000], mel-major
 * ```
 */
export class LogMelSpectrogram {
  readonly nMels: number;
  readonly frames: number;
  readonly filterbank: MelFilterbank;
  readonly #dft = new BluesteinDft(N_FFT);
  readonly #window = new Float64Array(N_FFT);
  /** The window's samples with n_fft/2 reflect padding on both sides. */
  readonly #padded: Float64Array;
  readonly #frames = { re: new Float64Array(N_FFT), im: new Float64Array(N_FFT) };
  readonly #spectrum = { re: new Float64Array(N_FFT), im: new Float64Array(N_FFT) };
  readonly #powerA = new Float64Array(N_FFT / 2 + 1);
  readonly #powerB = new Float64Array(N_FFT / 2 + 1);
  readonly #output: Float32Array;

  constructor(options: LogMelOptions = {}) {
    const nMels = options.nMels ?? N_MELS;
    const frames = options.frames ?? WINDOW_FRAMES;
    if (!Number.isInteger(nMels) || nMels < 1) {
      throw new LogMelOptionError(`nMels is ${nMels}, expected a positive integer (80 or 128)`);
    }
    if (!Number.isInteger(frames) || frames < 1) {
      throw new LogMelOptionError(
        `frames is ${frames}, expected a positive integer (3000 = Whisper's 30 s window)`,
      );
    }
    this.nMels = nMels;
    this.frames = frames;
    this.filterbank = melFilterbank({ nMels });
    // Periodic Hann (torch.hann_window(400), periodic=True): the DFT-even window.
    for (let n = 0; n < N_FFT; n++) {
      this.#window[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / N_FFT);
    }
    this.#padded = new Float64Array(frames * HOP_LENGTH + N_FFT);
    this.#output = new Float32Array(nMels * frames);
  }

  /**
   * Log-mel features of `samples` (16 kHz mono, [-1, 1]), padded with silence or trimmed to a
   * window of `frames` frames (default: the longest). Returns [nMels, frames] mel-major, a view
   * that the next call overwrites.
   */
  compute(samples: Float32Array, frames: number = this.frames): Float32Array {
    if (!Number.isInteger(frames) || frames < 1 || frames > this.frames) {
      throw new LogMelOptionError(
        `frames is ${frames}, expected an integer from 1 to ${this.frames} (this front end's window)`,
      );
    }
    const half = N_FFT / 2;
    const length = frames * HOP_LENGTH;
    const padded = this.#padded.subarray(0, length + N_FFT);
    const used = Math.min(samples.length, length);
    padded.fill(0);
    for (let i = 0; i < used; i++) padded[half + i] = samples[i];
    // Reflect padding (numpy/torch "reflect": the edge sample is not repeated).
    for (let i = 1; i <= half; i++) {
      padded[half - i] = reflectedSample(padded, half, length, -i);
      padded[half + length - 1 + i] = reflectedSample(padded, half, length, length - 1 + i);
    }
    // Frames starting after the last non-zero sample are exactly silent: their power is 0, so
    // the DFT can be skipped (a 3 s utterance in a 30 s window needs ~10 % of the transforms).
    let lastNonZero = -1;
    for (let i = padded.length - 1; i >= 0; i--) {
      if (padded[i] !== 0) {
        lastNonZero = i;
        break;
      }
    }
    const out = this.#output.subarray(0, this.nMels * frames);
    let maxLog = -Infinity;
    for (let t = 0; t < frames; t += 2) {
      const hasB = t + 1 < frames;
      const silentA = t * HOP_LENGTH > lastNonZero;
      const silentB = !hasB || (t + 1) * HOP_LENGTH > lastNonZero;
      if (silentA && silentB) {
        maxLog = Math.max(maxLog, writeSilentFrame(out, frames, t));
        if (hasB) writeSilentFrame(out, frames, t + 1);
        continue;
      }
      this.#powerPair(padded, t, hasB);
      maxLog = Math.max(maxLog, this.#writeMelFrame(out, frames, t, this.#powerA));
      if (hasB) maxLog = Math.max(maxLog, this.#writeMelFrame(out, frames, t + 1, this.#powerB));
    }
    const floor = maxLog - DYNAMIC_RANGE;
    for (let i = 0; i < out.length; i++) {
      out[i] = (Math.max(out[i], floor) + NORM_OFFSET) / NORM_SCALE;
    }
    return out;
  }

  /**
   * Power spectra of frames t and t+1 from one complex DFT: frame t as the real part, t+1 as the
   * imaginary part, separated by the conjugate symmetry of real signals' spectra.
   */
  #powerPair(padded: Float64Array, t: number, hasB: boolean): void {
    const window = this.#window;
    const startA = t * HOP_LENGTH;
    const startB = startA + HOP_LENGTH;
    for (let n = 0; n < N_FFT; n++) {
      this.#frames.re[n] = padded[startA + n] * window[n];
      this.#frames.im[n] = hasB ? padded[startB + n] * window[n] : 0;
    }
    this.#dft.transform(this.#frames, this.#spectrum);
    const xr = this.#spectrum.re, xi = this.#spectrum.im;
    for (let k = 0; k <= N_FFT / 2; k++) {
      const j = k === 0 ? 0 : N_FFT - k;
      // A[k] = (X[k] + conj(X[N−k])) / 2,  B[k] = (X[k] − conj(X[N−k])) / 2i
      const ar = (xr[k] + xr[j]) / 2, ai = (xi[k] - xi[j]) / 2;
      const br = (xi[k] + xi[j]) / 2, bi = (xr[j] - xr[k]) / 2;
      this.#powerA[k] = ar * ar + ai * ai;
      this.#powerB[k] = br * br + bi * bi;
    }
  }

  /** Writes log10 of the mel energies of one frame; returns the frame's largest value. */
  #writeMelFrame(out: Float32Array, frames: number, t: number, power: Float64Array): number {
    const { weights, firstBin, endBin, nBins } = this.filterbank;
    let frameMax = -Infinity;
    for (let m = 0; m < this.nMels; m++) {
      let energy = 0;
      const row = m * nBins;
      for (let k = firstBin[m]; k < endBin[m]; k++) energy += weights[row + k] * power[k];
      const value = Math.log10(Math.max(energy, POWER_FLOOR));
      out[m * frames + t] = value;
      if (value > frameMax) frameMax = value;
    }
    return frameMax;
  }
}

/** Writes the log floor into frame t of every band (a frame with no energy); returns it. */
function writeSilentFrame(out: Float32Array, frames: number, t: number): number {
  const value = Math.log10(POWER_FLOOR);
  for (let i = t; i < out.length; i += frames) out[i] = value;
  return value;
}

/** The sample at `index` of the window (−∞..∞) under reflect padding. */
function reflectedSample(padded: Float64Array, offset: number, length: number, index: number) {
  let i = index;
  if (length === 1) return padded[offset];
  while (i < 0 || i >= length) i = i < 0 ? -i : 2 * (length - 1) - i;
  return padded[offset + i];
}
