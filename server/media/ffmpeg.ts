/**
 * Recordings decoded with Debian's ffmpeg in a subprocess (spec 11.6 formats, 11.13 "all audio
 * is normalized to PCM"): audio clips (Opus in Ogg, WAV, MP3) become 16 kHz mono int16 PCM for
 * Whisper; video clips (MP4/H.264, WebM/VP8) give JPEG frames sampled at a fixed interval for
 * detection. Every run is bounded: the demuxer is forced from the declared format (no probing,
 * no playlists), only the file and pipe protocols are allowed, the decoded length is capped
 * (`-t`), the output bytes are capped, and the process is killed after a timeout.
 *
 * @example
 * ```ts
 * const { pcm, durationMs } = await decodeAudio(oggBytes, "opus", { timeoutMs: 20_000, maxMs: 60_000 });
 * const frames = await sampleVideoFrames(mp4Bytes, "mp4", { timeoutMs: 20_000, maxMs: 60_000 });
 * ```
 */
import { join } from "node:path";
import { concatBytes } from "../../shared/audio.ts";
import { MediaError } from "./link.ts";

/** The PCM rate decodeAudio returns: Whisper's input rate. */
export const DECODED_AUDIO_RATE = 16000;
/** One video frame per second: motion clips are seconds long, people do not vanish faster. */
export const FRAME_INTERVAL_MS = 1000;
/** Frames sampled from one clip at most: bounds detection work to a few seconds. */
export const MAX_VIDEO_FRAMES = 8;
/** Sampled frames are scaled down to this width at most: the detector letterboxes to 512. */
const MAX_FRAME_WIDTH = 1280;
/** Most of ffmpeg's stderr kept for an error message. */
const MAX_STDERR_CHARS = 2000;

/** ffmpeg's demuxer for each declared container format. */
const DEMUXERS = {
  opus: "ogg",
  wav: "wav",
  mp3: "mp3",
  mp4: "mp4",
  webm: "webm",
} as const;

/** Limits of one ffmpeg run. */
export interface DecodeLimits {
  /** Kill ffmpeg after this long (MEDIA_DECODE_TIMEOUT_MS). */
  timeoutMs: number;
  /** Decode at most this much of the clip (MEDIA_MAX_CLIP_MS). */
  maxMs: number;
}

/** Decoded audio: int16 mono little-endian PCM at {@link DECODED_AUDIO_RATE}. */
export interface DecodedAudio {
  pcm: Uint8Array;
  rate: number;
  durationMs: number;
}

/** One sampled video frame. */
export interface VideoFrame {
  /** Time in the clip, ms. */
  atMs: number;
  jpeg: Uint8Array;
}

/** Whether the ffmpeg binary is installed (scripts/setup.ts installs it). */
export async function hasFfmpeg(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("ffmpeg", {
      args: ["-version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

interface RunOptions {
  stdin?: Uint8Array;
  timeoutMs: number;
  maxOutputBytes: number;
  /** What a failure is called: "not_audio" or "not_video". */
  failure: "not_audio" | "not_video";
  what: string;
}

/** Runs ffmpeg; resolves its stdout, or throws a MediaError naming what went wrong. */
async function runFfmpeg(args: string[], options: RunOptions): Promise<Uint8Array> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("ffmpeg", {
      args: ["-hide_banner", "-loglevel", "error", "-nostdin", ...args],
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    throw new MediaError(
      "unavailable",
      `ffmpeg cannot start (${
        (error as Error).message
      }): install the Debian package ffmpeg (deno task setup)`,
    );
  }
  let killedFor: string | undefined;
  const kill = (why: string) => {
    if (killedFor !== undefined) return;
    killedFor = why;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  };
  const timer = setTimeout(
    () => kill(`took longer than ${options.timeoutMs} ms (MEDIA_DECODE_TIMEOUT_MS)`),
    options.timeoutMs,
  );
  const writing = options.stdin
    ? (async () => {
      const writer = child.stdin.getWriter();
      try {
        await writer.write(options.stdin!);
        await writer.close();
      } catch {
        // ffmpeg stopped reading (bad input or killed): its exit status tells why.
      }
    })()
    : Promise.resolve();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reading = (async () => {
    for await (const chunk of child.stdout) {
      size += chunk.length;
      if (size > options.maxOutputBytes) {
        kill(`decoded to more than ${options.maxOutputBytes} bytes`);
        continue;
      }
      chunks.push(chunk);
    }
  })();
  let stderr = "";
  const readingErrors = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      if (stderr.length < MAX_STDERR_CHARS) stderr += chunk;
    }
  })();
  const [status] = await Promise.all([child.status, writing, reading, readingErrors]);
  clearTimeout(timer);
  if (killedFor !== undefined) {
    throw new MediaError("too_large", `${options.what}: ffmpeg stopped, the clip ${killedFor}`);
  }
  if (!status.success) {
    const reason = stderr.trim().split("\n").slice(-2).join("; ").slice(0, 300) ||
      `exit code ${status.code}`;
    throw new MediaError(options.failure, `${options.what} could not be decoded: ${reason}`);
  }
  return concatBytes(chunks);
}

/**
 * Decodes an audio clip to 16 kHz mono int16 PCM (at most `limits.maxMs` of it).
 * @throws {MediaError} "not_audio" when ffmpeg cannot decode it as `format`, "too_large" when
 * a limit stopped it, "unavailable" when ffmpeg is missing.
 */
export async function decodeAudio(
  bytes: Uint8Array,
  format: "opus" | "wav" | "mp3",
  limits: DecodeLimits,
): Promise<DecodedAudio> {
  const maxBytes = Math.ceil((limits.maxMs / 1000) * DECODED_AUDIO_RATE) * 2 + 4096;
  // deno-fmt-ignore
  const args = [
    "-protocol_whitelist", "pipe", "-f", DEMUXERS[format], "-i", "pipe:0",
    "-t", (limits.maxMs / 1000).toFixed(3), "-vn", "-ac", "1", "-ar", String(DECODED_AUDIO_RATE),
    "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1",
  ];
  const pcm = await runFfmpeg(args, {
    stdin: bytes,
    timeoutMs: limits.timeoutMs,
    maxOutputBytes: maxBytes,
    failure: "not_audio",
    what: `${format} recording`,
  });
  if (pcm.length < 2) {
    throw new MediaError("not_audio", `${format} recording decoded to no audio samples`);
  }
  const even = pcm.length - (pcm.length % 2);
  return {
    pcm: pcm.subarray(0, even),
    rate: DECODED_AUDIO_RATE,
    durationMs: (even / 2 / DECODED_AUDIO_RATE) * 1000,
  };
}

/**
 * Samples one JPEG frame per {@link FRAME_INTERVAL_MS} of a video clip (at most
 * {@link MAX_VIDEO_FRAMES}), scaled to at most 1280 pixels wide. The clip goes through a temp
 * file (MP4 puts its index at the end, so ffmpeg must seek), removed afterwards.
 * @throws {MediaError} "not_video", "too_large", "unavailable".
 */
export async function sampleVideoFrames(
  bytes: Uint8Array,
  format: "mp4" | "webm",
  limits: DecodeLimits,
): Promise<VideoFrame[]> {
  const dir = await Deno.makeTempDir({ prefix: "naila_clip_" });
  try {
    const input = join(dir, `clip.${format}`);
    await Deno.writeFile(input, bytes);
    // deno-fmt-ignore
    const args = [
      "-protocol_whitelist", "file", "-f", DEMUXERS[format], "-i", input,
      "-t", (limits.maxMs / 1000).toFixed(3), "-an",
      "-vf", `fps=1000/${FRAME_INTERVAL_MS},scale='min(${MAX_FRAME_WIDTH},iw)':-2`,
      "-frames:v", String(MAX_VIDEO_FRAMES), "-q:v", "3", join(dir, "frame_%03d.jpg"),
    ];
    await runFfmpeg(args, {
      timeoutMs: limits.timeoutMs,
      maxOutputBytes: 0,
      failure: "not_video",
      what: `${format} video clip`,
    });
    const frames: VideoFrame[] = [];
    for (let index = 1; index <= MAX_VIDEO_FRAMES; index++) {
      const path = join(dir, `frame_${String(index).padStart(3, "0")}.jpg`);
      const jpeg = await Deno.readFile(path).catch(() => undefined);
      if (jpeg === undefined) break;
      frames.push({ atMs: (index - 1) * FRAME_INTERVAL_MS, jpeg });
    }
    if (frames.length === 0) {
      throw new MediaError("not_video", `${format} video clip has no video frames`);
    }
    return frames;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
