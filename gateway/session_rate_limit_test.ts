import assert from "node:assert/strict";
import { SessionRateLimit } from "./session_rate_limit.ts";

Deno.test("SessionRateLimit: a flapping device is refused past its burst, then served again", () => {
  let now = 0;
  const limit = new SessionRateLimit({ maxOpens: 3, windowMs: 1000, now: () => now });
  assert.deepEqual([limit.allow("a"), limit.allow("a"), limit.allow("a")], [true, true, true]);
  assert.equal(limit.allow("a"), false);
  // Another device is not affected.
  assert.equal(limit.allow("b"), true);
  now = 500;
  assert.equal(limit.allow("a"), false);
  // Once the first opens left the window, the device is served again.
  now = 1001;
  assert.equal(limit.allow("a"), true);
});
