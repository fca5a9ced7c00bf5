import assert from "node:assert/strict";
import { createLogger } from "../shared/log.ts";
import { AiConnection } from "./ai_connection.ts";
import { V2_PROTOCOL } from "./ai_protocol.ts";
import { leastLoaded, ServerLink } from "./ai_server_link.ts";
import { Turn } from "./ai_turn.ts";

const log = createLogger("test.ai_server_link", { level: "error" });

/** A link whose connection is never started (so never live): load bookkeeping only. */
function server(port: number): ServerLink {
  return new ServerLink(
    { host: "127.0.0.1", port },
    () =>
      new AiConnection({ host: "127.0.0.1", port, protocol: V2_PROTOCOL, log }, {
        ready: () => {},
        turn: () => {},
        lost: () => {},
      }),
  );
}

/** A turn that sends nowhere: what a server's table holds. */
function turn(id: string): Turn {
  return new Turn({
    responseTimeoutMs: 10_000,
    send: () => {},
    serverCan: () => false,
    responseTimedOut: () => {},
    finished: () => {},
  }, {
    id,
    device: "kitchen",
    rate: 16000,
    handlers: { end: () => {}, fail: () => {} },
    protocol: V2_PROTOCOL,
  });
}

const load = (waitMs: number, queued: number) => ({
  queued_turns: queued,
  queued_audio_s: 0,
  active_devices: queued,
  wait_ms: waitMs,
  turn_ms: 1000,
});

Deno.test("a server's projected wait is its status's plus turn_ms per turn placed since", () => {
  const s = server(9001);
  assert.equal(s.projectedWaitMs(), 0, "unknown load counts as idle");
  s.place(turn("t1")); // before the status: already in its wait
  s.statusArrived(load(2500, 3));
  assert.equal(s.projectedWaitMs(), 2500);
  assert.equal(s.queued(), 3 + 1, "the status's queue plus this gateway's open turns");
  s.place(turn("t2"));
  s.place(turn("t3"));
  assert.equal(s.projectedWaitMs(), 2500 + 2 * 1000);
  s.statusArrived(load(500, 0)); // a newer status counts from its own moment
  assert.equal(s.projectedWaitMs(), 500);
  s.forgetLoad();
  assert.equal(s.projectedWaitMs(), 0);
  assert.equal(s.queued(), 3);
});

Deno.test("no server is least loaded while none is live", () => {
  const a = server(9001), b = server(9002);
  b.statusArrived(load(0, 0));
  assert.equal(a.live, false);
  assert.equal(leastLoaded([a, b]), undefined);
  assert.equal(leastLoaded([]), undefined);
});
