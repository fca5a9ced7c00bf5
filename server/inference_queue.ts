/**
 * Sequential inference (spec 16.2: "Inference is sequential, not concurrent"), shared fairly by
 * every device: one turn runs at a time; the rest wait in one line per device, served
 * round-robin (a device with many turns waiting gets one turn per round, so no device starves
 * another). Nothing is refused for a count of turns per connection: a turn is refused with a
 * {@link QueueError} `busy` only when what is really scarce runs out (see {@link QueueLimits}):
 * queued audio to transcribe, the estimated wait, and buffered audio bytes. An idle queue
 * accepts any turn. A turn cancelled while waiting leaves the queue without running; a turn
 * cancelled while running sees its `signal` aborted and is expected to stop at its next stage
 * boundary.
 *
 * @example
 * ```ts
 * const queue = new InferenceQueue();
 * const controller = new AbortController();
 * const reply = await queue.run("t1", (signal) => pipeline.run(utterance, sink, { signal }), {
 *   signal: controller.signal,
 *   device: "kitchen",
 *   audioMs: 1800,
 *   onQueued: ({ position, waitMs }) => console.log(`waiting behind ${position} turns`),
 * });
 * ```
 */

/** Limits of the queue; every one is a server variable (server/config.ts). */
export interface QueueLimits {
  /**
   * Turns waiting at most, across all devices (INFERENCE_QUEUE_SIZE): a last guard against a
   * flood of tiny turns; the other limits normally bind first.
   */
  maxWaiting: number;
  /** Audio waiting to be processed, ms (QUEUE_MAX_AUDIO_S): the work the queue holds. */
  maxQueuedAudioMs: number;
  /**
   * Estimated wait of a new turn, ms (QUEUE_MAX_WAIT_MS): beyond it an answer would come too
   * late to be useful, so the turn is refused at once with a spoken apology.
   */
  maxWaitMs: number;
  /** Audio bytes buffered by all turns, receiving or queued (QUEUE_MAX_BYTES): memory. */
  maxBufferedBytes: number;
}

/**
 * Defaults: 256 turns (ten times the devices of a large home); 600 s of audio (40 devices × a
 * 15 s utterance); 20 s of estimated wait (a gateway that hears `state` events keeps waiting; a
 * longer wait is no longer a conversation); 64 MiB of audio (≈ 35 min of 16 kHz int16, spec 16.3
 * budgets ~1 MB per request).
 */
export const DEFAULT_QUEUE_LIMITS: Readonly<QueueLimits> = Object.freeze({
  maxWaiting: 256,
  maxQueuedAudioMs: 600_000,
  maxWaitMs: 20_000,
  maxBufferedBytes: 64 * 1024 * 1024,
});

/**
 * Turns in the average turn duration: with batched STT the first turn of a batch runs long and
 * the next ones short, so the mean must span several batches (STT_BATCH ≤ 8 by default).
 */
const DURATION_WINDOW = 32;
/**
 * Turns measured before the estimated wait may refuse a turn: one cold turn (the first after
 * start, or a lone unbatched one) says little about how fast a full queue drains.
 */
const MIN_DURATIONS = 8;

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
  limits?: Partial<QueueLimits>;
  /**
   * Former option: turns that may wait. Kept so INFERENCE_QUEUE_SIZE keeps its meaning; it
   * sets `limits.maxWaiting`.
   */
  capacity?: number;
}

/** Where a waiting turn stands: turns that run before it, and the estimated wait in ms. */
export interface QueuePosition {
  position: number;
  waitMs: number;
}

/** Options of {@link InferenceQueue.run}. */
export interface RunJobOptions {
  signal?: AbortSignal;
  /** Whose turn it is: the unit of fairness (default: the turn id, i.e. its own device). */
  device?: string;
  /** Audio the job processes, ms (counted against `maxQueuedAudioMs`). */
  audioMs?: number;
  /**
   * What a running job may do ahead for this turn while it waits (the utterance: its STT in a
   * batch with the running turn's); see {@link InferenceQueue.upcoming}.
   */
  payload?: unknown;
  /** The turn's own speculative STT, which a new turn must not abort (see `speculating`). */
  spare?: AbortController;
  /**
   * Called synchronously when the turn cannot start at once, with where it stands and a
   * function telling where it stands later (undefined once it left the queue).
   */
  onQueued?: (where: QueuePosition, now: () => QueuePosition | undefined) => void;
}

/** The queue's load, for the server status (shared/messages.ts `ServerLoad`). */
export interface QueueLoad {
  /** Turns waiting (not counting the running one). */
  queuedTurns: number;
  /** Audio of the waiting turns, s. */
  queuedAudioS: number;
  /** Devices with a turn waiting or running. */
  activeDevices: number;
  /** Audio bytes buffered by turns (receiving or queued). */
  bufferedBytes: number;
  /** Mean run time of the recent turns, ms (0 before the first turn). */
  turnMs: number;
  /** Estimated wait of a turn queued now, ms. */
  waitMs: number;
}

interface Waiting {
  turn: string;
  payload: unknown;
  device: string;
  audioMs: number;
  start: () => void;
  cancel: (error: QueueError) => void;
}

/** Runs jobs one at a time, round-robin across devices, with limits on what is scarce. */
export class InferenceQueue {
  readonly limits: Readonly<QueueLimits>;
  /** Waiting turns per device, oldest first; the map's order is the round-robin order. */
  #lines = new Map<string, Waiting[]>();
  #waiting = 0;
  #queuedAudioMs = 0;
  #bufferedBytes = 0;
  #running: { turn: string; device: string; startedAt: number } | undefined;
  /** Durations of the last {@link DURATION_WINDOW} turns, ms, and their sum. */
  #durations: number[] = [];
  #durationSum = 0;
  #speculations = new Set<AbortController>();

  constructor(options: InferenceQueueOptions = {}) {
    const limits = { ...DEFAULT_QUEUE_LIMITS, ...options.limits };
    if (options.capacity !== undefined) limits.maxWaiting = options.capacity;
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isFinite(value) || value < 0) {
        throw new RangeError(`queue limit ${name} ${value} is not allowed, expected a number >= 0`);
      }
    }
    this.limits = Object.freeze(limits);
  }

  /** Turns waiting (not counting the running one). */
  get waiting(): number {
    return this.#waiting;
  }

  /** Nothing runs and nothing waits: work started now competes with no turn for the CPU. */
  get idle(): boolean {
    return this.#running === undefined && this.#waiting === 0;
  }

  /** The turn running now, if any. */
  get running(): string | undefined {
    return this.#running?.turn;
  }

  /** What the server status reports. */
  load(): QueueLoad {
    const devices = new Set(this.#lines.keys());
    if (this.#running) devices.add(this.#running.device);
    return {
      queuedTurns: this.#waiting,
      queuedAudioS: Math.round(this.#queuedAudioMs / 100) / 10,
      activeDevices: devices.size,
      bufferedBytes: this.#bufferedBytes,
      turnMs: Math.round(this.#turnMs),
      waitMs: Math.round(this.#waitFor(this.#waiting)),
    };
  }

  /**
   * Registers speculative STT (started on a `pause` while the queue was idle): it runs only
   * while no final turn wants the CPU, so every {@link run} aborts it, except the run of the
   * turn it belongs to (`spare`). Finals first. Returns the unregister function.
   */
  speculating(controller: AbortController): () => void {
    this.#speculations.add(controller);
    return () => this.#speculations.delete(controller);
  }

  /**
   * Reserves `bytes` of buffered audio (a turn's audio as it arrives); false, reserving nothing,
   * when that would pass `maxBufferedBytes`. Every reservation is given back with
   * {@link release}.
   */
  reserve(bytes: number): boolean {
    if (this.#bufferedBytes + bytes > this.limits.maxBufferedBytes) return false;
    this.#bufferedBytes += bytes;
    return true;
  }

  /** Gives back bytes taken with {@link reserve}. */
  release(bytes: number): void {
    this.#bufferedBytes = Math.max(0, this.#bufferedBytes - bytes);
  }

  /**
   * Runs `job` when its turn comes (round-robin across devices). Rejects with
   * {@link QueueError} `busy` when a limit would be passed (never when the queue is idle), and
   * `cancelled` when `options.signal` aborts before the job starts. Once started, the job gets
   * a signal that aborts with the caller's.
   */
  run<T>(
    turn: string,
    job: (signal: AbortSignal) => Promise<T>,
    options: RunJobOptions = {},
  ): Promise<T> {
    const signal = options.signal ?? new AbortController().signal;
    const device = options.device ?? turn;
    const audioMs = Math.max(0, options.audioMs ?? 0);
    if (signal.aborted) {
      return Promise.reject(new QueueError("cancelled", turn, `turn ${turn} was cancelled`));
    }
    for (const speculation of this.#speculations) {
      if (speculation === options.spare) continue;
      speculation.abort();
      this.#speculations.delete(speculation);
    }
    const where = this.idle ? undefined : this.#positionFor(device);
    if (where !== undefined) {
      const refusal = this.#refusal(audioMs, where);
      if (refusal !== undefined) return Promise.reject(new QueueError("busy", turn, refusal));
    }
    return new Promise<T>((resolve, reject) => {
      const entry: Waiting = {
        turn,
        payload: options.payload,
        device,
        audioMs,
        start: () => {
          signal.removeEventListener("abort", onAbort);
          const startedAt = performance.now();
          this.#running = { turn, device, startedAt };
          let result: Promise<T>;
          try {
            result = job(signal);
          } catch (error) {
            result = Promise.reject(error);
          }
          // The queue moves on before the caller hears the outcome, so a caller that queues
          // its next turn at once finds the queue as it really is.
          const done = () => {
            const took = performance.now() - startedAt;
            this.#durations.push(took);
            this.#durationSum += took;
            if (this.#durations.length > DURATION_WINDOW) {
              this.#durationSum -= this.#durations.shift()!;
            }
            this.#running = undefined;
            this.#next();
          };
          result.then((value) => {
            done();
            resolve(value);
          }, (error) => {
            done();
            reject(error);
          });
        },
        cancel: reject,
      };
      const onAbort = () => {
        if (!this.#remove(entry)) return;
        entry.cancel(new QueueError("cancelled", turn, `turn ${turn} was cancelled while queued`));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#add(entry);
      if (this.#running === undefined) this.#next();
      else if (where !== undefined) options.onQueued?.(where, () => this.#positionOf(entry));
    });
  }

  /** Why a new turn is refused, or undefined. */
  #refusal(audioMs: number, where: QueuePosition): string | undefined {
    const { maxWaiting, maxQueuedAudioMs, maxWaitMs } = this.limits;
    if (this.#waiting >= maxWaiting) return `inference queue is full (${maxWaiting} turns)`;
    if (this.#queuedAudioMs + audioMs > maxQueuedAudioMs) {
      return `inference queue holds ${Math.round(this.#queuedAudioMs / 1000)} s of audio ` +
        `(limit ${Math.round(maxQueuedAudioMs / 1000)} s)`;
    }
    if (this.#durations.length >= MIN_DURATIONS && where.waitMs > maxWaitMs) {
      return `estimated wait ${Math.round(where.waitMs)} ms exceeds ${maxWaitMs} ms`;
    }
    return undefined;
  }

  /**
   * Where a new turn of `device` would stand: the running turn, then one round of every other
   * device per turn the device already has waiting.
   */
  #positionFor(device: string): QueuePosition {
    const own = this.#lines.get(device)?.length ?? 0;
    let ahead = own + (this.#running === undefined ? 0 : 1);
    for (const [other, line] of this.#lines) {
      if (other !== device) ahead += Math.min(line.length, own + 1);
    }
    return { position: ahead, waitMs: this.#waitFor(ahead - (this.#running ? 1 : 0)) };
  }

  /**
   * The payloads of the next `limit` waiting turns that have one, in the order they will run:
   * what the running job may prepare for them (batched STT).
   */
  upcoming(limit: number): unknown[] {
    const out: unknown[] = [];
    for (let round = 0; out.length < limit; round++) {
      let any = false;
      for (const line of this.#lines.values()) {
        if (round >= line.length) continue;
        any = true;
        if (line[round].payload !== undefined && out.length < limit) out.push(line[round].payload);
      }
      if (!any) break;
    }
    return out;
  }

  /** Where a waiting entry stands now: the rotation played forward until it comes up. */
  #positionOf(entry: Waiting): QueuePosition | undefined {
    const running = this.#running === undefined ? 0 : 1;
    let ahead = 0;
    for (let round = 0; round < this.#waiting; round++) {
      for (const line of this.#lines.values()) {
        if (line[round] === entry) {
          return { position: ahead + running, waitMs: this.#waitFor(ahead) };
        }
        if (round < line.length) ahead++;
      }
    }
    return undefined;
  }

  /** Mean duration of the recent turns, ms (0 before the first). */
  get #turnMs(): number {
    return this.#durations.length === 0 ? 0 : this.#durationSum / this.#durations.length;
  }

  /** Estimated ms until a turn with `waitingAhead` waiting turns before it starts. */
  #waitFor(waitingAhead: number): number {
    const runningLeft = this.#running === undefined
      ? 0
      : Math.max(0, this.#turnMs - (performance.now() - this.#running.startedAt));
    return runningLeft + waitingAhead * this.#turnMs;
  }

  #add(entry: Waiting): void {
    const line = this.#lines.get(entry.device);
    if (line === undefined) this.#lines.set(entry.device, [entry]);
    else line.push(entry);
    this.#waiting++;
    this.#queuedAudioMs += entry.audioMs;
  }

  #remove(entry: Waiting): boolean {
    const line = this.#lines.get(entry.device);
    const index = line?.indexOf(entry) ?? -1;
    if (line === undefined || index === -1) return false;
    line.splice(index, 1);
    if (line.length === 0) this.#lines.delete(entry.device);
    this.#waiting--;
    this.#queuedAudioMs -= entry.audioMs;
    return true;
  }

  /** Starts the first waiting turn of the device at the head of the rotation. */
  #next(): void {
    if (this.#running !== undefined) return;
    const first = this.#lines.entries().next();
    if (first.done) return;
    const [device, line] = first.value;
    const entry = line[0];
    this.#remove(entry);
    // The device goes to the back of the rotation if it still has turns waiting.
    const rest = this.#lines.get(device);
    if (rest !== undefined) {
      this.#lines.delete(device);
      this.#lines.set(device, rest);
    }
    entry.start();
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
