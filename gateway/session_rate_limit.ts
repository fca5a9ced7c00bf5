/**
 * Limits how often one device may get a new session (issue 10 "status-flap rate limit"): a device
 * (or someone forging its status) that flips online/offline makes the gateway create a WebRTC
 * session, an offer and ICE gathering each time. Past {@link MAX_OPENS_PER_WINDOW} opens within
 * {@link OPEN_WINDOW_MS} the next ones are refused until the window has moved on.
 *
 * @example
 * ```ts
 * const limit = new SessionRateLimit();
 * if (!limit.allow("kitchen")) refuse("kitchen", "too many reconnects");
 * ```
 */

/** Opens one device may have within {@link OPEN_WINDOW_MS}: a few reboots or network changes. */
export const MAX_OPENS_PER_WINDOW = 6;
/** The sliding window, ms: a flapping device is served again 30 s after its burst. */
export const OPEN_WINDOW_MS = 30_000;
/** Devices remembered at once; the oldest is forgotten beyond this (bounded memory). */
const MAX_DEVICES = 4096;

/** Options of {@link SessionRateLimit}. */
export interface SessionRateLimitOptions {
  maxOpens?: number;
  windowMs?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** Per-device sliding-window count of session opens. */
export class SessionRateLimit {
  #opens = new Map<string, number[]>();
  #maxOpens: number;
  #windowMs: number;
  #now: () => number;

  constructor(options: SessionRateLimitOptions = {}) {
    this.#maxOpens = options.maxOpens ?? MAX_OPENS_PER_WINDOW;
    this.#windowMs = options.windowMs ?? OPEN_WINDOW_MS;
    this.#now = options.now ?? (() => performance.now());
  }

  /** True (and counted) when `device` may get a new session now; false when it is flapping. */
  allow(device: string): boolean {
    const now = this.#now();
    const recent = (this.#opens.get(device) ?? []).filter((at) => now - at < this.#windowMs);
    if (recent.length >= this.#maxOpens) {
      this.#opens.set(device, recent);
      return false;
    }
    recent.push(now);
    this.#opens.delete(device);
    if (this.#opens.size >= MAX_DEVICES) this.#opens.delete(this.#opens.keys().next().value!);
    this.#opens.set(device, recent);
    return true;
  }
}
