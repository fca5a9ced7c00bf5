/**
 * The turn table of one v2 connection (docs/protocol.md): turns (`start`, `audio`…, `end`)
 * answered with `text` events, reply `audio` chunks per sentence and an `end` carrying the
 * server's `stages`; `cancel` (barge-in) with `played_ms`, `commit`, and typed `error`s per turn.
 * A `pause` (the user went quiet) starts STT on the audio so far while the inference queue is
 * idle; more audio discards it, and an `end` right after uses it instead of transcribing again.
 * With `continue`, a transcript judged complete also has its reply made ahead and held; an `end`
 * with no audio after the pause sends it at once (v2_speculation.ts).
 * `v2_adapter.ts` speaks the rest of the protocol (hello, ping, camera frames) and hands every
 * turn message here.
 *
 * A turn, in order: `start` → receiving (audio appended, seq and size checked; `pause` may
 * speculate) → `end` → queued in the {@link InferenceQueue} (fair across devices; with the
 * `queue` capability the gateway hears `state` events and, after a while, a spoken "one
 * moment") → running the pipeline, whose sink streams text and audio → finished (remembered, so
 * a late `cancel` still records what was heard).
 *
 * Limits follow what is scarce, not a count per connection: one open turn per device (a new
 * `start` supersedes the device's turn still receiving or queued), buffered audio bytes and
 * queued work (the queue's limits). A refused turn hears a spoken apology before its `busy`
 * error.
 */
import { concatBytes, roundMs } from "../shared/audio.ts";
import {
  type EndMessage,
  type EotMessage,
  maxPcmBytes,
  type SampleRate,
} from "../shared/frame_codec.ts";
import { QueueError } from "./inference_queue.ts";
import type { TurnResult, Utterance } from "./pipeline.ts";
import { type ConnectionLink, logTurnError } from "./socket_link.ts";
import { PendingCommits } from "./turn_commits.ts";
import type { V2Output } from "./v2_output.ts";
import { discardSpeculation, speculate, usableSpeculation } from "./v2_speculation.ts";
import { continuationProblem, maxTurnSeconds, newTurn, type Turn } from "./v2_turn.ts";

/** Finished turn ids remembered per connection, to accept a late cancel (barge-in) for them. */
const FINISHED_TURNS_KEPT = 32;
/** The v2 turn table of one connection. */
export class V2Turns {
  #link: ConnectionLink;
  /** The gateway's capabilities, filled in by its hello (v2_adapter.ts). */
  #capabilities: ReadonlySet<string>;
  /** What goes to the gateway: messages, reply audio, spoken notices. */
  #out: V2Output;
  #turns = new Map<string, Turn>();
  /** Recently finished or cancelled turns → memory row id (if the turn was stored). */
  #finished = new Map<string, number | undefined>();
  /** Answered turns that a continuation may still take over (capability `continue`). */
  #commits: PendingCommits;

  constructor(link: ConnectionLink, out: V2Output, capabilities: ReadonlySet<string>) {
    this.#link = link;
    this.#out = out;
    this.#capabilities = capabilities;
    this.#commits = new PendingCommits({
      committed: (id, memoryId) => this.#finished.set(id, memoryId),
      onError: (turn, error) =>
        link.settings.log?.error("cannot apply a turn's effects", { peer: link.peer, turn, error }),
    });
  }

  /**
   * The connection is going away: every turn is aborted; answered ones not committed yet become
   * the socket's orphans, which the gateway may still continue or commit once reconnected.
   */
  stop(reason: string): void {
    this.#commits.handOver(this.#link.settings.orphans);
    for (const turn of this.#turns.values()) {
      clearTimeout(turn.timer);
      turn.controller.abort(new Error(reason));
      // A queued or running turn gives its bytes back when its queue promise settles.
      if (turn.phase === "receiving") this.#release(turn);
    }
  }

  /** Gives back the turn's audio bytes and stops its queue timers (idempotent). */
  #release(turn: Turn): void {
    this.#link.settings.queue.release(turn.reserved);
    turn.reserved = 0;
    for (const timer of turn.queueTimers) clearTimeout(timer);
    turn.queueTimers = [];
  }

  /** `start`: a new turn of `device` at `rate`; `continues` takes over an earlier one. */
  start(id: string, device: string, rate: SampleRate, continues?: string): void {
    if (this.#turns.has(id) || this.#finished.has(id) || this.#commits.has(id)) {
      this.#out.error(id, "bad_frame", `turn ${id} already exists on this connection`);
      return;
    }
    const orphans = this.#link.settings.orphans;
    const orphan = orphans.take(id);
    if (orphan !== undefined && orphan.device !== device) {
      orphans.hold(id, orphan, orphan.deadline);
      this.#out.error(id, "bad_frame", `turn ${id} already exists for another device`);
      return;
    }
    // Else a reconnected gateway replays a turn whose answer it never got (the link dropped):
    // the replay is answered again and its effects apply once, from it, not from the orphan.
    // `continues` means something only where `continue` was agreed (else it is ignored).
    const previous = continues !== undefined && this.#capabilities.has("continue")
      ? this.#takeOver(continues, id, device, rate)
      : { pcm: new Uint8Array(0), links: 0 };
    if (previous === undefined) return;
    // One open turn per device: the earlier one was barged in on (the gateway normally cancelled
    // it already). A running turn is left alone: its reply is already streaming.
    for (const earlier of this.#turns.values()) {
      if (earlier.device !== device || earlier.phase === "running" || earlier.superseded) {
        continue;
      }
      const why = `turn ${earlier.id} superseded by turn ${id} of device ${device}`;
      if (earlier.phase === "receiving") {
        this.#dropTurn(earlier, "superseded", why);
      } else {
        earlier.controller.abort();
        this.#out.error(earlier.id, "superseded", why);
      }
    }
    const turn = newTurn(id, device, rate, previous);
    if (previous.pcm.length > 0 && !this.#link.settings.queue.reserve(previous.pcm.length)) {
      const { maxBufferedBytes } = this.#link.settings.queue.limits;
      this.#refuse(turn, `server audio buffers are full (${maxBufferedBytes} bytes)`);
      return;
    }
    turn.reserved = previous.pcm.length;
    const { limits, timeouts } = this.#link.settings;
    const turnMs = timeouts.turnMs + (this.#maxTurnSeconds() - limits.maxAudioSeconds) * 1000;
    turn.timer = setTimeout(() => {
      if (turn.phase !== "receiving") return;
      this.#dropTurn(turn, "timeout", `turn ${id} got no end within ${turnMs} ms`);
    }, turnMs);
    this.#turns.set(id, turn);
  }

  /**
   * Refuses a turn for overload: drops it if still receiving, then sends the spoken apology as
   * its reply audio and a `busy` error (docs/protocol.md "Waiting for inference").
   */
  #refuse(turn: Turn, reason: string): void {
    if (turn.phase === "receiving") {
      clearTimeout(turn.timer);
      turn.controller.abort();
      this.#release(turn);
      this.#turns.delete(turn.id);
      this.#remember(turn.id, undefined);
    }
    this.#link.settings.log?.warn("turn refused: overloaded", {
      peer: this.#link.peer,
      device: turn.device,
      turn: turn.id,
      reason,
    });
    this.#out.speak(turn, "busy").then(() => this.#out.error(turn.id, "busy", reason));
  }

  /** Ends a turn that is still receiving, with an error for it. */
  #dropTurn(turn: Turn, code: string, message: string): void {
    clearTimeout(turn.timer);
    turn.controller.abort();
    this.#release(turn);
    this.#turns.delete(turn.id);
    this.#remember(turn.id, undefined);
    this.#out.error(turn.id, code, message);
  }

  /** `audio`: the turn's next chunk, its seq, rate and size checked. */
  audio(id: string, seq: number, rate: SampleRate, pcm: Uint8Array): void {
    const turn = this.#turns.get(id);
    if (turn === undefined) {
      // Late audio of a turn that was cancelled or failed is expected; anything else is not.
      if (!this.#finished.has(id)) this.#out.error(id, "unknown_turn", `turn ${id} has no start`);
      return;
    }
    if (turn.phase !== "receiving") {
      this.#out.error(id, "bad_frame", `audio for turn ${id} after its end`);
      return;
    }
    if (rate !== turn.rate) {
      this.#dropTurn(turn, "bad_frame", `audio rate ${rate} for turn ${id}, expected ${turn.rate}`);
      return;
    }
    if (seq !== turn.nextSeq) {
      this.#dropTurn(
        turn,
        "bad_frame",
        `audio seq ${seq} for turn ${id}, expected ${turn.nextSeq}`,
      );
      return;
    }
    const seconds = this.#maxTurnSeconds();
    const max = maxPcmBytes(turn.rate, { ...this.#link.settings.limits, maxAudioSeconds: seconds });
    if (turn.bytes + pcm.length > max) {
      this.#dropTurn(turn, "bad_frame", `turn ${id} audio exceeds ${max} bytes (${seconds} s)`);
      return;
    }
    if (!this.#link.settings.queue.reserve(pcm.length)) {
      const { maxBufferedBytes } = this.#link.settings.queue.limits;
      this.#refuse(turn, `server audio buffers are full (${maxBufferedBytes} bytes)`);
      return;
    }
    turn.reserved += pcm.length;
    turn.nextSeq++;
    turn.bytes += pcm.length;
    turn.chunks.push(pcm);
    // Speech resumed: the speculation no longer covers the utterance.
    discardSpeculation(turn);
  }

  /** `pause`: the user went quiet; STT may start on the audio so far (v2_speculation.ts). */
  pause(id: string): void {
    const turn = this.#turns.get(id);
    if (turn === undefined) {
      // A pause for a turn that already ended, failed or was cancelled is only a stale hint.
      if (!this.#finished.has(id)) this.#out.error(id, "unknown_turn", `turn ${id} has no start`);
      return;
    }
    const hint = this.#capabilities.has("eot")
      ? (eot: EotMessage) => {
        if (this.#link.open) this.#out.send(eot);
      }
      : undefined;
    speculate(turn, this.#link.settings, { hint, replyAhead: this.#capabilities.has("continue") });
  }

  /** Audio seconds one turn may carry: 30 s, or TURN_MAX_SECONDS with `continue`. */
  #maxTurnSeconds(): number {
    return maxTurnSeconds(this.#link.settings.limits, this.#capabilities.has("continue"));
  }

  /**
   * `start` … `continues: previousId`: the earlier turn of the device is taken over: its audio
   * goes first in the new turn, and it ends without a trace (no error, no end, no staged effect,
   * no memory row). Returns its audio, or undefined after answering the new turn's error.
   */
  #takeOver(
    previousId: string,
    id: string,
    device: string,
    rate: SampleRate,
  ): { pcm: Uint8Array; links: number } | undefined {
    const live = this.#turns.get(previousId);
    // Answered and waiting here, or on a connection that closed (the gateway reconnected).
    const waiting = live !== undefined
      ? undefined
      : this.#commits.has(previousId)
      ? this.#commits
      : this.#link.settings.orphans;
    const pending = waiting?.take(previousId);
    const earlier = live ?? pending;
    if (earlier === undefined) {
      this.#out.error(
        id,
        "unknown_turn",
        `turn ${previousId} cannot be continued: unknown, committed or cancelled`,
      );
      return undefined;
    }
    const problem = continuationProblem(previousId, earlier, device, rate);
    if (problem !== undefined) {
      // Back where it waited, with its own deadline: refused continuations never prolong it.
      if (pending !== undefined) waiting!.hold(previousId, pending, pending.deadline);
      this.#out.error(id, "bad_continuation", problem);
      return undefined;
    }
    if (pending !== undefined) {
      this.#remember(previousId, undefined);
      return { pcm: pending.pcm, links: pending.links + 1 };
    }
    const turn = live!;
    const pcm = turn.pcm ?? concatBytes(turn.chunks);
    turn.superseded = true;
    clearTimeout(turn.timer);
    turn.controller.abort();
    // Receiving: gone now. Queued or running: its queue promise settles and finds it superseded.
    if (turn.phase === "receiving") this.#finish(turn, undefined);
    return { pcm, links: turn.links + 1 };
  }

  /** `end`: the turn is queued for inference, its reply streamed as it comes. */
  end(id: string): void {
    const turn = this.#turns.get(id);
    if (turn === undefined || turn.phase !== "receiving") {
      this.#out.error(id, "unknown_turn", `turn ${id} is not receiving audio`);
      return;
    }
    clearTimeout(turn.timer);
    turn.phase = "queued";
    const usable = usableSpeculation(turn);
    // This turn's own work now: no other turn's run may abort it any more.
    usable?.adopt();
    const speculation = usable?.result;
    const held = usable?.reply;
    const utterance: Utterance = {
      device: turn.device,
      turn: id,
      pcm: concatBytes(turn.chunks),
      rate: turn.rate,
      endedAt: Date.now(),
    };
    turn.chunks = [];
    const staged = this.#capabilities.has("continue");
    if (staged) turn.pcm = utterance.pcm;
    const queuedAt = performance.now();
    let ranAt = queuedAt;
    let told = false;
    const sink = this.#out.sink(turn);
    this.#link.settings.queue.run(id, async (signal) => {
      turn.phase = "running";
      ranAt = performance.now();
      for (const timer of turn.queueTimers) clearTimeout(timer);
      if (told) this.#out.send({ type: "state", turn: id, state: "running", ts: Date.now() });
      // "One moment" is already being said: the reply follows it, never interleaves.
      await turn.notice;
      if (held !== undefined) {
        // The reply ran ahead of the end (a `complete` pause): what it made goes out at once.
        held.release(sink);
        const result = await held.result;
        if (!result.cancelled || signal.aborted) {
          return { ...result, stages: { ...result.stages, reply_ahead: 1 } };
        }
      }
      return this.#link.settings.pipeline.run(utterance, sink, {
        signal,
        outputRate: turn.rate,
        speculation,
        upcoming: (limit) => this.#link.settings.queue.upcoming(limit) as Utterance[],
        staged,
      });
    }, {
      // Its STT may run ahead in a batch with an earlier turn's, unless speculation has it.
      payload: speculation === undefined ? utterance : undefined,
      signal: turn.controller.signal,
      spare: turn.speculation?.controller,
      device: turn.device,
      audioMs: (utterance.pcm.length / 2 / turn.rate) * 1000,
      onQueued: (where, now) => {
        told = this.#capabilities.has("queue");
        this.#out.queued(turn, where, now);
      },
    }).then((result: TurnResult) => {
      if (turn.superseded) {
        // Taken over by a continuation: nothing applied, recorded or sent.
        this.#finish(turn, undefined);
        return;
      }
      const memoryId = this.#settle(turn, result);
      if (turn.playedMs !== undefined && memoryId !== undefined) {
        this.#markInterrupted(memoryId, turn.playedMs);
      }
      this.#finish(turn, memoryId);
      if (result.cancelled || turn.controller.signal.aborted) return;
      // Stages go to every gateway: an optional field any decoder accepts, and the latency
      // report needs them even from a gateway that forgot to announce "stages".
      const end: EndMessage = {
        type: "end",
        turn: id,
        ts: Date.now(),
        stages: { queue_ms: roundMs(ranAt - queuedAt), ...result.stages },
      };
      this.#out.send(end);
    }, (error: unknown) => {
      this.#finish(turn, undefined);
      if (turn.superseded) return;
      logTurnError(this.#link, turn.device, id, error);
      if (error instanceof QueueError) {
        if (error.code === "busy") this.#refuse(turn, error.message);
        return;
      }
      this.#out.error(id, "internal", `turn failed: ${(error as Error).message ?? error}`);
    }).catch((error) =>
      this.#link.settings.log?.error("turn handler failed", { peer: this.#link.peer, error })
    );
  }

  /**
   * A finished run's side effects: applied now (no `continue`, a `commit` already came, or a
   * `cancel`, which implies it), or held until the turn's commit. Returns the memory row id
   * if the turn was recorded.
   */
  #settle(turn: Turn, result: TurnResult): number | undefined {
    // A pipeline without staged effects (echo) acted already; its turn can still be continued.
    const commit = result.commit ?? (() => result.memoryId);
    if (turn.pcm === undefined || turn.commitRequested || turn.playedMs !== undefined) {
      return commit();
    }
    const pending = {
      device: turn.device,
      pcm: turn.pcm,
      rate: turn.rate,
      links: turn.links,
      commit,
    };
    // The link dropped while it ran: the gateway, reconnected, replays it if it got no reply (that
    // replay takes the orphan over) or continues or commits it; else it applies at its timeout.
    if (!this.#link.open) this.#link.settings.orphans.hold(turn.id, pending);
    else this.#commits.hold(turn.id, pending);
    return undefined;
  }

  /** The gateway says the turn is final: its staged effects apply (once; unknown: ignored). */
  commit(id: string): void {
    const turn = this.#turns.get(id);
    if (turn !== undefined) {
      turn.commitRequested = true;
      return;
    }
    const orphans = this.#link.settings.orphans;
    if (this.#commits.has(id)) this.#commits.commit(id);
    else if (orphans.has(id)) this.#remember(id, orphans.commit(id));
  }

  #markInterrupted(memoryId: number, playedMs: number): void {
    try {
      this.#link.settings.pipeline.markInterrupted(memoryId, playedMs);
    } catch (error) {
      this.#link.settings.log?.error("cannot record the interruption", {
        peer: this.#link.peer,
        error,
      });
    }
  }

  #finish(turn: Turn, memoryId: number | undefined): void {
    discardSpeculation(turn);
    this.#release(turn);
    this.#turns.delete(turn.id);
    // A turn awaiting its commit is remembered when committed.
    if (!this.#commits.has(turn.id)) this.#remember(turn.id, memoryId);
  }

  #remember(id: string, memoryId: number | undefined): void {
    this.#finished.set(id, memoryId);
    if (this.#finished.size > FINISHED_TURNS_KEPT) {
      this.#finished.delete(this.#finished.keys().next().value!);
    }
  }

  /** `cancel` (barge-in): the user heard `playedMs` of the reply. */
  cancel(id: string, playedMs: number): void {
    const turn = this.#turns.get(id);
    if (turn !== undefined) {
      // Receiving: dropped. Queued: leaves the queue. Running: stops at its next stage boundary.
      turn.playedMs = playedMs;
      clearTimeout(turn.timer);
      turn.controller.abort();
      if (turn.phase === "receiving") this.#finish(turn, undefined);
      return;
    }
    const orphans = this.#link.settings.orphans;
    // An orphan committed by its timeout before the reconnected gateway's cancel came.
    const lately = orphans.recent(id);
    if (this.#commits.has(id) || this.#finished.has(id) || orphans.has(id) || lately) {
      // Barge-in after the whole reply was sent: the user heard only played_ms of it. A cancel
      // implies the commit of a turn that waited for one.
      const memoryId = this.#commits.has(id)
        ? this.#commits.commit(id)
        : orphans.has(id)
        ? orphans.commit(id)
        : this.#finished.has(id)
        ? this.#finished.get(id)
        : lately!.memoryId;
      if (memoryId !== undefined) this.#markInterrupted(memoryId, playedMs);
      return;
    }
    this.#out.error(id, "unknown_turn", `turn ${id} is not known on this connection`);
  }
}
