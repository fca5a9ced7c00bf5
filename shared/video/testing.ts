/**
 * Test fixtures for video tests (shared/video/, gateway/video/, tests/), made at test time from real sources (nothing binary is
 * committed): photos from Debian's python3-skimage package, VP8 streams encoded by Debian's
 * ffmpeg (libvpx). Test-only: nothing outside `*_test.ts` and benchmarks imports this.
 *
 * Photos: `test-data/photos/NAME` when scripts/test_photos.ts (another branch) has put them
 * there; otherwise this module extracts the same files once into `test-output/photos/`. When
 * both exist after the merge, delete {@link testPhoto}'s extraction and keep the script.
 */

import assert from "node:assert/strict";
import { readIvf } from "./ivf.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SHARED_PHOTOS = `${ROOT}test-data/photos`;
const CACHED_PHOTOS = `${ROOT}test-output/photos`;
const SKIMAGE_DATA = "usr/lib/python3/dist-packages/skimage/data";

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function run(command: string, args: string[], cwd?: string): Promise<void> {
  const out = await new Deno.Command(command, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr).slice(-2000);
    throw new Error(`${command} ${args.join(" ")} exited with ${out.code}: ${stderr}`);
  }
}

/**
 * The path of a skimage sample photo (e.g. `astronaut.png`, `coffee.png`), extracting
 * python3-skimage's data folder with `apt-get download` + `dpkg-deb -x` on first use.
 */
export async function testPhoto(name: string): Promise<string> {
  if (await exists(`${SHARED_PHOTOS}/${name}`)) return `${SHARED_PHOTOS}/${name}`;
  const cached = `${CACHED_PHOTOS}/${name}`;
  if (await exists(cached)) return cached;
  const work = await Deno.makeTempDir({ prefix: "naila-skimage-" });
  try {
    await run("apt-get", ["download", "-qq", "python3-skimage"], work);
    const deb = [...Deno.readDirSync(work)].find((e) => e.name.endsWith(".deb"));
    if (!deb) throw new Error("apt-get download python3-skimage produced no .deb");
    await run("dpkg-deb", ["-x", deb.name, "x"], work);
    await Deno.mkdir(`${ROOT}test-output`, { recursive: true });
    // Rename is atomic: a concurrent test either sees the whole folder or extracts its own.
    await Deno.rename(`${work}/x/${SKIMAGE_DATA}`, CACHED_PHOTOS).catch(async (error) => {
      if (!await exists(CACHED_PHOTOS)) throw error;
    });
  } finally {
    await Deno.remove(work, { recursive: true });
  }
  if (!await exists(cached)) throw new Error(`python3-skimage has no photo named ${name}`);
  return cached;
}

/** What {@link encodeVp8} feeds ffmpeg. */
export interface Vp8Source {
  /** ffmpeg input arguments, e.g. `["-loop", "1", "-i", photo]` or a lavfi source. */
  inputs: string[];
  /** A `-filter_complex` graph ending in `[out]`, or omitted for the first input as is. */
  filter?: string;
  /** Frames to encode. */
  frames: number;
  /** Frames per second (the IVF time base). */
  fps?: number;
  /** Target bitrate, e.g. `"500k"` (WebRTC-like). */
  bitrate?: string;
  /** Keyframe interval in frames. */
  keyframeInterval?: number;
}

/**
 * Encodes a real VP8 stream with Debian's ffmpeg (libvpx, real-time settings like a browser's:
 * no alt-ref frames, no lookahead) and returns the IVF bytes. Temp files are removed.
 */
export async function encodeVp8(source: Vp8Source): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "naila-vp8-" });
  try {
    const out = `${dir}/out.ivf`;
    const args = ["-hide_banner", "-loglevel", "error", ...source.inputs];
    if (source.filter) args.push("-filter_complex", source.filter, "-map", "[out]");
    args.push(
      "-frames:v",
      String(source.frames),
      "-r",
      String(source.fps ?? 5),
      "-pix_fmt",
      "yuv420p",
      "-c:v",
      "libvpx",
      "-b:v",
      source.bitrate ?? "500k",
      "-deadline",
      "realtime",
      "-cpu-used",
      "8",
      "-auto-alt-ref",
      "0",
      "-lag-in-frames",
      "0",
      "-g",
      String(source.keyframeInterval ?? 1000),
      "-f",
      "ivf",
      out,
    );
    await run("ffmpeg", args);
    return await Deno.readFile(out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A still photo scaled to `width`×`height` as `frames` VP8 frames (frame 0 the keyframe). */
export async function encodePhotoVp8(
  photo: string,
  options: { width: number; height: number; frames: number; filter?: string },
): Promise<Uint8Array> {
  const scale = `scale=${options.width}:${options.height}`;
  return await encodeVp8({
    inputs: ["-loop", "1", "-i", photo],
    filter: `[0:v]${scale}${options.filter ? `,${options.filter}` : ""}[out]`,
    frames: options.frames,
  });
}

/** The frames of an IVF file (for tests that need only the VP8 data). */
export function ivfFrames(ivf: Uint8Array): Uint8Array[] {
  return readIvf(ivf).frames.map((f) => f.data);
}

/** Asserts that `fn` throws an instance of `type` whose message includes `text`. */
export function assertThrowsWith(
  fn: () => unknown,
  type: new (...args: never[]) => Error,
  text = "",
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    assert.ok(error.message.includes(text), `"${error.message}" does not include "${text}"`);
    return true;
  });
}

/** FFmpeg's own VP8 decoder (not libvpx) on an IVF: raw I420 frames back to back. VP8
 * decoding is bit-exact by specification (RFC 6386), so this is an independent reference. */
export async function decodeWithFfmpeg(ivf: Uint8Array): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "naila-vp8-" });
  try {
    await Deno.writeFile(`${dir}/in.ivf`, ivf);
    await run("ffmpeg", [
      "-hide_banner",
      "-loglevel",
      "error",
      "-c:v",
      "vp8",
      "-i",
      `${dir}/in.ivf`,
      "-f",
      "rawvideo",
      "-pix_fmt",
      "yuv420p",
      `${dir}/out.yuv`,
    ]);
    return await Deno.readFile(`${dir}/out.yuv`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Writes a Y4M clip for Chromium's fake camera (`--use-file-for-fake-video-capture`, which loops
 * it): `sceneSeconds` of the scene photo, then as long again with the person photo pasted over
 * it at `box` (640×480, `fps`). Returns the box.
 */
export async function writeWalkInY4m(
  path: string,
  options: { fps: number; sceneSeconds: number },
): Promise<{ x: number; y: number; width: number; height: number }> {
  const box = { x: 400, y: 220, width: 200, height: 200 };
  const scene = await testPhoto("coffee.png");
  const person = await testPhoto("astronaut.png");
  const rate = String(options.fps);
  const frames = options.fps * options.sceneSeconds;
  await run("ffmpeg", [
    "-hide_banner",
    "-loglevel",
    "error",
    "-y",
    ...["-loop", "1", "-framerate", rate, "-i", scene],
    ...["-loop", "1", "-framerate", rate, "-i", person],
    "-filter_complex",
    `[0:v]scale=640:480[b];[1:v]scale=${box.width}:${box.height}[p];` +
    `[b][p]overlay=x=${box.x}:y=${box.y}:enable='gte(n,${frames})'[out]`,
    ...["-map", "[out]", "-frames:v", String(2 * frames), "-pix_fmt", "yuv420p", path],
  ]);
  return box;
}

/** The person walk-in of the camera tests and benchmarks, as 640×480 VP8 (IVF bytes). */
export interface WalkIn {
  fps: number;
  /** Seconds of the still scene (coffee.png) before the person appears. */
  sceneSeconds: number;
  /** Seconds with the person (astronaut.png, 400×400 at 240,80: CenterNet finds it). */
  personSeconds: number;
  keyframeInterval?: number;
}

/** Encodes a {@link WalkIn}: frame `fps × sceneSeconds` is the first with the person. */
export async function encodeWalkIn(options: WalkIn): Promise<Uint8Array> {
  const scene = await testPhoto("coffee.png");
  const person = await testPhoto("astronaut.png");
  const appear = Math.round(options.fps * options.sceneSeconds);
  return await encodeVp8({
    // `-framerate`: the overlay's frame number `n` counts output frames (a looped image
    // is read at 25 fps otherwise).
    inputs: [
      ...["-loop", "1", "-framerate", String(options.fps), "-i", scene],
      ...["-loop", "1", "-framerate", String(options.fps), "-i", person],
    ],
    filter: `[0:v]scale=640:480[b];[1:v]scale=400:400[p];` +
      `[b][p]overlay=x=240:y=80:enable='gte(n,${appear})'[out]`,
    frames: Math.round(options.fps * (options.sceneSeconds + options.personSeconds)),
    fps: options.fps,
    keyframeInterval: options.keyframeInterval,
  });
}
