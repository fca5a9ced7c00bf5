/**
 * Clean shutdown of a NAILA process on SIGINT/SIGTERM, shared by `gateway/main.ts` and
 * `server/main.ts`. The listeners are installed before anything starts: a process that says
 * "ready" on its log can be stopped the instant that line is read, and a signal during start-up
 * waits for the start to finish and then closes what it opened (nothing half-started is left
 * behind, and the exit code is still 0).
 *
 * @example
 * ```ts
 * const starting = startServer(options);
 * stopOnSignals(async () => await (await starting).close(), { log });
 * ```
 */
import type { Logger } from "./log.ts";

/** Longest a clean shutdown may take before the process exits anyway (with code 1). */
export const SHUTDOWN_TIMEOUT_MS = 5000;

/** Options of {@link stopOnSignals}. */
export interface StopOnSignalsOptions {
  log: Logger;
  timeoutMs?: number;
}

/**
 * On the first SIGINT or SIGTERM: runs `close`, then exits with 0 (or 1 if `close` throws or
 * takes longer than the timeout). A second signal while closing exits at once with 1, as a
 * second Ctrl-C is expected to.
 */
export function stopOnSignals(close: () => Promise<void>, options: StopOnSignalsOptions): void {
  const { log, timeoutMs = SHUTDOWN_TIMEOUT_MS } = options;
  let stopping = false;
  const stop = async (signal: Deno.Signal) => {
    if (stopping) {
      log.warn("second signal while stopping, exiting now", { signal });
      Deno.exit(1);
    }
    stopping = true;
    log.info("stopping", { signal });
    const timer = setTimeout(() => {
      log.warn("shutdown took too long, exiting", { timeout_ms: timeoutMs });
      Deno.exit(1);
    }, timeoutMs);
    try {
      await close();
    } catch (error) {
      log.error("shutdown failed", { error: String(error) });
      Deno.exit(1);
    }
    clearTimeout(timer);
    log.info("stopped");
    Deno.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => void stop(signal));
  }
}
