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
import { rebuildWorkerError, type WorkerError, WorkerRpc } from "../worker_rpc.ts";

/** Default bound on images waiting or being analysed: at ~200 ms each, ~1 s of backlog. */
export const DEFAULT_MAX_QUEUE = 4;

class VisionWorker implements Vision {
  readonly #rpc = new WorkerRpc<WorkerRequest, WorkerReply>(
    new URL("./vision_worker.ts", import.meta.url),
    { name: "vision worker", rebuildError },
  );

  constructor(private readonly maxQueue: number, private readonly maxBytes: number) {}

  async load(options: AnalyzerOptions): Promise<void> {
    await this.#rpc.request((id) => ({ type: "load", id, options }));
  }

  async analyze(image: Uint8Array, options: AnalyzeOptions): Promise<VisualContext> {
    const { signal, source, ocr = false } = options;
    signal?.throwIfAborted();
    sniffImage(image, this.maxBytes); // bad bytes fail here without taking a queue slot
    // A slot frees when the worker answers, even if the caller stopped waiting (abort).
    const inFlight = this.#rpc.inFlight;
    if (inFlight >= this.maxQueue) {
      throw new VisionBusyError(
        `vision queue is full (${inFlight} of ${this.maxQueue} images in progress); try later`,
      );
    }
    const { analysis } = await this.#rpc.request(
      (id) => ({ type: "analyze", id, image, ocr }),
      { signal },
    );
    if (analysis === undefined) throw new Error("vision worker sent no analysis");
    return { source, ...analysis };
  }

  close(): Promise<void> {
    this.#rpc.close(new Error("vision closed"));
    return Promise.resolve();
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
function rebuildError(error: WorkerError): Error {
  if (error.name === "ImageError") {
    return new ImageError(error.code as ImageErrorCode, error.message);
  }
  return rebuildWorkerError(error);
}
