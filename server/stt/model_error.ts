/**
 * The error a Whisper model directory that cannot be used is reported with. In a module of its
 * own so that the worker client (worker_client.ts) can rebuild it without loading onnxruntime.
 */

/** Thrown when the model directory is incomplete or its files do not match the export layout. */
export class WhisperModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WhisperModelError";
  }
}
