/**
 * What the MQTT message tests share: unwrapping a {@link ParseResult} that must fail or succeed,
 * and a timestamp in the spec's format. Test-only, like shared/video/testing.ts: nothing outside
 * `*_test.ts` imports this.
 */
import assert from "node:assert/strict";
import type { ParseResult } from "./message_fields.ts";

/** An ISO 8601 timestamp, as the spec's examples write them. */
export const TS = "2025-01-15T10:30:00Z";

/** The error of a parse that must fail; fails the test if it succeeded. */
export function errorOf<T>(r: ParseResult<T>): string {
  assert.equal(r.ok, false, `expected a parse error, got ${JSON.stringify(r)}`);
  return r.ok ? "" : r.error;
}

/** The value of a parse that must succeed; fails the test with the parse error otherwise. */
export function valueOf<T>(r: ParseResult<T>): T {
  if (!r.ok) assert.fail(r.error);
  return r.value;
}
