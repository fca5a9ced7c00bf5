/**
 * Audio utilities both processes use: int16 PCM ↔ float conversion, a streaming band-limited
 * resampler, WAV files, and levels.
 *
 * PCM on the wire is int16 mono little-endian bytes (docs/protocol.md); inside a process audio
 * is Float32 in [-1, 1].
 *
 * @example
 * ```ts
 * const down = new Resampler(48000, 16000);
 * const frame16k = down.process(frame48k); // 960 samples in → 320 out (a view: copy to keep)
 * ```
 */
import { concatChunks } from "./media/concat.ts";

/** int16 full scale: PCM sample `s` is the float `s / INT16_SCALE` (docs/protocol.md). */
export const INT16_SCALE = 32768;

/** Hz of speech for recognition: what Whisper and Silero VAD take (16 kHz mono). */
export const SPEECH_RATE = 16_000;

/** Longest utterance, in ms: spec 5.4's 30 s. Bounds a segment, a turn's audio and a frame. */
export const MAX_UTTERANCE_MS = 30_000;

/**
 * Rounds a measured number to a tenth: the precision latency reports (turn `stages`, metrics, in
 * ms) and CPU percentages carry, without float noise like 12.300000000000001.
 */
export function roundMs(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** Converts int16 little-endian bytes to floats in [-1, 1]. Reuses `out` when it is big enough. */
export function pcmToFloat32(pcm: Uint8Array, out?: Float32Array): Float32Array {
  const count = pcm.length >> 1;
  const samples = out && out.length >= count ? out.subarray(0, count) : new Float32Array(count);
  for (let i = 0, j = 0; i < count; i++, j += 2) {
    samples[i] = (((pcm[j] | (pcm[j + 1] << 8)) << 16) >> 16) / INT16_SCALE;
  }
  return samples;
}

/** Converts floats to int16 little-endian bytes, clipping at full scale. Reuses `out`. */
export function float32ToPcm(samples: Float32Array, out?: Uint8Array): Uint8Array {
  const bytes = samples.length * 2;
  const pcm = out && out.length >= bytes ? out.subarray(0, bytes) : new Uint8Array(bytes);
  for (let i = 0, j = 0; i < samples.length; i++, j += 2) {
    // Exact inverse of pcmToFloat32; +1.0 maps to the largest int16 instead of wrapping.
    const value = Math.max(
      -INT16_SCALE,
      Math.min(INT16_SCALE - 1, Math.round(samples[i] * INT16_SCALE)),
    );
    pcm[j] = value & 0xff;
    pcm[j + 1] = (value >> 8) & 0xff;
  }
  return pcm;
}

/**
 * Joins byte chunks into one array (the chunk itself when there is only one, no copy). For
 * assembling an utterance or a reply from streamed chunks; not for per-frame paths.
 */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 0) return new Uint8Array(0);
  return chunks.length === 1 ? chunks[0] : concatChunks(chunks);
}

/** Root-mean-square level of a block, 0 for an empty one. */
export function rms(samples: Float32Array): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  return Math.sqrt(sum / samples.length);
}

/** Level below which a sample counts as silence (-50 dBFS): espeak-ng pads its speech with it. */
export const SILENCE_LEVEL = 10 ** (-50 / 20);

/**
 * Milliseconds from the start of `samples` to the end of its last sample louder than `level`:
 * where the speech in a recording really ends, for latency measured from the last speech sample.
 */
export function voicedEndMs(
  samples: Float32Array,
  rate: number,
  level: number = SILENCE_LEVEL,
): number {
  let last = samples.length - 1;
  while (last >= 0 && Math.abs(samples[last]) < level) last--;
  return ((last + 1) / rate) * 1000;
}

/** Pearson correlation of two equally long signals; used to check audio survived a path. */
export function correlation(a: Float32Array, b: Float32Array): number {
  const n = Math.min(a.length, b.length);
  let meanA = 0, meanB = 0;
  for (let i = 0; i < n; i++) {
    meanA += a[i];
    meanB += b[i];
  }
  meanA /= n;
  meanB /= n;
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i] - meanA, db = b[i] - meanB;
    ab += da * db;
    aa += da * da;
    bb += db * db;
  }
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
}

// ---------------------------------------------------------------------------------------------
// Resampling

/** Zero crossings of the sinc on each side: ~90 dB stopband with the Kaiser window below. */
const SINC_ZERO_CROSSINGS = 16;
/** Passband edge as a fraction of the lower Nyquist: keeps aliasing out of the transition band. */
const ROLLOFF = 0.94;
/** Kaiser window shape: trades main-lobe width for ~90 dB side-lobe rejection. */
const KAISER_BETA = 8.6;
/** Largest interpolation factor after reducing the rates (22.05 → 48 kHz needs 320). */
const MAX_PHASES = 4096;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function besselI0(x: number): number {
  let sum = 1, term = 1;
  for (let k = 1; k < 50; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
    if (term < 1e-12 * sum) break;
  }
  return sum;
}

/**
 * Streaming windowed-sinc (Kaiser) polyphase resampler between integer rates, for per-frame use:
 * no allocation once its buffers have grown to the frame size. Output sample n sits exactly at
 * input time n·from/to; a call returns every output sample whose filter window is complete, so
 * output lags input by {@link Resampler.latencySamples} input samples until {@link flush}.
 */
export class Resampler {
  readonly fromRate: number;
  readonly toRate: number;
  /** Half the filter length in input samples: the look-ahead each output waits for. */
  readonly latencySamples: number;
  #up: number;
  #down: number;
  #taps: number;
  #table: Float32Array;
  #buffer: Float32Array;
  /** Samples held in #buffer; #buffer[0] is input index #base (may be negative: zero history). */
  #fill = 0;
  #base = 0;
  #inputPosition = 0;
  #phase = 0;
  #out = new Float32Array(0);

  constructor(fromRate: number, toRate: number) {
    for (const [name, rate] of [["fromRate", fromRate], ["toRate", toRate]] as const) {
      if (!Number.isInteger(rate) || rate <= 0) {
        throw new RangeError(`${name} ${rate} is not a positive integer sample rate`);
      }
    }
    const divisor = gcd(fromRate, toRate);
    this.fromRate = fromRate;
    this.toRate = toRate;
    this.#up = toRate / divisor;
    this.#down = fromRate / divisor;
    if (this.#up > MAX_PHASES) {
      throw new RangeError(
        `resampling ${fromRate} → ${toRate} Hz needs ${this.#up} phases, at most ${MAX_PHASES}`,
      );
    }
    const cutoff = Math.min(1, toRate / fromRate) * ROLLOFF;
    const half = Math.ceil(SINC_ZERO_CROSSINGS / cutoff);
    this.latencySamples = half;
    this.#taps = 2 * half;
    this.#table = new Float32Array(this.#up * this.#taps);
    const norm = besselI0(KAISER_BETA);
    for (let phase = 0; phase < this.#up; phase++) {
      const fraction = phase / this.#up;
      let sum = 0;
      for (let j = 0; j < this.#taps; j++) {
        // Tap j weighs input (floor(position) - half + 1 + j); x is its distance from the output.
        const x = fraction - (j - half + 1);
        const ratio = x / half;
        const window = Math.abs(ratio) >= 1
          ? 0
          : besselI0(KAISER_BETA * Math.sqrt(1 - ratio * ratio)) / norm;
        const arg = Math.PI * cutoff * x;
        const sinc = arg === 0 ? 1 : Math.sin(arg) / arg;
        const weight = cutoff * sinc * window;
        this.#table[phase * this.#taps + j] = weight;
        sum += weight;
      }
      // Unity gain at DC for every phase, so a constant input stays exactly constant.
      for (let j = 0; j < this.#taps; j++) this.#table[phase * this.#taps + j] /= sum;
    }
    this.#buffer = new Float32Array(this.#taps * 4);
    this.reset();
  }

  /** Forgets all history, as if newly made. */
  reset(): void {
    // Half a window of zeros before the first sample so output 0 is aligned with input 0.
    this.#buffer.fill(0);
    this.#fill = this.#taps / 2 - 1;
    this.#base = -this.#fill;
    this.#inputPosition = 0;
    this.#phase = 0;
  }

  /** Resamples the next block; returns a view into an internal buffer valid until the next call. */
  process(input: Float32Array): Float32Array {
    this.#append(input);
    return this.#drain();
  }

  /** Emits the remaining output as if the input were followed by silence, then resets. */
  flush(): Float32Array {
    const consumed = this.#base + this.#fill;
    const expectedTotal = Math.ceil((consumed * this.#up) / this.#down);
    const emitted = Math.ceil((this.#inputPosition * this.#up + this.#phase) / this.#down);
    this.#append(new Float32Array(this.latencySamples + 1));
    const rest = this.#drain();
    const keep = Math.max(0, Math.min(rest.length, expectedTotal - emitted));
    const out = rest.slice(0, keep);
    this.reset();
    return out;
  }

  #append(input: Float32Array): void {
    if (this.#fill + input.length > this.#buffer.length) {
      const grown = new Float32Array(Math.max(this.#buffer.length * 2, this.#fill + input.length));
      grown.set(this.#buffer.subarray(0, this.#fill));
      this.#buffer = grown;
    }
    this.#buffer.set(input, this.#fill);
    this.#fill += input.length;
  }

  #drain(): Float32Array {
    const half = this.#taps / 2;
    const available = this.#base + this.#fill; // one past the last input index held
    const maxOut = Math.max(
      0,
      Math.ceil(((available - this.#inputPosition) * this.#up) / this.#down) + 1,
    );
    if (this.#out.length < maxOut) this.#out = new Float32Array(maxOut);
    let count = 0;
    while (this.#inputPosition + half < available) {
      const start = this.#inputPosition - half + 1 - this.#base;
      const row = this.#phase * this.#taps;
      let acc = 0;
      for (let j = 0; j < this.#taps; j++) acc += this.#buffer[start + j] * this.#table[row + j];
      this.#out[count++] = acc;
      this.#phase += this.#down;
      this.#inputPosition += Math.floor(this.#phase / this.#up);
      this.#phase %= this.#up;
    }
    // Keep only what later outputs still need, at the front of the buffer.
    const keepFrom = Math.min(this.#inputPosition - half + 1, available) - this.#base;
    if (keepFrom > 0) {
      this.#buffer.copyWithin(0, keepFrom, this.#fill);
      this.#fill -= keepFrom;
      this.#base += keepFrom;
    }
    return this.#out.subarray(0, count);
  }
}

/** Resamples a whole signal at once (`ceil(n·to/from)` samples out). */
export function resample(samples: Float32Array, fromRate: number, toRate: number): Float32Array {
  if (fromRate === toRate) return samples.slice();
  const resampler = new Resampler(fromRate, toRate);
  const head = resampler.process(samples).slice();
  const tail = resampler.flush();
  const out = new Float32Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}

// ---------------------------------------------------------------------------------------------
// WAV files

/** A decoded WAV file, mixed down to mono. */
export interface WavAudio {
  rate: number;
  samples: Float32Array;
}

/** Reads a RIFF/WAVE file of 16-bit integer or 32-bit float PCM, any channel count. */
export function readWav(bytes: Uint8Array): WavAudio {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") {
    throw new Error(
      `not a WAV file: header is ${JSON.stringify(tag(0))}…${
        JSON.stringify(tag(8))
      }, expected RIFF…WAVE`,
    );
  }
  let format = 0, channels = 0, rate = 0, bits = 0;
  let offset = 12;
  while (offset + 8 <= bytes.length) {
    const id = tag(offset);
    // espeak-ng --stdout writes 0x7fffffff as the data size when it cannot seek.
    const size = Math.min(view.getUint32(offset + 4, true), bytes.length - offset - 8);
    const body = offset + 8;
    if (id === "fmt ") {
      format = view.getUint16(body, true);
      channels = view.getUint16(body + 2, true);
      rate = view.getUint32(body + 4, true);
      bits = view.getUint16(body + 14, true);
    } else if (id === "data") {
      if (channels === 0) throw new Error("WAV data chunk comes before its fmt chunk");
      const isInt16 = format === 1 && bits === 16;
      const isFloat32 = format === 3 && bits === 32;
      if (!isInt16 && !isFloat32) {
        throw new Error(
          `WAV format ${format} with ${bits} bits is not supported, expected 16-bit PCM or 32-bit float`,
        );
      }
      const width = bits / 8;
      const frames = Math.floor(size / (width * channels));
      const samples = new Float32Array(frames);
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (let c = 0; c < channels; c++) {
          const at = body + (i * channels + c) * width;
          sum += isInt16 ? view.getInt16(at, true) / INT16_SCALE : view.getFloat32(at, true);
        }
        samples[i] = sum / channels;
      }
      return { rate, samples };
    }
    offset = body + size + (size % 2);
  }
  throw new Error("WAV file has no data chunk");
}

/** Writes mono 16-bit PCM WAV. */
export function writeWav(samples: Float32Array, rate: number): Uint8Array {
  const pcm = float32ToPcm(samples);
  const out = new Uint8Array(44 + pcm.length);
  const view = new DataView(out.buffer);
  const text = (at: number, value: string) => {
    for (let i = 0; i < value.length; i++) out[at + i] = value.charCodeAt(i);
  };
  text(0, "RIFF");
  view.setUint32(4, 36 + pcm.length, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, pcm.length, true);
  out.set(pcm, 44);
  return out;
}
