/**
 * Real speech for tests and benchmarks: espeak-ng (Debian package) renders text to a WAV.
 * Sine waves score as speech with Silero, so tests speak instead (ENVIRONMENT.md).
 */
import { readWav, type WavAudio } from "../../shared/audio.ts";

/** Options for {@link speak}. */
export interface SpeakOptions {
  /** espeak-ng voice, e.g. "en-us". */
  voice?: string;
  /** Words per minute. */
  wordsPerMinute?: number;
}

/** Renders `text` with espeak-ng; 22.05 kHz mono samples. */
export async function speak(text: string, options: SpeakOptions = {}): Promise<WavAudio> {
  const { voice = "en-us", wordsPerMinute = 165 } = options;
  const output = await new Deno.Command("espeak-ng", {
    args: ["--stdout", "-v", voice, "-s", String(wordsPerMinute), text],
    stdout: "piped",
    stderr: "piped",
  }).output().catch((error) => {
    throw new Error(`espeak-ng could not run (apt-get install espeak-ng): ${error}`);
  });
  if (!output.success) {
    throw new Error(`espeak-ng failed: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
  return readWav(output.stdout);
}
