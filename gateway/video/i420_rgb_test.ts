import assert from "node:assert/strict";
import { i420ToRgb } from "./i420_rgb.ts";
import { encodeVp8, ivfFrames, testPhoto } from "./testing.ts";
import { VpxDecoder } from "./vpx_decoder.ts";

/** FFmpeg's own RGB conversion of the same VP8 stream (swscale, BT.601 limited range). */
async function ffmpegRgb(ivf: Uint8Array): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "naila-rgb-" });
  try {
    await Deno.writeFile(`${dir}/in.ivf`, ivf);
    const out = await new Deno.Command("ffmpeg", {
      args: ["-hide_banner", "-loglevel", "error", "-i", `${dir}/in.ivf`, "-frames:v", "1"]
        .concat(["-sws_flags", "neighbor", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]),
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return out.stdout;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a decoded photo converts to the RGB FFmpeg computes, within rounding", async () => {
  const photo = await testPhoto("astronaut.png");
  const ivf = await encodeVp8({
    inputs: ["-i", photo],
    filter: "[0:v]scale=320:240[out]",
    frames: 1,
  });
  const decoder = new VpxDecoder();
  try {
    const rgb = i420ToRgb(decoder.decode(ivfFrames(ivf)[0])!);
    const reference = await ffmpegRgb(ivf);
    assert.equal(rgb.length, reference.length);
    let total = 0;
    let worst = 0;
    for (let i = 0; i < rgb.length; i++) {
      const d = Math.abs(rgb[i] - reference[i]);
      total += d;
      worst = Math.max(worst, d);
    }
    assert.ok(total / rgb.length < 1.5, `mean difference ${total / rgb.length}`);
    assert.ok(worst <= 4, `worst difference ${worst}`);
  } finally {
    decoder.close();
  }
});

Deno.test("pure colours come out as themselves", () => {
  // BT.601 limited range: red is Y 81, U 90, V 240; white Y 235, U = V = 128.
  const plane = (value: number, w: number, h: number) => ({
    data: new Uint8Array(w * h).fill(value),
    width: w,
    height: h,
    stride: w,
  });
  const red = i420ToRgb({
    width: 2,
    height: 2,
    y: plane(81, 2, 2),
    u: plane(90, 1, 1),
    v: plane(240, 1, 1),
  });
  assert.deepEqual([...red.subarray(0, 3)].map((c) => Math.round(c / 8)), [32, 0, 0]);
  const white = i420ToRgb({
    width: 2,
    height: 2,
    y: plane(235, 2, 2),
    u: plane(128, 1, 1),
    v: plane(128, 1, 1),
  });
  assert.deepEqual([...white], new Array(12).fill(255));
  assert.throws(
    () =>
      i420ToRgb(
        { width: 2, height: 2, y: plane(0, 2, 2), u: plane(0, 1, 1), v: plane(0, 1, 1) },
        new Uint8Array(3),
      ),
    /needs 12/,
  );
});
