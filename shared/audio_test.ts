import assert from "node:assert/strict";
import {
  concatBytes,
  correlation,
  float32ToPcm,
  INT16_SCALE,
  pcmToFloat32,
  readWav,
  resample,
  Resampler,
  rms,
  roundMs,
  voicedEndMs,
  writeWav,
} from "./audio.ts";

function sine(
  frequency: number,
  rate: number,
  count: number,
  amplitude = 0.5,
  phase = 0,
): Float32Array {
  return Float32Array.from(
    { length: count },
    (_, i) => amplitude * Math.sin(2 * Math.PI * frequency * i / rate + phase),
  );
}

Deno.test("pcm conversion", async (t) => {
  await t.step("int16 bytes map to [-1, 1] and back exactly", () => {
    const pcm = Uint8Array.from([0x00, 0x80, 0xff, 0xff, 0x00, 0x00, 0x01, 0x00, 0xff, 0x7f]);
    const samples = pcmToFloat32(pcm);
    assert.deepEqual(Array.from(samples), [-1, -1 / 32768, 0, 1 / 32768, 32767 / 32768]);
    assert.deepEqual(float32ToPcm(samples), pcm);
  });
  await t.step("out-of-range floats clip instead of wrapping", () => {
    assert.deepEqual(Array.from(float32ToPcm(Float32Array.from([2, -2]))), [
      0xff,
      0x7f,
      0x00,
      0x80,
    ]);
  });
  await t.step("an unaligned view decodes", () => {
    const backing = Uint8Array.from([9, 0x01, 0x00]);
    assert.deepEqual(Array.from(pcmToFloat32(backing.subarray(1))), [1 / 32768]);
  });
  await t.step("given buffers are reused", () => {
    const out = new Float32Array(8);
    assert.equal(pcmToFloat32(new Uint8Array(4), out).buffer, out.buffer);
  });
});

Deno.test("Resampler", async (t) => {
  const cases: [number, number][] = [
    [48000, 16000],
    [16000, 48000],
    [24000, 48000],
    [22050, 48000],
    [48000, 8000],
  ];
  for (const [from, to] of cases) {
    await t.step(`${from} → ${to} Hz keeps a 440 Hz tone and the length`, () => {
      const input = sine(440, from, from); // one second
      const output = resample(input, from, to);
      assert.equal(output.length, to);
      const expected = sine(440, to, to);
      // Skip the edges, where the filter sees the implicit silence around the signal.
      const margin = Math.ceil(to / 100);
      const c = correlation(output.subarray(margin, -margin), expected.subarray(margin, -margin));
      assert.ok(c > 0.9999, `correlation ${c}`);
      assert.ok(Math.abs(rms(output.subarray(margin, -margin)) - rms(expected)) < 0.005);
    });
  }
  await t.step("downsampling removes what cannot be represented (no aliasing)", () => {
    const output = resample(sine(10_000, 48000, 48000), 48000, 16000);
    const level = rms(output.subarray(200, -200));
    assert.ok(level < 0.5 * 10 ** (-60 / 20), `10 kHz tone leaked at rms ${level}`);
  });
  await t.step("streaming in 20 ms frames equals resampling at once", () => {
    const input = sine(300, 48000, 48000, 0.3).map((v, i) => v + 0.2 * Math.sin(i / 7));
    const streaming = new Resampler(48000, 16000);
    const parts: number[] = [];
    for (let at = 0; at < input.length; at += 960) {
      parts.push(...streaming.process(input.subarray(at, at + 960)));
    }
    parts.push(...streaming.flush());
    const whole = resample(input, 48000, 16000);
    assert.equal(parts.length, whole.length);
    for (let i = 0; i < whole.length; i++) {
      assert.ok(Math.abs(parts[i] - whole[i]) < 1e-6, `sample ${i}`);
    }
  });
  await t.step("a constant stays constant", () => {
    const output = resample(new Float32Array(4800).fill(0.25), 48000, 16000);
    for (const v of output.subarray(100, -100)) assert.ok(Math.abs(v - 0.25) < 1e-5);
  });
  await t.step("per-frame processing returns the steady-state count and reuses its buffer", () => {
    const down = new Resampler(48000, 16000);
    down.process(new Float32Array(960));
    const a = down.process(new Float32Array(960));
    assert.equal(a.length, 320);
    const b = down.process(new Float32Array(960));
    assert.equal(a.buffer, b.buffer);
  });
  await t.step("bad rates are refused with the value", () => {
    assert.throws(() => new Resampler(0, 16000), /fromRate 0/);
    assert.throws(() => new Resampler(48000, 1.5), /toRate 1.5/);
  });
});

Deno.test("voicedEndMs finds where the sound ends, ignoring quiet padding", () => {
  const samples = new Float32Array(16000);
  samples.fill(0.3, 0, 4000);
  samples.fill(0.001, 4000); // -60 dBFS hiss
  assert.equal(voicedEndMs(samples, 16000), 250);
  assert.equal(voicedEndMs(new Float32Array(100), 16000), 0);
});

Deno.test("WAV", async (t) => {
  await t.step("write then read round-trips mono 16-bit", () => {
    const samples = sine(1000, 16000, 1600, 0.7);
    const wav = readWav(writeWav(samples, 16000));
    assert.equal(wav.rate, 16000);
    assert.equal(wav.samples.length, 1600);
    for (let i = 0; i < samples.length; i++) {
      assert.ok(Math.abs(wav.samples[i] - samples[i]) < 1 / 16000);
    }
  });
  await t.step("a file that is not RIFF/WAVE names what it saw", () => {
    assert.throws(() => readWav(new TextEncoder().encode("OggS and more bytes")), /not a WAV file/);
  });
});

Deno.test("concatBytes joins chunks in order and returns a lone chunk as is", () => {
  const one = new Uint8Array([1, 2]);
  assert.deepEqual(
    concatBytes([one, new Uint8Array(0), new Uint8Array([3])]),
    new Uint8Array([1, 2, 3]),
  );
  assert.equal(concatBytes([one]), one);
  assert.deepEqual(concatBytes([]), new Uint8Array(0));
});

Deno.test("roundMs keeps 0.1 ms; INT16_SCALE maps full-scale int16 to ±1", () => {
  assert.deepEqual([roundMs(12.345), roundMs(0.04), roundMs(7)], [12.3, 0, 7]);
  const pcm = new Uint8Array([0x00, 0x80, 0xff, 0x7f]); // -32768, 32767
  assert.deepEqual([...pcmToFloat32(pcm)], [-1, (INT16_SCALE - 1) / INT16_SCALE]);
});
