import assert from "node:assert/strict";
import { AUDIT_BURST, AUDIT_WINDOW_MS, AuditLog } from "./audit.ts";
import type { Logger } from "./log.ts";
import type { AuditEvent } from "./messages.ts";

Deno.test("AuditLog logs and publishes each event, rate-limited per kind and source", () => {
  let now = 1_700_000_000_000;
  const lines: string[] = [];
  const published: AuditEvent[] = [];
  const log: Logger = {
    debug() {},
    info() {},
    warn: (msg) => void lines.push(msg),
    error() {},
  };
  const audit = new AuditLog({ log, publish: (e) => published.push(e), now: () => now });
  const attempt = { event: "auth_failed" as const, username: "x", address: "10.0.0.9" };
  for (let i = 0; i < AUDIT_BURST + 20; i++) audit.record(attempt);
  assert.equal(lines.length, AUDIT_BURST);
  assert.equal(published.length, AUDIT_BURST);
  assert.equal(published[0].timestamp, new Date(now).toISOString());
  // Another source is not held back by the first one's flood.
  assert.ok(audit.record({ ...attempt, address: "10.0.0.10" }));
  // The next window's first line says how many were left out.
  now += AUDIT_WINDOW_MS;
  assert.ok(audit.record(attempt));
  assert.equal(published.at(-1)?.suppressed, 20);
  assert.equal(lines.at(-1), "audit: auth_failed");
});
