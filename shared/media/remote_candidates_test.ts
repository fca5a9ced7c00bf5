import assert from "node:assert/strict";
import { LAN_RANGES, parseRanges } from "../ip_ranges.ts";
import {
  candidateAddress,
  candidateProblem,
  filterSdpCandidates,
  opusProblem,
} from "./remote_candidates.ts";

const line = (address: string) => `a=candidate:1 1 udp 2122260223 ${address} 50000 typ host`;

const ANSWER = [
  "v=0",
  "o=- 1 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
  "a=rtpmap:111 opus/48000/2",
  "a=rtpmap:0 PCMU/8000",
  "a=ice-ufrag:abcd",
  "a=fingerprint:sha-256 00",
  line("192.168.1.20"),
  line("8.8.8.8"),
  line("kitchen-1234.local"),
  line("127.0.0.1"),
  "",
].join("\r\n");

Deno.test("candidateAddress reads the connection address", () => {
  assert.equal(candidateAddress(line("10.0.0.1")), "10.0.0.1");
  assert.equal(candidateAddress("candidate:1 1 udp 1 fd00::1 9 typ host"), "fd00::1");
  assert.equal(candidateAddress("candidate:1 1 udp"), undefined);
  assert.equal(candidateAddress("hello"), undefined);
});

Deno.test("candidateProblem: LAN kept, public and mDNS refused with the reason", () => {
  assert.equal(candidateProblem(line("192.168.1.20"), LAN_RANGES), undefined);
  assert.match(candidateProblem(line("8.8.8.8"), LAN_RANGES)!, /8\.8\.8\.8 is outside/);
  assert.match(candidateProblem(line("abc.local"), LAN_RANGES)!, /mDNS/);
  assert.match(candidateProblem("garbage", LAN_RANGES)!, /not an ICE candidate/);
  assert.equal(candidateProblem(line("8.8.8.8"), parseRanges("0.0.0.0/0")), undefined);
});

Deno.test("filterSdpCandidates drops disallowed candidates and those beyond the cap", () => {
  const all = filterSdpCandidates(ANSWER, { allowed: LAN_RANGES, max: 20 });
  assert.equal(all.kept, 2);
  assert.equal(all.dropped.length, 2);
  assert.ok(all.sdp.includes("192.168.1.20") && all.sdp.includes("127.0.0.1 50000"));
  assert.ok(!all.sdp.includes("8.8.8.8") && !all.sdp.includes(".local"));
  assert.ok(all.sdp.includes("a=rtpmap:111 opus/48000/2\r\n"), "other lines untouched");
  const capped = filterSdpCandidates(ANSWER, { allowed: LAN_RANGES, max: 1 });
  assert.equal(capped.kept, 1);
  assert.match(capped.dropped.at(-1)!, /beyond 1 candidates/);
});

Deno.test("opusProblem: Opus answers pass; PCMU-only, rejected and audio-less ones say why", () => {
  assert.equal(opusProblem(ANSWER), undefined);
  const pcmu = ANSWER.replace("111 0", "0").replace("a=rtpmap:111 opus/48000/2\r\n", "");
  assert.match(opusProblem(pcmu)!, /no Opus audio \(codecs: PCMU\)/);
  assert.match(opusProblem(ANSWER.replace("m=audio 9", "m=audio 0"))!, /port 0/);
  assert.match(opusProblem("v=0\r\n")!, /no audio m-line/);
  // Opus mapped but not in the m-line's format list is not negotiated.
  assert.match(opusProblem(ANSWER.replace("111 0", "0"))!, /no Opus/);
});
