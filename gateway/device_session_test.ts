import assert from "node:assert/strict";
import { delay } from "../shared/async.ts";
import { createLogger } from "../shared/log.ts";
import type { IceCandidate } from "../shared/messages.ts";
import { AiServers } from "./ai_servers.ts";
import { type CloseReason, DeviceSession, sessionGuard } from "./device_session.ts";
import { PlaybackClock } from "./playback.ts";
import { EnergyModel } from "./vad.ts";
import { peerConfig } from "../shared/media/webrtc.ts";

const log = createLogger("test.session", { level: "error" });

function session(offerRetryMs: number[]) {
  const offers: string[] = [];
  const candidates: IceCandidate[] = [];
  const closed: CloseReason[] = [];
  const s = new DeviceSession({
    device: "kitchen",
    sessionId: "s1",
    peer: peerConfig({ iceServers: [], hostAddresses: ["127.0.0.1"] }),
    signal: { offer: (sdp) => offers.push(sdp), ice: (c) => candidates.push(c) },
    // Never started: no connection is made; sessions do not need one to signal.
    ai: new AiServers({ servers: [{ host: "127.0.0.1", port: 9 }], protocol: "v2", log }),
    clock: new PlaybackClock(),
    model: new EnergyModel({ threshold: 500 }),
    audio: { silenceFrames: 15, sampleRate: 16000, echoGuard: "raise" },
    publishEvent: () => {},
    onClosed: (_s, reason) => closed.push(reason),
    log,
    offerRetryMs,
  });
  return { s, offers, candidates, closed };
}

Deno.test("an offer with no answer is re-sent with backoff, then the session gives up", async () => {
  const { s, offers, closed, candidates } = session([30, 60, 90]);
  await s.start();
  assert.equal(offers.length, 1);
  assert.match(offers[0], /m=audio .* UDP\/TLS\/RTP\/SAVPF 111/);
  assert.match(offers[0], /a=sendrecv/);
  await delay(60);
  assert.equal(offers.length, 2, "re-sent after the first wait");
  await delay(250);
  assert.equal(offers.length, 3);
  assert.deepEqual(closed, ["no_answer"]);
  assert.ok(s.closed);
  assert.equal(new Set(offers).size, 1, "the same offer (same session) each time");
  for (const c of candidates) {
    assert.equal(c.from, "gateway");
    assert.equal(c.session_id, "s1");
  }
});

Deno.test("close is idempotent and reports its reason once", async () => {
  const { s, closed } = session([1000]);
  await s.start();
  s.close("offline");
  s.close("failed");
  assert.deepEqual(closed, ["offline"]);
});

Deno.test("a malformed answer is refused without closing the session", async () => {
  const { s, closed } = session([1000]);
  await s.start();
  await assert.rejects(() => s.applyAnswer("v=0\r\ngarbage"), /SDP answer has no audio m-line/);
  await s.addCandidate({ candidate: "", session_id: "s1" }); // end-of-candidates is fine
  assert.deepEqual(closed, []);
  s.close("shutdown");
});

Deno.test("a device that cancels its own echo gets no echo guard, unless half-duplex was chosen", () => {
  assert.equal(sessionGuard("estimate", true), "off");
  assert.equal(sessionGuard("raise", true), "off");
  assert.equal(sessionGuard("half_duplex", true), "half_duplex");
  assert.equal(sessionGuard("estimate", false), "estimate");
  assert.equal(sessionGuard("estimate"), "estimate");
});
