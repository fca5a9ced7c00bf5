import assert from "node:assert/strict";
import { encodeV2 } from "../shared/frame_codec.ts";
import { parseRanges } from "../shared/ip_ranges.ts";
import { readUntil, V2Client } from "../scripts/lib/audio_socket_clients.ts";
import type { AudioSocketServer } from "./audio_socket.ts";
import { withServer } from "./audio_socket_testing.ts";
import { EchoPipeline } from "./pipeline.ts";

/** Polls of the connection count before a test counts as hung (at least 20 s of 5 ms waits). */
const MAX_POLLS = 4000;

Deno.test("connections beyond the limit are closed once they speak; those within go on", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    const first = await V2Client.connect(server.port);
    const second = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      await second.write(encodeV2({
        type: "hello",
        version: 2,
        role: "gateway",
        capabilities: [],
        ts: Date.now(),
      }));
      assert.equal((await readUntil(second, () => false)).closed, true);
      await first.send({ type: "ping", id: 3, ts: Date.now() });
      await first.next((m) => m.type === "pong");
      assert.equal(server.connections, 1);
    } finally {
      first.close();
      second.close();
    }
  }, { maxConnections: 1 });
});

/**
 * Opens three connections that never send a byte and waits until `accepted()` counts them all;
 * then a v2 client must get its pong and the oldest silent connection must be closed to make
 * room. `check` runs while the client is still connected. Closes every connection it opened.
 */
async function oldestSilentMakesRoom(
  server: AudioSocketServer,
  accepted: () => number,
  check: () => void,
): Promise<void> {
  const silent = await Promise.all(
    [0, 1, 2].map(() => Deno.connect({ hostname: "127.0.0.1", port: server.port })),
  );
  let client: V2Client | undefined;
  try {
    // Accepting is asynchronous: poll until all three are counted. The cap counts polls, not
    // time (a loaded machine only makes each poll later); it only stops a hung test.
    for (let polls = 0; accepted() < 3; polls++) {
      assert.ok(polls < MAX_POLLS, `only ${accepted()} of 3 silent connections accepted`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    client = await V2Client.connect(server.port);
    await client.send({ type: "ping", id: 1, ts: Date.now() });
    await client.next((m) => m.type === "pong");
    assert.equal((await readUntil(silent[0], () => false)).closed, true, "the oldest is closed");
    check();
  } finally {
    client?.close();
    for (const conn of silent) {
      try {
        conn.close();
      } catch {
        // Closed by readUntil.
      }
    }
  }
}

Deno.test("at the cap of waiting connections, the oldest that never spoke makes room", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    await oldestSilentMakesRoom(server, () => server.pending, () => {
      assert.equal(server.connections, 1);
      assert.equal(server.pending, 2);
    });
  }, { maxPending: 3 });
});

Deno.test("allow-listed: at the limit, the oldest connection that never sent a byte makes room", async () => {
  await withServer(new EchoPipeline(), async (server) => {
    await oldestSilentMakesRoom(server, () => server.connections, () => {
      assert.equal(server.connections, 3);
    });
  }, { maxConnections: 3, allow: parseRanges("127.0.0.1") });
});
