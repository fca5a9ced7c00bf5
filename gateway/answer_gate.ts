/**
 * What a device's SDP answer and trickled ICE candidates must pass before they reach its session
 * (spec 17.1): the answer must carry Opus audio, only the first answer a session waits for is
 * taken (a later one never disturbs a live call), and of the remote candidates, in the answer and
 * trickled together, only those in the allowed ranges (WEBRTC_ALLOWED_CANDIDATE_RANGES) and at
 * most WEBRTC_MAX_CANDIDATES per session are used: no STUN to addresses a device names.
 * Every refusal is logged as `audit:`.
 *
 * @example
 * ```ts
 * const gate = new AnswerGate({ candidates: { allowed: [...LAN_RANGES], max: 20 }, log, fail });
 * gate.answer(session, answer.sdp);      // from signaling/answer
 * gate.candidate(session, candidate);    // from signaling/ice
 * ```
 */
import type { Logger } from "../shared/log.ts";
import type { IceCandidate } from "../shared/messages.ts";
import {
  candidateProblem,
  filterSdpCandidates,
  opusProblem,
} from "../shared/media/remote_candidates.ts";
import type { GatewayConfig } from "./config.ts";

/** What the gate needs of a device session (`DeviceSession` and `RemoteSession` are ones). */
export interface AnswerTarget {
  readonly device: string;
  readonly sessionId: string;
  /** Rejects with an Error whose message may start with "SDP answer ". */
  applyAnswer(sdp: string): Promise<void>;
  addCandidate(candidate: IceCandidate): Promise<void>;
}

/** Options of {@link AnswerGate}. */
export interface AnswerGateOptions<T extends AnswerTarget> {
  /** The allowed ranges and the cap per session. */
  candidates: GatewayConfig["candidates"];
  log: Logger;
  /** Ends `session` at once because of its answer, telling the device `problem`. */
  fail(session: T, problem: string): void;
}

/** See the module doc; `T` is the gateway's session type. */
export class AnswerGate<T extends AnswerTarget> {
  #o: AnswerGateOptions<T>;
  /** Sessions whose answer came (being applied or applied). */
  #answered = new WeakSet<AnswerTarget>();
  /** Remote candidates accepted per session (answer and trickle together). */
  #counts = new WeakMap<AnswerTarget, number>();

  constructor(options: AnswerGateOptions<T>) {
    this.#o = options;
  }

  /** The device's answer for `session`: checked, its candidates filtered, then applied. */
  answer(session: T, sdp: string): void {
    const { log, candidates } = this.#o;
    const device = session.device;
    // Only the answer a session waits for can end it: a later one never disturbs a live call.
    if (this.#answered.has(session)) return void log.debug("duplicate answer ignored", { device });
    this.#answered.add(session);
    const problem = opusProblem(sdp);
    if (problem) return this.#o.fail(session, problem);
    // Only candidates in the allowed ranges, at most the cap: no STUN to named addresses.
    const filtered = filterSdpCandidates(sdp, {
      allowed: candidates.allowed,
      max: candidates.max - (this.#counts.get(session) ?? 0),
    });
    if (filtered.dropped.length > 0) {
      log.warn("audit: answer candidates dropped", {
        device,
        dropped: filtered.dropped.length,
        first: filtered.dropped[0],
      });
    }
    this.#counts.set(session, (this.#counts.get(session) ?? 0) + filtered.kept);
    session.applyAnswer(filtered.sdp).catch((error) =>
      this.#o.fail(session, (error as Error).message.replace(/^SDP answer /, ""))
    );
  }

  /** A trickled candidate for `session` (empty: end of candidates): added if allowed. */
  candidate(session: T, candidate: IceCandidate): void {
    const { log, candidates } = this.#o;
    const device = session.device;
    if (candidate.candidate) {
      const count = this.#counts.get(session) ?? 0;
      const problem = candidateProblem(candidate.candidate, candidates.allowed) ??
        (count >= candidates.max
          ? `is beyond ${candidates.max} candidates per session`
          : undefined);
      if (problem) {
        return void log.warn("audit: ICE candidate dropped", { device, problem });
      }
      this.#counts.set(session, count + 1);
    }
    session.addCandidate(candidate).catch((error) =>
      log.warn("ICE candidate rejected", { device, error: String(error) })
    );
  }
}
