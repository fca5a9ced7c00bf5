/**
 * What a v2 turn hears while it waits in the inference queue (docs/protocol.md "Waiting for
 * inference"): a `state` event now, another every `updateMs` while its place changes, and the
 * spoken "one moment" once it has waited `noticeMs` (at once when the estimate already says it
 * will). No I/O here: the caller sends; this only times.
 *
 * @example
 * ```ts
 * const timers = watchQueuedTurn({ where, now, timing, state: send, notice: speak, queued: () => turn.phase === "queued" });
 * // when the turn starts or ends: timers.forEach(clearTimeout)
 * ```
 */
import type { QueuePosition } from "./inference_queue.ts";
import type { QueueNoticeTiming } from "./socket_link.ts";

/** Options of {@link watchQueuedTurn}. */
export interface WatchQueuedOptions {
  /** Where the turn stood when it was queued. */
  where: QueuePosition;
  /** Where it stands now; undefined once it left the queue. */
  now: () => QueuePosition | undefined;
  timing: QueueNoticeTiming;
  /** Sends a `state` `queued` event. */
  state: (at: QueuePosition) => void;
  /** Starts the spoken notice (called at most once). */
  notice: () => void;
  /** Whether the turn still waits. */
  queued: () => boolean;
}

/**
 * Sends the first `state` at once and arms the notice and the updates; returns the live timers
 * (the array is refilled as updates re-arm), to be cleared when the turn leaves the queue.
 */
export function watchQueuedTurn(options: WatchQueuedOptions): ReturnType<typeof setTimeout>[] {
  const { where, now, timing, state, queued } = options;
  const timers: ReturnType<typeof setTimeout>[] = [];
  let noticed = false;
  const notice = () => {
    if (noticed || !queued()) return;
    noticed = true;
    options.notice();
  };
  state(where);
  if (where.waitMs >= timing.noticeMs) notice();
  else timers.push(setTimeout(notice, timing.noticeMs));
  let told = where.position;
  const update = () => {
    const at = now();
    if (at === undefined || !queued()) return;
    if (at.position !== told) state(at);
    told = at.position;
    timers.length = 0;
    timers.push(setTimeout(update, timing.updateMs));
  };
  timers.push(setTimeout(update, timing.updateMs));
  return timers;
}
