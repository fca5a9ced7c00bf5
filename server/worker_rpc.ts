/**
 * Request and reply with a worker thread, for the model runners that must not block the server's
 * event loop (stt/worker_client.ts, vision/vision_client.ts). Each request carries an `id`; the
 * worker answers each one exactly once with `{ id, ok: true, ... }` or `{ id, ok: false, error }`.
 * An aborted request rejects here at once and the worker is told with `{ type: "abort", id }`.
 * Errors cross the thread boundary as {@link WorkerError} (structured clone keeps no subclass) and
 * are rebuilt as the classes callers test for. The worker side answers failures with
 * {@link errorReply}.
 *
 * @example
 * ```ts
 * const rpc = new WorkerRpc<Request, Reply>(new URL("./my_worker.ts", import.meta.url), {
 *   name: "my worker",
 *   rebuildError: (error) => rebuildWorkerError(error),
 * });
 * const reply = await rpc.request((id) => ({ type: "run", id }), { signal });
 * rpc.close(new Error("my worker closed"));
 * ```
 */

/** An error as it crosses the worker boundary; `code` is kept when the error has a string one. */
export interface WorkerError {
  name: string;
  message: string;
  code?: string;
}

/** The reply shape a worker sends: exactly one per request, paired by `id`. */
export type WorkerReplyShape =
  | { id: number; ok: true }
  | { id: number; ok: false; error: WorkerError };

/** A request sent to the worker and not answered yet. */
interface Pending<Ok> {
  resolve(reply: Ok): void;
  reject(error: Error): void;
}

/** How a {@link WorkerRpc} names its worker and rebuilds the worker's errors. */
export interface WorkerRpcOptions {
  /** Names the worker in errors: "`name` failed: …". */
  name: string;
  /** The worker's error as the class callers test for; defaults to {@link rebuildWorkerError}. */
  rebuildError?: (error: WorkerError) => Error;
}

/** Client side of a request/reply worker; see the module doc. */
export class WorkerRpc<
  Request extends { type: string; id: number },
  Reply extends WorkerReplyShape,
> {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending<Extract<Reply, { ok: true }>>>();
  /** Ids posted and not yet answered by the worker (aborted ones until then too). */
  readonly #posted = new Set<number>();
  readonly #rebuildError: (error: WorkerError) => Error;
  #nextId = 0;
  /** Set once the worker is gone (closed or crashed): every request rejects with it. */
  #gone: Error | undefined;

  /** Starts the worker module at `url`. */
  constructor(url: URL, options: WorkerRpcOptions) {
    this.#rebuildError = options.rebuildError ?? rebuildWorkerError;
    this.#worker = new Worker(url.href, { type: "module" });
    this.#worker.onmessage = ({ data: reply }: MessageEvent<Reply>) => {
      // The request leaves the worker's hands when it answers, even if no one awaits it now.
      this.#posted.delete(reply.id);
      const pending = this.#pending.get(reply.id);
      // Absent: a request aborted here already, whose outcome no one awaits.
      if (pending === undefined) return;
      this.#pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply as Extract<Reply, { ok: true }>);
      else pending.reject(this.#rebuildError((reply as { error: WorkerError }).error));
    };
    this.#worker.onerror = (event) => {
      // Handled here: otherwise a worker's uncaught error would end this process too.
      event.preventDefault();
      this.close(new Error(`${options.name} failed: ${event.message}`));
    };
  }

  /** Requests posted and not yet answered by the worker, aborted ones included. */
  get inFlight(): number {
    return this.#posted.size;
  }

  /**
   * Posts `message(id)` (with `transfer`'s buffers moved, not copied) and resolves with the
   * worker's `ok` reply. Rejects with the rebuilt error of an `ok: false` reply, with the reason
   * the worker is gone, or at once with `signal`'s reason when it aborts (and the worker is sent
   * `{ type: "abort", id }`).
   */
  async request(
    message: (id: number) => Request,
    options: { transfer?: Transferable[]; signal?: AbortSignal } = {},
  ): Promise<Extract<Reply, { ok: true }>> {
    const { transfer = [], signal } = options;
    signal?.throwIfAborted();
    if (this.#gone !== undefined) throw this.#gone;
    const id = this.#nextId++;
    const onAbort = () => {
      this.#pending.get(id)?.reject(signal!.reason);
      this.#pending.delete(id);
      if (this.#gone === undefined) this.#worker.postMessage({ type: "abort", id });
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return await new Promise((resolve, reject) => {
        this.#pending.set(id, { resolve, reject });
        this.#posted.add(id);
        this.#worker.postMessage(message(id), transfer);
      });
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Ends the worker (work in progress is abandoned); pending and later requests reject with `reason`. */
  close(reason: Error): void {
    if (this.#gone !== undefined) return;
    this.#gone = reason;
    this.#worker.terminate();
    for (const pending of this.#pending.values()) pending.reject(reason);
    this.#pending.clear();
    this.#posted.clear();
  }
}

/** A worker's global scope as the worker side uses it (Deno types `self` as a window's). */
export interface WorkerScope<Request, Reply> {
  postMessage(reply: Reply): void;
  onmessage: ((event: MessageEvent<Request>) => void) | null;
}

/**
 * Worker side: the reply to request `id` that failed with `error` (any thrown value), as a
 * {@link WorkerError} that keeps the error's string `code` if it has one.
 */
export function errorReply(
  id: number,
  error: unknown,
): { id: number; ok: false; error: WorkerError } {
  const { name, message } = error instanceof Error ? error : new Error(String(error));
  const code = (error as { code?: unknown } | null)?.code;
  return {
    id,
    ok: false,
    error: typeof code === "string" ? { name, message, code } : { name, message },
  };
}

/**
 * A {@link WorkerError} as an `Error` of the same `name` and `message`; an "AbortError" as the
 * `DOMException` that `signal.throwIfAborted()` would throw.
 */
export function rebuildWorkerError({ name, message }: WorkerError): Error {
  if (name === "AbortError") return new DOMException(message, "AbortError");
  const error = new Error(message);
  error.name = name;
  return error;
}
