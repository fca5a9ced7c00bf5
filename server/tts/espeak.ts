/**
 * The built-in voice: the espeak-ng command line (Debian package `espeak-ng`), one process per
 * sentence, its 22.05 kHz WAV resampled to the rate the gateway asked for. A process keeps a
 * crash or hang of the synthesizer out of the server. Starting one and loading its voice data
 * costs ~6 ms of the ~11 ms a short sentence takes, so with `prespawn` the next process is
 * started (waiting on stdin) while the current sentence plays, off the first-audio path.
 *
 * @example
 * ```ts
 * const tts = new EspeakTts({ voice: "en-us" });
 * const { pcm } = await tts.synthesize("It is five past three.", { rate: 16000 });
 * ```
 */
import { float32ToPcm, readWav, resample } from "../../shared/audio.ts";
import { feedAndCollect, type Speech, type TextToSpeech, TtsError } from "./types.ts";

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
  /** Keep one process started and waiting for the next sentence; call `close()` when done. */
  prespawn?: boolean;
}

/** espeak-ng through its CLI. */
export class EspeakTts implements TextToSpeech {
  readonly name: string;
  readonly #voice: string;
  readonly #speed: number;
  readonly #command: string;
  readonly #prespawn: boolean;
  #spare: Deno.ChildProcess | undefined;
  #closed = false;

  constructor(options: EspeakOptions = {}) {
    this.#voice = options.voice ?? "en-us";
    this.#speed = options.speedWpm ?? DEFAULT_ESPEAK_SPEED_WPM;
    this.#command = options.command ?? "espeak-ng";
    this.#prespawn = options.prespawn ?? false;
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
    signal.throwIfAborted();
    const spare = this.#takeSpare();
    if (spare !== undefined) {
      try {
        return await this.#runKillable(spare, text, options.rate, signal);
      } catch (error) {
        // A spare that died while waiting (killed, out of memory) gets one fresh retry.
        if (signal.aborted || !(error instanceof TtsError)) throw error;
      }
    }
    return await this.#runKillable(this.#spawn(), text, options.rate, signal);
  }

  async #runKillable(
    child: Deno.ChildProcess,
    text: string,
    rate: number,
    signal: AbortSignal,
  ): Promise<Speech> {
    const kill = () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    };
    signal.addEventListener("abort", kill, { once: true });
    try {
      return await this.#run(child, text, rate, signal);
    } finally {
      signal.removeEventListener("abort", kill);
      if (this.#prespawn && !this.#closed && this.#spare === undefined) {
        try {
          this.#spare = this.#spawn();
        } catch {
          // The next sentence spawns its own and reports the error.
        }
      }
    }
  }

  /** Stops the waiting process, if any. */
  async close(): Promise<void> {
    this.#closed = true;
    const spare = this.#spare;
    this.#spare = undefined;
    if (spare === undefined) return;
    try {
      spare.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await spare.output().catch(() => {});
  }

  #takeSpare(): Deno.ChildProcess | undefined {
    const spare = this.#spare;
    this.#spare = undefined;
    return spare;
  }

  #spawn(): Deno.ChildProcess {
    try {
      return new Deno.Command(this.#command, {
        // Text on stdin, never argv: a reply starting with "-" must not become an option.
        args: ["--stdout", "-v", this.#voice, "-s", String(this.#speed)],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      throw new TtsError(this.name, `cannot start ${this.#command}: ${(error as Error).message}`);
    }
  }

  async #run(
    child: Deno.ChildProcess,
    text: string,
    rate: number,
    signal: AbortSignal,
  ): Promise<Speech> {
    const output = await feedAndCollect(child, text);
    if (signal.aborted) {
      throw new TtsError(this.name, `synthesis stopped: ${String(signal.reason)}`);
    }
    if (!output.success) {
      const stderr = new TextDecoder().decode(output.stderr).trim().slice(0, 200);
      throw new TtsError(this.name, `exited with code ${output.code}: ${stderr}`);
    }
    const wav = readWav(output.stdout);
    const samples = wav.rate === rate ? wav.samples : resample(wav.samples, wav.rate, rate);
    return { pcm: float32ToPcm(samples), rate };
  }
}
