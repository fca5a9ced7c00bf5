/**
 * The worker side of `worker_client.ts`: loads Whisper (whisper.ts) in its own thread and answers
 * the client's requests, so onnxruntime's blocking runs (≈ 150 ms for a whisper-tiny encoder run)
 * stall this thread's event loop, not the server's. Started by the client, never imported.
 *
 * Requests are handled in the order they arrive and transcriptions run one at a time (whisper.ts
 * queues them); an `abort` reaches the running transcription between two decoder steps, since
 * onnxruntime-node resolves each run from a macrotask.
 */

import { loadWhisper, type WhisperOptions } from "./whisper.ts";
import type { SpeechToText, Transcript } from "./types.ts";

/**
 * Client → worker. `id` pairs a request with its reply; an `abort` names a transcription's id.
 * One utterance is a batch of one.
 */
export type WorkerRequest =
  | { type: "load"; id: number; modelDir: string; options: WhisperOptions }
  | { type: "transcribe_batch"; id: number; batch: Float32Array[] }
  | { type: "abort"; id: number };

/** Worker → client: the outcome of a `load` or `transcribe_batch`, exactly one per request. */
export type WorkerReply =
  | { id: number; ok: true; transcripts?: Transcript[] }
  | { id: number; ok: false; error: { name: string; message: string } };

/** The worker's global scope as used here (Deno types `self` as a window's). */
interface WorkerScope {
  postMessage(reply: WorkerReply): void;
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
}

const scope = self as unknown as WorkerScope;
let stt: Promise<SpeechToText> | undefined;
/** The transcriptions asked for and not finished, by request id. */
const running = new Map<number, AbortController>();

function failed(id: number, error: unknown): WorkerReply {
  const { name, message } = error instanceof Error ? error : new Error(String(error));
  return { id, ok: false, error: { name, message } };
}

scope.onmessage = ({ data: request }) => {
  switch (request.type) {
    case "load":
      stt = loadWhisper(request.modelDir, request.options);
      stt.then(
        () => scope.postMessage({ id: request.id, ok: true }),
        (error) => scope.postMessage(failed(request.id, error)),
      );
      return;
    case "transcribe_batch": {
      const controller = new AbortController();
      running.set(request.id, controller);
      (stt ?? Promise.reject(new Error("transcribe before load")))
        .then((loaded) => {
          const options = { signal: controller.signal };
          return loaded.transcribeBatch?.(request.batch, options) ??
            Promise.all(request.batch.map((samples) => loaded.transcribe(samples, options)));
        })
        .then(
          (transcripts) => scope.postMessage({ id: request.id, ok: true, transcripts }),
          (error) => scope.postMessage(failed(request.id, error)),
        )
        .finally(() => running.delete(request.id));
      return;
    }
    case "abort":
      running.get(request.id)?.abort();
      return;
  }
};
