/**
 * Security audit events (spec 17.3): one structured log line each, rate-limited per event kind
 * and source so a flood of bad logins cannot flood the log, and handed to a sink (the embedded
 * broker publishes them on `naila/server/audit`, which only the server role may read).
 *
 * @example
 * ```ts
 * import { AuditLog } from "@naila/shared/audit";
 * const audit = new AuditLog({ log, publish: (event) => console.log(event) });
 * audit.record({ event: "auth_failed", username: "kitchen", address: "192.168.1.20" });
 * ```
 */
import type { Logger } from "./log.ts";
import type { AuditEvent } from "./messages.ts";

/** Events of one kind from one source kept per window; the rest are counted, not logged. */
export const AUDIT_BURST = 5;
/** Rate-limit window: a steady attacker shows up as one line per 10 s with a count. */
export const AUDIT_WINDOW_MS = 10_000;
/** Sources tracked at once; the oldest is forgotten beyond this (bounded memory). */
const MAX_SOURCES = 10_000;

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  log: Logger;
  /** Called with each event that passes the rate limit. */
  publish?: (event: AuditEvent) => void;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** One event as recorded: {@link AuditEvent} without the fields the log adds. */
export interface AuditRecord {
  event: AuditEvent["event"];
  username?: string;
  client_id?: string;
  address?: string;
  topic?: string;
  bytes?: number;
  detail?: string;
}

interface Window {
  start: number;
  count: number;
  suppressed: number;
}

/** Rate-limited audit trail; see the module doc. */
export class AuditLog {
  #o: AuditLogOptions;
  #windows = new Map<string, Window>();

  constructor(options: AuditLogOptions) {
    this.#o = options;
  }

  /**
   * Records one event (timestamp added). Logged at warn level and published unless more than
   * {@link AUDIT_BURST} of the same kind from the same address and user came within
   * {@link AUDIT_WINDOW_MS}; the next one that passes carries the count left out.
   * Returns whether it was logged.
   */
  record(event: AuditRecord): boolean {
    const now = (this.#o.now ?? Date.now)();
    const key = `${event.event}|${event.address ?? ""}|${event.username ?? ""}`;
    let window = this.#windows.get(key);
    if (window === undefined || now - window.start >= AUDIT_WINDOW_MS) {
      const suppressed = window?.suppressed ?? 0;
      this.#windows.delete(key);
      if (this.#windows.size >= MAX_SOURCES) {
        this.#windows.delete(this.#windows.keys().next().value!);
      }
      window = { start: now, count: 0, suppressed };
      this.#windows.set(key, window);
    }
    if (window.count >= AUDIT_BURST) {
      window.suppressed++;
      return false;
    }
    window.count++;
    const full: AuditEvent = { ...event, timestamp: new Date(now).toISOString() };
    if (window.suppressed > 0) {
      full.suppressed = window.suppressed;
      window.suppressed = 0;
    }
    this.#o.log.warn(`audit: ${event.event}`, { ...full });
    this.#o.publish?.(full);
    return true;
  }
}
