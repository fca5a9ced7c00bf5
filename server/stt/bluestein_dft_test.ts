import assert from "node:assert/strict";
import { BluesteinDft, DftSizeError } from "./bluestein_dft.ts";

/** The textbook O(N²) DFT, the reference the fast transform must match. */
function naiveDft(re: Float64Array, im: Float64Array): { re: Float64Array; im: Float64Array } {
  const n = re.length;
  const outRe = new Float64Array(n), outIm = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < n; j++) {
      const angle = (-2 * Math.PI * ((k * j) % n)) / n;
      outRe[k] += re[j] * Math.cos(angle) - im[j] * Math.sin(angle);
      outIm[k] += re[j] * Math.sin(angle) + im[j] * Math.cos(angle);
    }
  }
  return { re: outRe, im: outIm };
}

/** Deterministic pseudo-random values in [-1, 1). */
function noise(length: number, seed: number): Float64Array {
  const out = new Float64Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

function maxAbsDiff(a: Float64Array, b: Float64Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

for (const size of [1, 2, 7, 12, 400]) {
  Deno.test(`BluesteinDft(${size}) matches the naive DFT on random complex input`, () => {
    const dft = new BluesteinDft(size);
    const re = noise(size, size), im = noise(size, size + 1);
    const out = { re: new Float64Array(size), im: new Float64Array(size) };
    dft.transform({ re, im }, out);
    const expected = naiveDft(re, im);
    assert.ok(maxAbsDiff(out.re, expected.re) < 1e-9, "real parts differ");
    assert.ok(maxAbsDiff(out.im, expected.im) < 1e-9, "imaginary parts differ");
  });
}

Deno.test("BluesteinDft(400) puts a cosine of 10 cycles per frame in bins 10 and 390 only", () => {
  const dft = new BluesteinDft(400);
  const re = new Float64Array(400), im = new Float64Array(400);
  for (let n = 0; n < 400; n++) re[n] = Math.cos((2 * Math.PI * 10 * n) / 400);
  const out = { re: new Float64Array(400), im: new Float64Array(400) };
  dft.transform({ re, im }, out);
  for (let k = 0; k < 400; k++) {
    const magnitude = Math.hypot(out.re[k], out.im[k]);
    assert.ok(Math.abs(magnitude - (k === 10 || k === 390 ? 200 : 0)) < 1e-9, `bin ${k}`);
  }
});

Deno.test("BluesteinDft reuses its buffers: a second transform is not affected by the first", () => {
  const dft = new BluesteinDft(400);
  const out = { re: new Float64Array(400), im: new Float64Array(400) };
  dft.transform({ re: noise(400, 3), im: noise(400, 4) }, out);
  const re = noise(400, 5), im = new Float64Array(400);
  dft.transform({ re, im }, out);
  assert.ok(maxAbsDiff(out.re, naiveDft(re, im).re) < 1e-9);
});

Deno.test("BluesteinDft rejects a non-positive size and buffers of the wrong length", () => {
  assert.throws(() => new BluesteinDft(0), DftSizeError);
  const dft = new BluesteinDft(4);
  const four = new Float64Array(4);
  assert.throws(
    () => dft.transform({ re: new Float64Array(3), im: four }, { re: four, im: four }),
    /input.re 3, input.im 4, output.re 4, output.im 4, expected 4/,
  );
});
