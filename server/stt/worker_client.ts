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

/** A request sent to the worker and not answered yet. */
interface Pending {
  resolve(reply: Extract<WorkerReply, { ok: true }>): void;
  reject(error: Error): void;
}

/** {@linkcode SpeechToText} on a worker running `loadWhisper`; `close()` ends the worker. */
export class WhisperWorker implements SpeechToText {
  readonly #worker = new Worker(new URL("./stt_worker.ts", import.meta.url).href, {
    type: "module",
  });
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  /** Set once the worker is gone (closed or crashed): every request rejects with it. */
  #gone: Error | undefined;

  constructor() {
    this.#worker.onmessage = ({ data: reply }: MessageEvent<WorkerReply>) => {
      const pending = this.#pending.get(reply.id);
      // Absent: a transcription aborted here already, whose outcome no one awaits.
      if (pending === undefined) return;
      this.#pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply);
      else pending.reject(rebuildError(reply.error));
    };
    this.#worker.onerror = (event) => {
      // Handled here: otherwise a worker's uncaught error would end this process too.
      event.preventDefault();
      this.#end(new Error(`speech-to-text worker failed: ${event.message}`));
    };
  }

  /** Loads the model in the worker; rejects as `loadWhisper` would (a {@linkcode WhisperModelError}). */
  async load(modelDir: string, options: WhisperOptions = {}): Promise<void> {
    await this.#request((id) => ({ type: "load", id, modelDir, options }));
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
    let id = -1;
    const onAbort = () => {
      this.#pending.get(id)?.reject(signal!.reason);
      this.#pending.delete(id);
      if (this.#gone === undefined) this.#worker.postMessage({ type: "abort", id });
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const reply = await this.#request((assigned) => {
        id = assigned;
        return { type: "transcribe_batch", id, batch };
      }, batch.map((samples) => samples.buffer));
      if (reply.transcripts?.length !== batch.length) {
        throw new Error("speech-to-text worker sent no transcripts");
      }
      return reply.transcripts;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Ends the worker (a transcription in progress is abandoned); pending calls reject. */
  close(): Promise<void> {
    this.#end(new Error("speech-to-text worker closed"));
    return Promise.resolve();
  }

  #request(
    message: (id: number) => WorkerRequest,
    transfer: Transferable[] = [],
  ): Promise<Extract<WorkerReply, { ok: true }>> {
    if (this.#gone !== undefined) return Promise.reject(this.#gone);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage(message(id), transfer);
    });
  }

  #end(reason: Error): void {
    if (this.#gone !== undefined) return;
    this.#gone = reason;
    this.#worker.terminate();
    for (const pending of this.#pending.values()) pending.reject(reason);
    this.#pending.clear();
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
function rebuildError({ name, message }: { name: string; message: string }): Error {
  if (name === "WhisperModelError") return new WhisperModelError(message);
  const error = new Error(message);
  error.name = name;
  return error;
}
