/**
 * Text to speech for the server: the {@link TextToSpeech} contract, the built-in espeak-ng
 * voice and the sentence splitter that lets the first sentence play before the rest is made.
 *
 * Piper (ONNX voices under `models/piper/`, phonemes from espeak-ng) is not implemented yet:
 * {@link createTts} always returns espeak-ng. A Piper engine would implement the same
 * `TextToSpeech` interface (espeak-ng `--ipa`/`-x` phonemes → the voice's phoneme id map →
 * onnxruntime-node `input`, `input_lengths`, `scales` → float PCM at the voice's rate →
 * `resample`), and `createTts` would prefer it when `models/piper/*.onnx(.json)` exist.
 */
import { EspeakTts } from "./espeak.ts";
import type { TextToSpeech } from "./types.ts";

export { DEFAULT_ESPEAK_SPEED_WPM, EspeakTts } from "./espeak.ts";
export { MAX_SENTENCE_CHARS, SentenceSplitter, splitSentences } from "./sentences.ts";
export { type Speech, type TextToSpeech, TtsError } from "./types.ts";

/** Options of {@link createTts}. */
export interface TtsOptions {
  /** espeak-ng voice name (TTS_VOICE), default `en-us`. */
  voice?: string;
}

/** The voice the server speaks with. */
export function createTts(options: TtsOptions = {}): TextToSpeech {
  // The server speaks many sentences: keep the next espeak-ng process ready (~6 ms each).
  return new EspeakTts({ voice: options.voice, prespawn: true });
}
