/**
 * The worker side of vision_client.ts: runs analyzer.ts in its own thread, one image at a time,
 * so TF.js WASM inference (150–230 ms of blocked thread per CenterNet frame) and OCR never stall
 * the server's event loop. Started by the client, never imported.
 */
import { type Analysis, type Analyzer, type AnalyzerOptions, createAnalyzer } from "./analyzer.ts";
import { errorReply, type WorkerError, type WorkerScope } from "../worker_rpc.ts";

/** Client → worker. `id` pairs a request with its reply; `abort` names an analyze's id. */
export type WorkerRequest =
  | { type: "load"; id: number; options: AnalyzerOptions }
  | { type: "analyze"; id: number; image: Uint8Array; ocr: boolean }
  | { type: "abort"; id: number };

/** Worker → client: exactly one per load or analyze. `code` is an ImageError's. */
export type WorkerReply =
  | { id: number; ok: true; analysis?: Analysis }
  | { id: number; ok: false; error: WorkerError };

const scope = self as unknown as WorkerScope<WorkerRequest, WorkerReply>;
let analyzer: Promise<Analyzer> | undefined;
/** Analyze requests run strictly in order, one at a time: a chain of promises. */
let queue: Promise<void> = Promise.resolve();
/** Ids of analyses waiting for their turn, and those of them aborted (skipped when it comes). */
const waiting = new Set<number>();
const aborted = new Set<number>();

async function analyze(request: Extract<WorkerRequest, { type: "analyze" }>): Promise<void> {
  waiting.delete(request.id);
  if (aborted.delete(request.id)) {
    scope.postMessage(errorReply(request.id, new DOMException("analysis aborted", "AbortError")));
    return;
  }
  try {
    if (analyzer === undefined) throw new Error("analyze before load");
    const analysis = await (await analyzer).analyze(request.image, { ocr: request.ocr });
    scope.postMessage({ id: request.id, ok: true, analysis });
  } catch (error) {
    scope.postMessage(errorReply(request.id, error));
  }
}

scope.onmessage = ({ data: request }) => {
  switch (request.type) {
    case "load":
      analyzer = createAnalyzer(request.options);
      analyzer.then(
        () => scope.postMessage({ id: request.id, ok: true }),
        (error) => scope.postMessage(errorReply(request.id, error)),
      );
      return;
    case "analyze":
      waiting.add(request.id);
      queue = queue.then(() => analyze(request));
      return;
    case "abort":
      if (waiting.has(request.id)) aborted.add(request.id);
      return;
  }
};
