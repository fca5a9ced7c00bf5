/**
 * What a device's answer and ICE candidates may make the gateway do (spec 17.1, issue 10): the
 * gateway sends STUN connectivity checks to every remote candidate it is given, so a forged
 * answer naming hundreds of public addresses turns it into a traffic reflector. Only candidates
 * whose address lies in the allowed ranges (private LAN and loopback by default) are kept, at
 * most `max` per session. mDNS names (`xxxx.local`) are refused deliberately: resolving a name
 * a peer chooses is the same reflection by other means, and a page that has the microphone
 * (which the device page asks for first) shows browsers' real host addresses.
 *
 * Also the answer's codec: a device whose answer offers no Opus would be "connected" and never
 * heard, so {@link opusProblem} says why it cannot be used.
 *
 * @example
 * ```ts
 * candidateProblem("candidate:1 1 udp 1 8.8.8.8 9 typ host", LAN_RANGES); // "address 8.8.8.8 ..."
 * const { sdp, dropped } = filterSdpCandidates(answer, { allowed: LAN_RANGES, max: 20 });
 * ```
 */
import { inRanges, type IpRange } from "../ip_ranges.ts";

/** Index of the connection address in `candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>`. */
const ADDRESS_FIELD = 4;
/** Fields up to and including `typ <type>`. */
const MIN_CANDIDATE_FIELDS = 8;

/** The connection address of an ICE candidate line (with or without `a=`), or undefined. */
export function candidateAddress(candidate: string): string | undefined {
  const text = candidate.replace(/^a=/, "").trim();
  if (!text.startsWith("candidate:")) return undefined;
  const fields = text.split(/\s+/);
  if (fields.length < MIN_CANDIDATE_FIELDS || fields[6] !== "typ") return undefined;
  return fields[ADDRESS_FIELD];
}

/** Why the gateway must not use `candidate`, or undefined when its address is allowed. */
export function candidateProblem(
  candidate: string,
  allowed: readonly IpRange[],
): string | undefined {
  const address = candidateAddress(candidate);
  if (address === undefined) return `is not an ICE candidate line: ${candidate.slice(0, 60)}`;
  if (address.toLowerCase().endsWith(".local")) {
    return `names the mDNS host ${address}; mDNS candidates are refused (grant the microphone first)`;
  }
  if (!inRanges(address, allowed)) {
    return `address ${address} is outside WEBRTC_ALLOWED_CANDIDATE_RANGES`;
  }
  return undefined;
}

/** What {@link filterSdpCandidates} did. */
export interface FilteredSdp {
  sdp: string;
  kept: number;
  /** One reason per candidate line removed. */
  dropped: string[];
}

/**
 * `sdp` without the `a=candidate` lines the gateway must not use: outside `allowed`, mDNS, or
 * beyond the first `max` allowed ones. Other lines are kept as they are.
 */
export function filterSdpCandidates(
  sdp: string,
  limits: { allowed: readonly IpRange[]; max: number },
): FilteredSdp {
  const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
  const out: string[] = [];
  const dropped: string[] = [];
  let kept = 0;
  for (const line of sdp.split(eol)) {
    if (!line.startsWith("a=candidate:")) {
      out.push(line);
      continue;
    }
    const problem = candidateProblem(line, limits.allowed) ??
      (kept >= limits.max ? `is beyond ${limits.max} candidates per session` : undefined);
    if (problem) dropped.push(problem);
    else {
      kept++;
      out.push(line);
    }
  }
  return { sdp: out.join(eol), kept, dropped };
}

/** Why `sdp` (an answer) cannot carry the gateway's Opus audio, or undefined when it can. */
export function opusProblem(sdp: string): string | undefined {
  const lines = sdp.split(/\r?\n/);
  const media = lines.find((line) => line.startsWith("m=audio "));
  if (media === undefined) return "has no audio m-line";
  const [, port, , ...formats] = media.split(" ");
  if (port === "0") return "rejects the audio stream (m=audio port 0)";
  const opus = lines
    .map((line) => /^a=rtpmap:(\d+) opus\/48000/i.exec(line)?.[1])
    .filter((pt): pt is string => pt !== undefined);
  if (!opus.some((pt) => formats.includes(pt))) {
    const offered = lines
      .map((line) => /^a=rtpmap:\d+ ([^/\s]+)/.exec(line)?.[1])
      .filter((name) => name !== undefined);
    return `offers no Opus audio (codecs: ${offered.join(", ") || "none"}); NAILA speaks Opus only`;
  }
  return undefined;
}
