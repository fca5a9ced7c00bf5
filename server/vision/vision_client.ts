/**
 * {@link Vision} on a worker thread (vision_worker.ts) behind a bounded queue: a camera sending
 * frames faster than detection runs gets {@link VisionBusyError} at once instead of a growing
 * backlog, and the server's thread only sniffs the format and posts the bytes, so voice turns are
 * not delayed (issue 12). Images are copied to the worker, never transferred: callers keep theirs
 * (alert storage, say).
 */
import type { AnalyzerOptions } from "./analyzer.ts";
import { DEFAULT_MAX_BYTES, sniffImage } from "./image_decoder.ts";
import {
  type AnalyzeOptions,
  ImageError,
  type ImageErrorCode,
  type Vision,
  VisionBusyError,
  type VisionOptions,
  type VisualContext,
} from "./types.ts";
import type { WorkerReply, WorkerRequest } from "./vision_worker.ts";

/** Default bound on images waiting or being analysed: at ~200 ms each, ~1 s of backlog. */
export const DEFAULT_MAX_QUEUE = 4;

interface Pending {
  resolve(reply: Extract<WorkerReply, { ok: true }>): void;
  reject(error: Error): void;
}

class VisionWorker implements Vision {
  readonly #worker = new Worker(new URL("./vision_worker.ts", import.meta.url).href, {
    type: "module",
  });
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  /** Ids of analyses posted and not yet answered by the worker (aborted ones until then too). */
  readonly #inFlight = new Set<number>();
  #gone: Error | undefined;

  constructor(private readonly maxQueue: number, private readonly maxBytes: number) {
    this.#worker.onmessage = ({ data: reply }: MessageEvent<WorkerReply>) => {
      // The slot frees when the worker answers, even if the caller stopped waiting (abort).
      this.#inFlight.delete(reply.id);
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      // Absent: an analysis aborted here already, whose outcome no one awaits.
      if (pending === undefined) return;
      if (reply.ok) pending.resolve(reply);
      else pending.reject(rebuildError(reply.error));
    };
    this.#worker.onerror = (event) => {
      // Handled here: otherwise a worker's uncaught error would end the server too.
      event.preventDefault();
      this.#end(new Error(`vision worker failed: ${event.message}`));
    };
  }

  async load(options: AnalyzerOptions): Promise<void> {
    await this.#request((id) => ({ type: "load", id, options }));
  }

  async analyze(image: Uint8Array, options: AnalyzeOptions): Promise<VisualContext> {
    const { signal, source, ocr = false } = options;
    signal?.throwIfAborted();
    sniffImage(image, this.maxBytes); // bad bytes fail here without taking a queue slot
    if (this.#inFlight.size >= this.maxQueue) {
      throw new VisionBusyError(
        `vision queue is full (${this.#inFlight.size} of ${this.maxQueue} images in progress); ` +
          "try later",
      );
    }
    let id = -1;
    const onAbort = () => {
      this.#pending.get(id)?.reject(signal!.reason);
      this.#pending.delete(id);
      if (this.#gone === undefined) this.#worker.postMessage({ type: "abort", id });
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const { analysis } = await this.#request((assigned) => {
        id = assigned;
        this.#inFlight.add(id);
        return { type: "analyze", id, image, ocr };
      });
      if (analysis === undefined) throw new Error("vision worker sent no analysis");
      return { source, ...analysis };
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  close(): Promise<void> {
    this.#end(new Error("vision closed"));
    return Promise.resolve();
  }

  #request(message: (id: number) => WorkerRequest): Promise<Extract<WorkerReply, { ok: true }>> {
    if (this.#gone !== undefined) return Promise.reject(this.#gone);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage(message(id));
    });
  }

  #end(reason: Error): void {
    if (this.#gone !== undefined) return;
    this.#gone = reason;
    this.#worker.terminate();
    for (const pending of this.#pending.values()) pending.reject(reason);
    this.#pending.clear();
    this.#inFlight.clear();
  }
}

/**
 * Starts the vision worker and loads the detector (CenterNet by default); see {@link Vision}.
 * @throws {Error} the detector does not load ("yolo" without a usable `yoloModelPath`).
 */
export async function createVision(options: VisionOptions = {}): Promise<Vision> {
  const { maxQueue = DEFAULT_MAX_QUEUE, ...analyzerOptions } = options;
  if (!(Number.isInteger(maxQueue) && maxQueue >= 1)) {
    throw new RangeError(`vision maxQueue must be a positive integer, got ${maxQueue}`);
  }
  const vision = new VisionWorker(maxQueue, options.maxBytes ?? DEFAULT_MAX_BYTES);
  try {
    await vision.load(analyzerOptions);
  } catch (error) {
    await vision.close();
    throw error;
  }
  return vision;
}

/** The worker's error as the class callers test for. */
function rebuildError({ name, message, code }: { name: string; message: string; code?: string }) {
  if (name === "ImageError") return new ImageError(code as ImageErrorCode, message);
  if (name === "AbortError") return new DOMException(message, "AbortError");
  const error = new Error(message);
  error.name = name;
  return error;
}
