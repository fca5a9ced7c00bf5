/**
 * The built-in voice: the espeak-ng command line (Debian package `espeak-ng`), one process per
 * sentence, its 22.05 kHz WAV resampled to the rate the gateway asked for. Starting the process
 * costs ~10 ms, small next to a sentence's playback time, and keeps a crash or hang of the
 * synthesizer out of the server process.
 *
 * @example
 * ```ts
 * const tts = new EspeakTts({ voice: "en-us" });
 * const { pcm } = await tts.synthesize("It is five past three.", { rate: 16000 });
 * ```
 */
import { float32ToPcm, readWav, resample } from "../../shared/audio.ts";
import { type Speech, type TextToSpeech, TtsError } from "./types.ts";

/** Longest a sentence may take to synthesize before the process is killed (normal: ~10-50 ms). */
export const ESPEAK_TIMEOUT_MS = 10_000;
/** espeak-ng's default speed in words per minute is 175; slightly slower is clearer on speakers. */
export const DEFAULT_ESPEAK_SPEED_WPM = 165;

/** Options of {@link EspeakTts}. */
export interface EspeakOptions {
  /** espeak-ng voice, e.g. `en-us`, `en-gb`; default `en-us`. */
  voice?: string;
  /** Words per minute (80..450). */
  speedWpm?: number;
  /** Executable; default `espeak-ng` on PATH. */
  command?: string;
}

/** espeak-ng through its CLI. */
export class EspeakTts implements TextToSpeech {
  readonly name: string;
  readonly #voice: string;
  readonly #speed: number;
  readonly #command: string;

  constructor(options: EspeakOptions = {}) {
    this.#voice = options.voice ?? "en-us";
    this.#speed = options.speedWpm ?? DEFAULT_ESPEAK_SPEED_WPM;
    this.#command = options.command ?? "espeak-ng";
    if (!/^[A-Za-z0-9_+\-]{1,40}$/.test(this.#voice)) {
      throw new RangeError(`espeak voice ${JSON.stringify(this.#voice)} is not a voice name`);
    }
    if (!Number.isInteger(this.#speed) || this.#speed < 80 || this.#speed > 450) {
      throw new RangeError(`espeak speed ${this.#speed} is not an integer 80..450 words/minute`);
    }
    this.name = `espeak-ng:${this.#voice}`;
  }

  async synthesize(
    text: string,
    options: { rate: number; signal?: AbortSignal },
  ): Promise<Speech> {
    const signal = options.signal
      ? AbortSignal.any([options.signal, AbortSignal.timeout(ESPEAK_TIMEOUT_MS)])
      : AbortSignal.timeout(ESPEAK_TIMEOUT_MS);
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(this.#command, {
        // Text on stdin, never argv: a reply starting with "-" must not become an option.
        args: ["--stdout", "-v", this.#voice, "-s", String(this.#speed)],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        signal,
      }).spawn();
    } catch (error) {
      throw new TtsError(this.name, `cannot start ${this.#command}: ${(error as Error).message}`);
    }
    const writer = child.stdin.getWriter();
    try {
      await writer.write(new TextEncoder().encode(text));
      await writer.close();
    } catch {
      // The process died or was killed; its exit status below says why.
    }
    const output = await child.output();
    if (signal.aborted) {
      throw new TtsError(this.name, `synthesis stopped: ${String(signal.reason)}`);
    }
    if (!output.success) {
      const stderr = new TextDecoder().decode(output.stderr).trim().slice(0, 200);
      throw new TtsError(this.name, `exited with code ${output.code}: ${stderr}`);
    }
    const wav = readWav(output.stdout);
    const samples = wav.rate === options.rate
      ? wav.samples
      : resample(wav.samples, wav.rate, options.rate);
    return { pcm: float32ToPcm(samples), rate: options.rate };
  }
}
