/**
 * Small async helpers with the names and signatures of JSR's @std/async (unreachable here), so
 * switching to it later is an import-map change.
 *
 * @example
 * ```ts
 * await delay(100, { signal });
 * const socket = await retry(() => Deno.connect({ port: 9999 }), { maxAttempts: 5 });
 * ```
 */

/** Options for {@link delay}. */
export interface DelayOptions {
  signal?: AbortSignal;
  /** When false the timer does not keep the process alive (Deno.unrefTimer). */
  persistent?: boolean;
}

/** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
export function delay(ms: number, options: DelayOptions = {}): Promise<void> {
  const { signal, persistent = true } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const abort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", abort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", abort, { once: true });
    if (!persistent) Deno.unrefTimer(timer);
  });
}

/** Rejects with a `TimeoutError` DOMException when `promise` takes longer than `ms`. */
export function deadline<T>(
  promise: Promise<T>,
  ms: number,
  options: { signal?: AbortSignal } = {},
): Promise<T> {
  const signals = [AbortSignal.timeout(ms), ...(options.signal ? [options.signal] : [])];
  const signal = AbortSignal.any(signals);
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    if (signal.aborted) return abort();
    signal.addEventListener("abort", abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}

/** Backoff settings of {@link retry} and {@link backoffDelay}. */
export interface RetryOptions {
  /** Growth factor between attempts. */
  multiplier?: number;
  /** Longest wait between attempts, ms. */
  maxTimeout?: number;
  /** Attempts before giving up (for {@link retry}). */
  maxAttempts?: number;
  /** Wait before the second attempt, ms. */
  minTimeout?: number;
  /** 0..1: the fraction of each wait that is randomized, so many clients do not retry in step. */
  jitter?: number;
  signal?: AbortSignal;
}

/** Thrown by {@link retry} once every attempt failed; `cause` is the last error. */
export class RetryError extends Error {
  override name = "RetryError";
  constructor(cause: unknown, attempts: number) {
    super(`Retrying exceeded the maxAttempts (${attempts}).`, { cause });
  }
}

/** The wait before attempt `attempt + 1` (attempt counts from 0): exponential, capped, jittered. */
export function backoffDelay(attempt: number, options: RetryOptions = {}): number {
  const { multiplier = 2, maxTimeout = 60_000, minTimeout = 1000, jitter = 1 } = options;
  const exponential = Math.min(maxTimeout, minTimeout * multiplier ** attempt);
  return exponential * (1 - jitter * Math.random());
}

/** Calls `fn` until it resolves, waiting {@link backoffDelay} between failures. */
export async function retry<T>(fn: () => Promise<T> | T, options: RetryOptions = {}): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 5;
  for (let attempt = 0;; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt + 1 >= maxAttempts) throw new RetryError(error, maxAttempts);
      await delay(backoffDelay(attempt, options), { signal: options.signal });
    }
  }
}
