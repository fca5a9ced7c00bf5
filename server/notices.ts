/**
 * The server's two fixed spoken notices about its load (docs/protocol.md "Waiting for
 * inference"): "one moment" while a turn waits in the queue, and the apology that comes with a
 * `busy` refusal. Synthesized once per output rate with the server's TTS and kept, so speaking
 * them costs nothing when the server is busiest. Synthesis runs outside the inference queue:
 * espeak-ng takes a few ms for these short phrases.
 *
 * @example
 * ```ts
 * const notices = new Notices(() => createTts());
 * const pcm = await notices.speech("busy", 16000); // int16 mono LE PCM at 16 kHz
 * ```
 */
import { float32ToPcm, pcmToFloat32, resample } from "../shared/audio.ts";
import type { Logger } from "../shared/log.ts";
import type { TextToSpeech } from "./tts/types.ts";

/** Which notice. */
export type NoticeKind = "wait" | "busy";

/** What each notice says. */
export const NOTICE_TEXT: Readonly<Record<NoticeKind, string>> = Object.freeze({
  wait: "One moment.",
  busy: "Sorry, I'm overloaded right now, please try again in a moment.",
});

/** Spoken notices, cached per kind and rate. */
export class Notices {
  #tts: Promise<TextToSpeech> | undefined;
  #open: () => Promise<TextToSpeech>;
  #cache = new Map<string, Promise<Uint8Array>>();
  #log: Logger | undefined;
  #owns: boolean;

  /**
   * `open` gives the TTS on first use (the echo pipeline has none of its own); `owns`: whether
   * {@link close} closes it (false when it is the pipeline's).
   */
  constructor(open: () => Promise<TextToSpeech>, options: { log?: Logger; owns?: boolean } = {}) {
    this.#open = open;
    this.#log = options.log;
    this.#owns = options.owns ?? true;
  }

  /**
   * The notice as int16 mono LE PCM at `rate`; an empty array if the TTS fails (logged once per
   * kind and rate): a notice is a courtesy, never a reason to fail a turn.
   */
  speech(kind: NoticeKind, rate: number): Promise<Uint8Array> {
    const key = `${kind}@${rate}`;
    let cached = this.#cache.get(key);
    if (cached === undefined) {
      cached = this.#synthesize(kind, rate);
      this.#cache.set(key, cached);
    }
    return cached;
  }

  /** Closes the TTS if it was opened here. */
  async close(): Promise<void> {
    const tts = this.#tts;
    this.#tts = undefined;
    if (tts !== undefined && this.#owns) await (await tts.catch(() => undefined))?.close?.();
  }

  async #synthesize(kind: NoticeKind, rate: number): Promise<Uint8Array> {
    try {
      this.#tts ??= this.#open();
      const speech = await (await this.#tts).synthesize(NOTICE_TEXT[kind], { rate });
      if (speech.rate === rate) return speech.pcm;
      return float32ToPcm(resample(pcmToFloat32(speech.pcm), speech.rate, rate));
    } catch (error) {
      this.#log?.warn("notice not synthesized; sent without audio", { kind, rate, error });
      return new Uint8Array(0);
    }
  }
}
