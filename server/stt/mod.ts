/**
 * Speech to text: the {@linkcode SpeechToText} contract and its Whisper implementation on
 * onnxruntime-node. Read in order: log_mel.ts (front end), tokenizer.ts, encoder_session.ts
 * (the encoder's window, rewritten by encoder_window.ts when shorter than 30 s),
 * whisper_sessions.ts (opening and checking the export's files and graphs, whisper_files.ts),
 * whisper.ts (cached greedy decoding on logits.ts, batches), worker_client.ts + stt_worker.ts
 * (the same in a worker thread over ../worker_rpc.ts, which the server uses).
 *
 * @example
 * ```ts
 * import { loadWhisper, whisperModelPresent } from "./mod.ts";
 * if (await whisperModelPresent("models/whisper-tiny.en")) {
 *   const stt = await loadWhisper("models/whisper-tiny.en");
 *   const { text } = await stt.transcribe(samples16k);
 * }
 * ```
 */

export type { SpeechToText, Transcript } from "./types.ts";
export {
  DECODER_FILE,
  DEFAULT_MAX_TOKENS,
  DEFAULT_NO_SPEECH_THRESHOLD,
  DEFAULT_SILENCE_GATE_DBFS,
  ENCODER_FILE,
  loadWhisper,
  WhisperModelError,
  whisperModelPresent,
  type WhisperOptions,
} from "./whisper.ts";
export { loadWhisperWorker, WhisperWorker } from "./worker_client.ts";
export { LogMelSpectrogram, melFilterbank } from "./log_mel.ts";
export { WhisperTokenizer } from "./tokenizer.ts";
