/**
 * The speech-to-text contract the server's pipeline codes against. `server/stt/whisper.ts`
 * implements it with Whisper on onnxruntime-node (`loadWhisper(modelDir)`), `worker_client.ts` runs
 * that in a worker thread (`loadWhisperWorker(modelDir)`); tests may pass any other
 * implementation (e.g. a stub that returns a fixed transcript).
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
    /** Utterances transcribed in the same run (absent: 1); the times above are the run's. */
    batch?: number;
  };
}

/** Transcribes 16 kHz mono float samples in [-1, 1]. */
export interface SpeechToText {
  /**
   * An aborted `signal` rejects it with the signal's reason (whisper.ts notices between decoder
   * steps, the worker client at once). The samples are handed over: an implementation may move
   * their buffer elsewhere (the worker transfers it), so the caller must not read them afterwards.
   */
  transcribe(samples16k: Float32Array, options?: { signal?: AbortSignal }): Promise<Transcript>;
  /**
   * Several utterances in one batched run (absent: the implementation has no batch axis); one
   * transcript per input, in order. Aborting `signal` aborts the whole batch.
   */
  transcribeBatch?(
    samples16k: Float32Array[],
    options?: { signal?: AbortSignal },
  ): Promise<Transcript[]>;
  /** Releases what the implementation holds (the worker thread); later calls reject. */
  close?(): Promise<void>;
}
