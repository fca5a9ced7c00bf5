/**
 * An exact N-point complex DFT for any N, built from a power-of-two FFT (fft.js) with Bluestein's
 * chirp-z algorithm. Whisper's front end needs n_fft = 400, which is not a power of two; a 512-point
 * FFT of a zero-padded frame would sample the spectrum at different frequencies (k·16000/512 Hz
 * instead of k·16000/400 Hz) and feed the mel filterbank the wrong bins.
 *
 * X[k] = w[k] · Σ_n (x[n]·w[n]) · conj(w[k−n]),  w[n] = exp(−iπn²/N): a convolution, done with
 * two FFTs of size M ≥ 2N−1 per transform (the chirp filter's FFT is precomputed).
 *
 * @example
 * ```ts
 * const dft = new BluesteinDft(400);
 * const input = { re: new Float64Array(400), im: new Float64Array(400) };
 * input.re[1] = 1; // an impulse at n = 1
 * const output = { re: new Float64Array(400), im: new Float64Array(400) };
 * dft.transform(input, output); // output.re[k] + i·output.im[k] = exp(−2πik/400)
 * ```
 */

import FFT from "fft.js";

/** A complex signal as separate real and imaginary parts of equal length. */
export interface ComplexBuffers {
  re: Float64Array;
  im: Float64Array;
}

/** Thrown for a size the transform cannot be built for, or buffers of the wrong length. */
export class DftSizeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DftSizeError";
  }
}

/** Complex DFT of a fixed size N; all scratch buffers are allocated once, in the constructor. */
export class BluesteinDft {
  /** N, the number of input and output points. */
  readonly size: number;
  readonly #fft: FFT;
  /** M, the power-of-two convolution length (≥ 2N − 1 so the circular convolution is linear). */
  readonly #convSize: number;
  /** w[n] = exp(−iπn²/N), interleaved re/im, n < N. */
  readonly #chirp: Float64Array;
  /** FFT of the chirp filter conj(w[|m|]) laid out circularly, pre-scaled by 1/M. */
  readonly #filterSpectrum: Float64Array;
  readonly #work: Float64Array;
  readonly #spectrum: Float64Array;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) {
      throw new DftSizeError(`DFT size is ${size}, expected a positive integer`);
    }
    this.size = size;
    let convSize = 2;
    while (convSize < 2 * size - 1) convSize *= 2;
    // fft.js needs at least 4 complex points for its radix-4 kernel.
    this.#convSize = Math.max(convSize, 4);
    this.#fft = new FFT(this.#convSize);
    this.#chirp = new Float64Array(2 * size);
    for (let n = 0; n < size; n++) {
      // n² mod 2N keeps the angle small, so the chirp stays exact for large n.
      const angle = (-Math.PI * ((n * n) % (2 * size))) / size;
      this.#chirp[2 * n] = Math.cos(angle);
      this.#chirp[2 * n + 1] = Math.sin(angle);
    }
    const filter = new Float64Array(2 * this.#convSize);
    const scale = 1 / this.#convSize;
    for (let n = 0; n < size; n++) {
      const re = this.#chirp[2 * n] * scale;
      const im = -this.#chirp[2 * n + 1] * scale;
      filter[2 * n] = re;
      filter[2 * n + 1] = im;
      if (n > 0) {
        const m = this.#convSize - n;
        filter[2 * m] = re;
        filter[2 * m + 1] = im;
      }
    }
    this.#filterSpectrum = new Float64Array(2 * this.#convSize);
    this.#fft.transform(this.#filterSpectrum, filter);
    this.#work = new Float64Array(2 * this.#convSize);
    this.#spectrum = new Float64Array(2 * this.#convSize);
  }

  /** output = DFT(input), both of length N; the input is not modified. */
  transform(input: ComplexBuffers, output: ComplexBuffers): void {
    const n = this.size;
    const { re, im } = input;
    const { re: outRe, im: outIm } = output;
    if (re.length !== n || im.length !== n || outRe.length !== n || outIm.length !== n) {
      throw new DftSizeError(
        `buffers have lengths input.re ${re.length}, input.im ${im.length}, output.re ` +
          `${outRe.length}, output.im ${outIm.length}, expected ${n} each (the DFT size)`,
      );
    }
    const chirp = this.#chirp;
    const work = this.#work;
    const spectrum = this.#spectrum;
    const filter = this.#filterSpectrum;
    work.fill(0);
    for (let i = 0; i < n; i++) {
      const cr = chirp[2 * i], ci = chirp[2 * i + 1];
      work[2 * i] = re[i] * cr - im[i] * ci;
      work[2 * i + 1] = re[i] * ci + im[i] * cr;
    }
    this.#fft.transform(spectrum, work);
    // Multiply by the filter's spectrum and conjugate, so a forward FFT computes the inverse:
    // IFFT(Z) = conj(FFT(conj(Z))) / M, and the 1/M is already folded into the filter.
    for (let i = 0; i < 2 * this.#convSize; i += 2) {
      const ar = spectrum[i], ai = spectrum[i + 1];
      const br = filter[i], bi = filter[i + 1];
      work[i] = ar * br - ai * bi;
      work[i + 1] = -(ar * bi + ai * br);
    }
    this.#fft.transform(spectrum, work);
    for (let k = 0; k < n; k++) {
      const zr = spectrum[2 * k], zi = -spectrum[2 * k + 1];
      const cr = chirp[2 * k], ci = chirp[2 * k + 1];
      outRe[k] = zr * cr - zi * ci;
      outIm[k] = zr * ci + zi * cr;
    }
  }
}
