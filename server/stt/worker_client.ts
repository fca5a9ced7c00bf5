/**
 * Whisper in a worker thread, behind the same {@linkcode SpeechToText} contract as
 * `loadWhisper`. onnxruntime-node's `session.run` holds the calling thread for the whole run (a
 * whisper-tiny encoder run: ≈ 150 ms of stalled event loop), so in the server's thread no socket
 * would be read while STT runs: `end` messages, pings and other gateways' audio would wait.
 * `stt_worker.ts` runs it instead; this thread only posts the samples and awaits the transcript.
 *
 * @example
 * ```ts
 * const stt = await loadWhisperWorker("models/whisper-tiny.en", { encoderFrames: "fit" });
 * const { text } = await stt.transcribe(samples16k, { signal });
 * await stt.close();
 * ```
 */

import { WhisperModelError } from "./model_error.ts";
import type { WorkerReply, WorkerRequest } from "./stt_worker.ts";
import type { SpeechToText, Transcript } from "./types.ts";
import type { WhisperOptions } from "./whisper.ts";
import { rebuildWorkerError, type WorkerError, WorkerRpc } from "../worker_rpc.ts";

/** {@linkcode SpeechToText} on a worker running `loadWhisper`; `close()` ends the worker. */
export class WhisperWorker implements SpeechToText {
  readonly #rpc = new WorkerRpc<WorkerRequest, WorkerReply>(
    new URL("./stt_worker.ts", import.meta.url),
    { name: "speech-to-text worker", rebuildError },
  );

  /** Loads the model in the worker; rejects as `loadWhisper` would (a {@linkcode WhisperModelError}). */
  async load(modelDir: string, options: WhisperOptions = {}): Promise<void> {
    await this.#rpc.request((id) => ({ type: "load", id, modelDir, options }));
  }

  /**
   * The samples' buffer is transferred to the worker, not copied, when the array spans all of it
   * (the caller's array is then empty). Aborting `signal` rejects at once with its reason; the
   * worker stops that transcription at its next decoder step.
   */
  async transcribe(
    samples16k: Float32Array,
    options: { signal?: AbortSignal } = {},
  ): Promise<Transcript> {
    return (await this.transcribeBatch([samples16k], options))[0];
  }

  /**
   * Several utterances in one batched run in the worker (whisper.ts `transcribeBatch`); the
   * buffers are transferred like {@link transcribe}'s. Aborting `signal` aborts the batch.
   */
  async transcribeBatch(
    samples16k: Float32Array[],
    options: { signal?: AbortSignal } = {},
  ): Promise<Transcript[]> {
    const { signal } = options;
    signal?.throwIfAborted();
    const batch = samples16k.map(ownBuffer);
    const reply = await this.#rpc.request(
      (id) => ({ type: "transcribe_batch", id, batch }),
      { signal, transfer: batch.map((samples) => samples.buffer) },
    );
    if (reply.transcripts?.length !== batch.length) {
      throw new Error("speech-to-text worker sent no transcripts");
    }
    return reply.transcripts;
  }

  /** Ends the worker (a transcription in progress is abandoned); pending calls reject. */
  close(): Promise<void> {
    this.#rpc.close(new Error("speech-to-text worker closed"));
    return Promise.resolve();
  }
}

/**
 * Loads a Whisper model directory in a worker thread (see {@linkcode WhisperWorker}); rejects,
 * with the worker ended, when `loadWhisper` would, with the same error.
 */
export async function loadWhisperWorker(
  modelDir: string,
  options: WhisperOptions = {},
): Promise<WhisperWorker> {
  const stt = new WhisperWorker();
  try {
    await stt.load(modelDir, options);
  } catch (error) {
    await stt.close();
    throw error;
  }
  return stt;
}

/** The samples in an ArrayBuffer of their own, which can be transferred whole. */
function ownBuffer(samples: Float32Array): Float32Array<ArrayBuffer> {
  const { buffer } = samples;
  if (
    buffer instanceof ArrayBuffer && samples.byteOffset === 0 &&
    samples.byteLength === buffer.byteLength
  ) {
    return samples as Float32Array<ArrayBuffer>;
  }
  return samples.slice();
}

/** The worker's error as the same class when it is one callers test for. */
function rebuildError(error: WorkerError): Error {
  if (error.name === "WhisperModelError") return new WhisperModelError(error.message);
  return rebuildWorkerError(error);
}
