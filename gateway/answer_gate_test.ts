import assert from "node:assert/strict";
import { LAN_RANGES } from "../shared/ip_ranges.ts";
import { createLogger } from "../shared/log.ts";
import type { IceCandidate } from "../shared/messages.ts";
import { AnswerGate, type AnswerTarget } from "./answer_gate.ts";

const line = (address: string) => `a=candidate:1 1 udp 2122260223 ${address} 50000 typ host`;

/** An Opus answer with a LAN, a public, an mDNS and a loopback candidate. */
const ANSWER = [
  "v=0",
  "o=- 1 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111",
  "a=rtpmap:111 opus/48000/2",
  "a=ice-ufrag:abcd",
  line("192.168.1.20"),
  line("8.8.8.8"),
  line("kitchen-1234.local"),
  line("127.0.0.1"),
  "",
].join("\r\n");

/** A session as the gate sees it: records what reaches it; `refuseAnswer` makes applying fail. */
class Session implements AnswerTarget {
  readonly device = "kitchen";
  readonly sessionId = "s1";
  answers: string[] = [];
  candidates: (string | null)[] = [];
  constructor(readonly refuseAnswer?: string) {}
  applyAnswer(sdp: string): Promise<void> {
    this.answers.push(sdp);
    return this.refuseAnswer ? Promise.reject(new Error(this.refuseAnswer)) : Promise.resolve();
  }
  addCandidate(candidate: IceCandidate): Promise<void> {
    this.candidates.push(candidate.candidate);
    return Promise.resolve();
  }
}

function gate(max = 20) {
  const failed: string[] = [];
  const lines: string[] = [];
  const answerGate = new AnswerGate<Session>({
    candidates: { allowed: [...LAN_RANGES], max },
    log: createLogger("test.answer_gate", { level: "debug", write: (l) => lines.push(l) }),
    fail: (_session, problem) => failed.push(problem),
  });
  return { answerGate, failed, lines };
}

const ice = (address: string | null): IceCandidate => ({
  candidate: address === null ? null : line(address).slice(2),
  session_id: "s1",
  from: "device",
});

Deno.test("an answer keeps only allowed candidates and is applied once; a second is ignored", () => {
  const { answerGate, failed, lines } = gate();
  const session = new Session();
  answerGate.answer(session, ANSWER);
  answerGate.answer(session, ANSWER.replace("192.168.1.20", "192.168.1.99"));
  assert.equal(session.answers.length, 1);
  assert.match(session.answers[0], /192\.168\.1\.20/);
  assert.match(session.answers[0], /127\.0\.0\.1 50000/);
  assert.doesNotMatch(session.answers[0], /8\.8\.8\.8|\.local/);
  assert.deepEqual(failed, []);
  assert.ok(lines.some((l) => l.includes("audit: answer candidates dropped")));
  assert.ok(lines.some((l) => l.includes("duplicate answer ignored")));
});

Deno.test("an answer without Opus fails its session naming why, and is not applied", () => {
  const { answerGate, failed } = gate();
  const session = new Session();
  const pcmu = ANSWER.replace("SAVPF 111", "SAVPF 0").replace("opus/48000/2", "PCMU/8000")
    .replace("rtpmap:111", "rtpmap:0");
  answerGate.answer(session, pcmu);
  assert.deepEqual(session.answers, []);
  assert.equal(failed.length, 1);
  assert.match(failed[0], /no Opus/);
});

Deno.test("an answer the session cannot apply fails it with the reason", async () => {
  const { answerGate, failed } = gate();
  answerGate.answer(new Session("SDP answer has no DTLS fingerprint"), ANSWER);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(failed, ["has no DTLS fingerprint"]);
});

Deno.test("trickled candidates: outside the ranges dropped, the cap shared with the answer's", () => {
  const { answerGate, lines } = gate(3);
  const session = new Session();
  answerGate.answer(session, ANSWER); // two allowed: 192.168.1.20 and 127.0.0.1
  answerGate.candidate(session, ice("8.8.4.4"));
  answerGate.candidate(session, ice("192.168.1.21"));
  answerGate.candidate(session, ice("192.168.1.22"));
  answerGate.candidate(session, ice(null)); // the end-of-candidates mark always passes
  assert.deepEqual(session.candidates, [line("192.168.1.21").slice(2), null]);
  const dropped = lines.filter((l) => l.includes("audit: ICE candidate dropped"));
  assert.equal(dropped.length, 2);
  assert.ok(dropped[1].includes("beyond 3 candidates per session"));
});
