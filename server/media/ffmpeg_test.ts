import assert from "node:assert/strict";
import { pcmToFloat32, readWav, rms } from "../../shared/audio.ts";
import { decodeAudio, DECODED_AUDIO_RATE, sampleVideoFrames } from "./ffmpeg.ts";
import { MediaError } from "./link.ts";
import { encodeAudio, photoClip, speechWav, toneWav } from "./testing.ts";

const LIMITS = { timeoutMs: 20_000, maxMs: 60_000 };

Deno.test("decodeAudio turns WAV, Opus and MP3 speech into 16 kHz PCM of the same length", async () => {
  const wav = await speechWav("Is anyone at the front door?");
  const source = readWav(wav);
  const sourceMs = (source.samples.length / source.rate) * 1000;
  for (
    const [format, bytes] of [
      ["wav", wav],
      ["opus", await encodeAudio(wav, "opus")],
      ["mp3", await encodeAudio(wav, "mp3")],
    ] as const
  ) {
    const decoded = await decodeAudio(bytes, format, LIMITS);
    assert.equal(decoded.rate, DECODED_AUDIO_RATE);
    // Codecs pad a little (an MP3 frame is 1152 samples, plus encoder delay): within 120 ms.
    assert.ok(
      Math.abs(decoded.durationMs - sourceMs) < 120,
      `${format}: ${decoded.durationMs} ms decoded, ${sourceMs} ms spoken`,
    );
    assert.ok(rms(pcmToFloat32(decoded.pcm)) > 0.01, `${format}: speech, not silence`);
  }
});

Deno.test("decodeAudio caps the decoded length at maxMs", async () => {
  const decoded = await decodeAudio(toneWav(3, 16000), "wav", { timeoutMs: 20_000, maxMs: 1000 });
  assert.equal(decoded.pcm.length, DECODED_AUDIO_RATE * 2);
});

Deno.test("decodeAudio: bytes that are not audio, or not the declared format, name what was wrong", async () => {
  const notAudio = new TextEncoder().encode("this is a text file, not a recording".repeat(20));
  for (const format of ["wav", "opus", "mp3"] as const) {
    await assert.rejects(decodeAudio(notAudio, format, LIMITS), (error: Error) => {
      assert.ok(error instanceof MediaError);
      assert.equal(error.code, "not_audio");
      assert.match(error.message, new RegExp(`^${format} recording`));
      return true;
    });
  }
  // A WAV declared as Opus: the forced Ogg demuxer refuses it.
  await assert.rejects(decodeAudio(toneWav(0.5, 16000), "opus", LIMITS), /opus recording/);
});

Deno.test("sampleVideoFrames gives one JPEG per second of an MP4/H.264 and a WebM/VP8 clip", async () => {
  for (const format of ["mp4", "webm"] as const) {
    const clip = await photoClip("chelsea.png", format, 3);
    const frames = await sampleVideoFrames(clip, format, LIMITS);
    assert.deepEqual(frames.map((f) => f.atMs), [0, 1000, 2000], format);
    for (const frame of frames) assert.deepEqual([...frame.jpeg.subarray(0, 2)], [0xff, 0xd8]);
  }
});

Deno.test("sampleVideoFrames refuses a clip that is not video", async () => {
  await assert.rejects(
    sampleVideoFrames(toneWav(0.5, 16000), "mp4", LIMITS),
    (error: Error) => error instanceof MediaError && error.code === "not_video",
  );
});
