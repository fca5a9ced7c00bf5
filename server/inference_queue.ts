/**
 * Sequential inference (spec 16.2: "Inference is sequential, not concurrent"): one turn runs at
 * a time, the rest wait in a bounded FIFO. A full queue refuses new turns at once with a
 * {@link QueueError} of code `busy`, so a flood of utterances cannot build unbounded latency. A
 * turn cancelled while waiting leaves the queue without running; a turn cancelled while running
 * sees its `signal` aborted and is expected to stop at its next stage boundary.
 *
 * @example
 * ```ts
 * const queue = new InferenceQueue({ capacity: 4 });
 * const controller = new AbortController();
 * const reply = await queue.run("t1", (signal) => pipeline.run(utterance, sink, { signal }), {
 *   signal: controller.signal,
 * });
 * ```
 */

/** Waiting turns allowed by default: 4 × ~1 s of inference is the most latency worth queueing. */
export const DEFAULT_QUEUE_CAPACITY = 4;

/** Why the queue refused or dropped a turn. */
export type QueueErrorCode = "busy" | "cancelled";

/** A turn the queue refused (`busy`) or that was cancelled before or while it ran. */
export class QueueError extends Error {
  override name = "QueueError";
  constructor(readonly code: QueueErrorCode, readonly turn: string, message: string) {
    super(message);
  }
}

/** Options of {@link InferenceQueue}. */
export interface InferenceQueueOptions {
  /** Turns that may wait behind the running one; a turn beyond this is refused with `busy`. */
  capacity?: number;
}

interface Waiting {
  turn: string;
  start: () => void;
  cancel: (error: QueueError) => void;
}

/** Runs jobs one at a time in arrival order, with a bounded waiting line. */
export class InferenceQueue {
  readonly capacity: number;
  #waiting: Waiting[] = [];
  #running: string | undefined;

  constructor(options: InferenceQueueOptions = {}) {
    const capacity = options.capacity ?? DEFAULT_QUEUE_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new RangeError(`queue capacity ${capacity} is not allowed, expected an integer >= 0`);
    }
    this.capacity = capacity;
  }

  /** Turns waiting (not counting the running one). */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Nothing runs and nothing waits: work started now competes with no turn for the CPU. */
  get idle(): boolean {
    return this.#running === undefined && this.#waiting.length === 0;
  }

  /** The turn running now, if any. */
  get running(): string | undefined {
    return this.#running;
  }

  /**
   * Runs `job` when every earlier job has finished. Rejects with {@link QueueError} `busy` when
   * `capacity` turns already wait, and `cancelled` when `options.signal` aborts before the job
   * starts. Once started, the job gets a signal that aborts with the caller's.
   */
  run<T>(
    turn: string,
    job: (signal: AbortSignal) => Promise<T>,
    options: { signal?: AbortSignal } = {},
  ): Promise<T> {
    const signal = options.signal ?? new AbortController().signal;
    if (signal.aborted) {
      return Promise.reject(new QueueError("cancelled", turn, `turn ${turn} was cancelled`));
    }
    const idle = this.#running === undefined && this.#waiting.length === 0;
    if (!idle && this.#waiting.length >= this.capacity) {
      return Promise.reject(
        new QueueError("busy", turn, `inference queue is full (${this.capacity} turns)`),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const entry: Waiting = {
        turn,
        start: () => {
          signal.removeEventListener("abort", onAbort);
          this.#running = turn;
          let result: Promise<T>;
          try {
            result = job(signal);
          } catch (error) {
            result = Promise.reject(error);
          }
          result.then(resolve, reject).finally(() => {
            this.#running = undefined;
            this.#next();
          });
        },
        cancel: reject,
      };
      const onAbort = () => {
        const index = this.#waiting.indexOf(entry);
        if (index === -1) return;
        this.#waiting.splice(index, 1);
        entry.cancel(new QueueError("cancelled", turn, `turn ${turn} was cancelled while queued`));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(entry);
      if (this.#running === undefined) this.#next();
    });
  }

  #next(): void {
    if (this.#running !== undefined) return;
    const entry = this.#waiting.shift();
    entry?.start();
  }
}

/**
 * Throws a {@link QueueError} `cancelled` when `signal` has aborted: the check a running job
 * makes at each stage boundary (after STT, after the assistant, between sentences).
 */
export function stopIfCancelled(signal: AbortSignal | undefined, turn: string): void {
  if (signal?.aborted) {
    throw new QueueError("cancelled", turn, `turn ${turn} was cancelled while running`);
  }
}
