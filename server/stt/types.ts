/**
 * The speech-to-text contract the server's pipeline codes against. `server/stt/whisper.ts`
 * implements it with Whisper on onnxruntime-node (`loadWhisper(modelDir)`); tests may pass any
 * other implementation (e.g. a stub that returns a fixed transcript).
 */

/** What one utterance was heard as, and where the time went. */
export interface Transcript {
  /** The recognized text, trimmed; empty when nothing intelligible was heard. */
  text: string;
  timings: {
    /** Log-mel front end. */
    frontend_ms: number;
    encoder_ms: number;
    /** All decoder steps together. */
    decoder_ms: number;
    /** Tokens generated (excluding the prompt). */
    tokens: number;
  };
}

/** Transcribes 16 kHz mono float samples in [-1, 1]. */
export interface SpeechToText {
  transcribe(samples16k: Float32Array, options?: { signal?: AbortSignal }): Promise<Transcript>;
}
