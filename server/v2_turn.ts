/**
 * One v2 turn on the server (v2_turns.ts keeps the table of a connection) and the rules of
 * continuing one (docs/protocol.md "Continuing a turn", "Ending a turn sooner or later").
 */
import type { EotMessage, FrameLimits, SampleRate } from "../shared/frame_codec.ts";
import { EOT_MAX_SILENCE_MS, EOT_MIN_SILENCE_MS } from "../shared/frame_codec.ts";
import type { EndOfTurnDecision } from "./end_of_turn.ts";
import type { ReplySink, SpeculativeStt, TurnResult } from "./pipeline.ts";

/** Most links of a continuation chain (`t3` continues `t2` continues `t1`). */
export const MAX_CONTINUATIONS = 8;
/** Longest request one continued or long turn carries (TURN_MAX_MS), seconds. */
export const TURN_MAX_SECONDS = 120;

/**
 * A reply run ahead of a turn's end (after a `complete` end-of-turn decision on a `pause`): the
 * pipeline ran staged, its output is held until {@link HeldReply.release}.
 */
export interface HeldReply {
  /** The run's outcome; staged: its side effects wait for the result's `commit`. */
  result: Promise<TurnResult>;
  /** Sends what was held to `sink`, in order, and whatever the run sends later straight to it. */
  release(sink: ReplySink): void;
}

/** Speculative work of a turn on a `pause` (v2_speculation.ts). */
export interface Speculation {
  /** Aborts the STT and the held reply; the queue aborts it too for any other turn's run. */
  controller: AbortController;
  /** The turn's audio bytes it covers. */
  bytes: number;
  result: Promise<SpeculativeStt>;
  reply?: HeldReply;
  /**
   * The turn ended with this speculation's audio: it is the turn's own work now, which no other
   * turn's run may abort (unregistered from the queue's speculative work).
   */
  adopt(): void;
}

/** A v2 turn between its `start` and the end of its reply. */
export interface Turn {
  id: string;
  device: string;
  rate: SampleRate;
  chunks: Uint8Array[];
  bytes: number;
  nextSeq: number;
  phase: "receiving" | "queued" | "running";
  controller: AbortController;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Set by a cancel that arrives while the turn runs. */
  playedMs?: number;
  /** Next reply audio chunk's seq. */
  outSeq: number;
  /** Audio bytes reserved in the queue's memory budget (given back when the turn ends). */
  reserved: number;
  /** The spoken "one moment" being sent; the reply waits for it. */
  notice?: Promise<void>;
  /** Timers of a queued turn: its notice and its `state` updates. */
  queueTimers: ReturnType<typeof setTimeout>[];
  /**
   * STT started by a `pause` on the first `bytes` of audio; aborted when more audio comes. With
   * a `complete` transcript, also the reply run ahead of the end (v2_speculation.ts).
   */
  speculation?: Speculation;
  /** Turns this one continues (0: a plain turn). */
  links: number;
  /** The whole request's audio once ended (kept for a continuation of a staged turn). */
  pcm?: Uint8Array;
  /** A `commit` came while the turn ran: applied as soon as it is done. */
  commitRequested?: boolean;
  /** A continuation took this turn over: it ends without a trace. */
  superseded?: boolean;
}

/** A turn just started; a continuation's starts with the audio of the turn it continues. */
export function newTurn(
  id: string,
  device: string,
  rate: SampleRate,
  previous: { pcm: Uint8Array; links: number },
): Turn {
  return {
    id,
    device,
    rate,
    chunks: previous.pcm.length > 0 ? [previous.pcm] : [],
    bytes: previous.pcm.length,
    nextSeq: 0,
    phase: "receiving",
    controller: new AbortController(),
    timer: undefined,
    outSeq: 0,
    reserved: 0,
    queueTimers: [],
    links: previous.links,
  };
}

/**
 * Why turn `previousId` (of `earlier.device`, already `earlier.links` long, at `earlier.rate`)
 * cannot be continued by a turn of `device` at `rate` (`bad_continuation`), or undefined.
 */
export function continuationProblem(
  previousId: string,
  earlier: { device: string; links: number; rate: number },
  device: string,
  rate: number,
): string | undefined {
  if (earlier.device !== device) {
    return `turn ${previousId} is of device ${earlier.device}, not ${device}`;
  }
  if (earlier.links + 1 > MAX_CONTINUATIONS) {
    return `turn ${previousId} already continues ${earlier.links} turns, at most ${MAX_CONTINUATIONS}`;
  }
  if (earlier.rate !== rate) return `turn ${previousId} has rate ${earlier.rate}, not ${rate}`;
  return undefined;
}

/** The `eot` message of an end-of-turn decision, its silence clamped to the codec's range. */
export function eotMessage(turn: string, decision: EndOfTurnDecision): EotMessage {
  const silence = Math.round(decision.silenceMs);
  return {
    type: "eot",
    turn,
    completion: decision.completion,
    silence_ms: Math.min(EOT_MAX_SILENCE_MS, Math.max(EOT_MIN_SILENCE_MS, silence)),
    ts: Date.now(),
  };
}

/** Audio seconds one turn may carry: the frame limit, or TURN_MAX_SECONDS with `continue`. */
export function maxTurnSeconds(limits: FrameLimits, canContinue: boolean): number {
  return canContinue ? Math.max(TURN_MAX_SECONDS, limits.maxAudioSeconds) : limits.maxAudioSeconds;
}
