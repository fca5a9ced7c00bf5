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
import { errorReply, type WorkerError, type WorkerScope } from "../worker_rpc.ts";

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
  | { id: number; ok: false; error: WorkerError };

const scope = self as unknown as WorkerScope<WorkerRequest, WorkerReply>;
let stt: Promise<SpeechToText> | undefined;
/** The transcriptions asked for and not finished, by request id. */
const running = new Map<number, AbortController>();

scope.onmessage = ({ data: request }) => {
  switch (request.type) {
    case "load":
      stt = loadWhisper(request.modelDir, request.options);
      stt.then(
        () => scope.postMessage({ id: request.id, ok: true }),
        (error) => scope.postMessage(errorReply(request.id, error)),
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
          (error) => scope.postMessage(errorReply(request.id, error)),
        )
        .finally(() => running.delete(request.id));
      return;
    }
    case "abort":
      running.get(request.id)?.abort();
      return;
  }
};
