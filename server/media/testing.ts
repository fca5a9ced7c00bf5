/**
 * Real media for the media tests and the benchmark: speech rendered by espeak-ng and encoded by
 * ffmpeg into the recording formats of spec 11.6, and video clips made from real photos. No
 * bytes are faked: each clip is what a device would send.
 */
import { writeWav } from "../../shared/audio.ts";

/** Where set-up puts the real photos (from Debian's python3-skimage package). */
export const PHOTOS_DIR = new URL("../../test-data/photos/", import.meta.url).pathname;

/** Renders `text` with espeak-ng as a WAV file. */
export async function speechWav(text: string): Promise<Uint8Array> {
  const output = await new Deno.Command("espeak-ng", {
    args: ["--stdout", "-v", "en-us", text],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`espeak-ng failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return output.stdout;
}

/** A WAV of `seconds` of a 440 Hz tone at `rate`. */
export function toneWav(seconds: number, rate: number): Uint8Array {
  const samples = new Float32Array(Math.round(seconds * rate));
  for (let i = 0; i < samples.length; i++) {
    samples[i] = 0.3 * Math.sin(2 * Math.PI * 440 * i / rate);
  }
  return writeWav(samples, rate);
}

/** Runs ffmpeg with `args`, `input` on stdin; returns stdout. */
async function ffmpeg(args: string[], input?: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command("ffmpeg", {
    args: ["-hide_banner", "-loglevel", "error", ...args],
    stdin: input ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input) {
    const writer = child.stdin.getWriter();
    await writer.write(input);
    await writer.close();
  }
  const output = await child.output();
  if (!output.success) throw new Error(`ffmpeg failed: ${new TextDecoder().decode(output.stderr)}`);
  return output.stdout;
}

/** Encodes a WAV as Opus in Ogg (48 kHz, as a device would record) or MP3. */
export function encodeAudio(wav: Uint8Array, format: "opus" | "mp3"): Promise<Uint8Array> {
  return format === "opus"
    ? ffmpeg([
      "-f",
      "wav",
      "-i",
      "pipe:0",
      "-ar",
      "48000",
      "-c:a",
      "libopus",
      "-f",
      "ogg",
      "pipe:1",
    ], wav)
    : ffmpeg(["-f", "wav", "-i", "pipe:0", "-c:a", "libmp3lame", "-f", "mp3", "pipe:1"], wav);
}

/** A `seconds`-long clip showing `photo` (MP4/H.264 or WebM/VP8, 640 pixels wide). */
export async function photoClip(
  photo: string,
  format: "mp4" | "webm",
  seconds: number,
): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "naila_clip_test_" });
  try {
    const out = `${dir}/clip.${format}`;
    const codec = format === "mp4"
      ? ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast"]
      : ["-c:v", "libvpx", "-b:v", "1M"];
    await ffmpeg([
      "-loop",
      "1",
      "-i",
      `${PHOTOS_DIR}${photo}`,
      "-t",
      String(seconds),
      "-r",
      "5",
      "-vf",
      "scale=640:-2",
      ...codec,
      out,
    ]);
    return await Deno.readFile(out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A photo converted to a JPEG of `width`×`height` (the camera's snapshot). */
export function photoJpeg(photo: string, width: number, height: number): Promise<Uint8Array> {
  return ffmpeg([
    "-i",
    `${PHOTOS_DIR}${photo}`,
    "-vf",
    `scale=${width}:${height}`,
    "-q:v",
    "3",
    "-f",
    "image2pipe",
    "-c:v",
    "mjpeg",
    "pipe:1",
  ]);
}
