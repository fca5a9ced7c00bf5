import assert from "node:assert/strict";
import { freePort } from "./ports.ts";

Deno.test("freePort returns a bindable loopback port", async () => {
  const port = await freePort();
  assert.ok(port > 0 && port <= 65535, `port ${port}`);
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  assert.equal((listener.addr as Deno.NetAddr).port, port);
  listener.close();
});
