/**
 * One turn on the AI link: the user's utterance streamed out, the reply streamed back
 * (spec 4.2-4.4, docs/protocol.md). What goes on the wire is the protocol's {@link TurnWriter};
 * what the turn needs of its link is the small {@link TurnLink}, so the turn never reaches into
 * the connection.
 *
 * - `audio` while the user speaks, `end` when the utterance ended; `pause` when the user goes
 *   quiet (only to a server that can `speculate`): later audio is held back until `resume`, and
 *   dropped if the turn ends, so the server's speculation covers exactly the utterance.
 * - A response timeout ({@link RESPONSE_TIMEOUT_MS}, spec 4.4) re-armed by each reply item.
 * - `cancel` on barge-in or hang-up says how much was played; late audio is dropped.
 * - During an outage the turn is suspended by the outage hold (outage_hold.ts) and replayed once
 *   the server is back, at most {@link MAX_REPLAYS} times.
 * - A turn that continues another (`start` with `continues`) and gets `unknown_turn` (the server
 *   restarted since the earlier turn) is sent again at once, whole, as one plain turn.
 *
 * @example
 * ```ts
 * const turn = client.startTurn("kitchen", 16000, handlers); // made by AiServers
 * turn.audio(pcmBytes); turn.end(lastSpeechAt);
 * ```
 */
import type { SampleRate, TurnCompletion, TurnState } from "../shared/frame_codec.ts";
import type { AiProtocol, TurnReply, TurnWriter } from "./ai_protocol.ts";
import type { HeldTurn } from "./outage_hold.ts";
import { UtteranceBuffer } from "./utterance_buffer.ts";

/** Spec 4.4: "AI server slow response: timeout after 10 s, notify device". */
export const RESPONSE_TIMEOUT_MS = 10_000;
/** A turn is sent again after an outage at most this often. */
export const MAX_REPLAYS = 1;

/** How a turn failed. */
export type TurnFailure = "timeout" | "disconnected" | "server_error" | "unavailable";

/** Callbacks of one turn (all optional but `end`/`fail`). */
export interface TurnHandlers {
  /** A chunk of reply audio (int16 LE PCM at `rate`). */
  audio?(pcm: Uint8Array, rate: SampleRate): void;
  text?(kind: "transcript" | "reply", text: string): void;
  /** The reply is complete (`stages`: the server's own timings, v2). */
  end(stages?: Record<string, number>): void;
  /** The turn is over without a (complete) reply. */
  fail(reason: TurnFailure, message: string): void;
  /** The server's end-of-turn hint after a `pause` (capability `eot`); `silenceMs` in ms. */
  eot?(completion: TurnCompletion, silenceMs: number): void;
  /** Where the turn stands in the server's queue (capability `queue`); `waitMs` in ms. */
  state?(state: TurnState, position?: number, waitMs?: number): void;
}

/** What a turn needs of its link (the AI client implements it). */
export interface TurnLink {
  /** How long a turn waits for each reply item once its utterance ended (ms). */
  readonly responseTimeoutMs: number;
  /** Bytes to the server, in order; dropped while it is away (so a suspended turn sends none). */
  send(bytes: Uint8Array): void;
  /** Whether the server announced `capability` in its hello. */
  serverCan(capability: string): boolean;
  /** The turn got no reply in time. */
  responseTimedOut(): void;
  /** The turn is over: the link forgets it. */
  finished(turn: Turn): void;
}

/** What a {@link Turn} is made of. */
export interface TurnInit {
  id: string;
  device: string;
  rate: SampleRate;
  handlers: TurnHandlers;
  protocol: AiProtocol;
  /** The provisional turn this one continues (its id and whole request audio). */
  continues?: { id: string; pcm: Uint8Array; whole?: boolean };
}

/** One utterance and its reply; see the module doc. */
export class Turn implements HeldTurn {
  readonly id: string;
  readonly device: string;
  readonly rate: SampleRate;
  /** Wall-clock ms when `end` was written to the socket. */
  endWrittenAt: number | undefined;
  #link: TurnLink;
  #handlers: TurnHandlers;
  #writer: TurnWriter;
  /** Audio after a `pause`, sent if speech resumes, dropped if the turn ends. */
  #held: UtteranceBuffer;
  #paused = false;
  #startedAt = Date.now();
  #lastSpeechAt = 0;
  /** Some of the reply came: the turn can no longer be sent again. */
  #replied = false;
  #replays = 0;
  /** Sent again whole after `unknown_turn` for its continuation (once). */
  #resent = false;
  /** Waiting for the server to come back: the end waits for the replay. */
  #suspended = false;
  #ended = false;
  #done = false;
  #cancelled = false;
  /** Timed out, aborted or refused: the server has nothing to cancel. */
  #failed = false;
  /** The whole request so far (a continued turn's audio first), until the turn is final. */
  #request: UtteranceBuffer | undefined;
  #committed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Made by the AI client's `startTurn`. */
  constructor(link: TurnLink, init: TurnInit) {
    const { id, device, rate, handlers, protocol, continues } = init;
    this.#link = link;
    this.id = id;
    this.device = device;
    this.rate = rate;
    this.#handlers = handlers;
    this.#held = new UtteranceBuffer(rate);
    this.#request = new UtteranceBuffer(rate);
    if (continues !== undefined) this.#request.append(continues.pcm);
    // The writer sends straight to the link (which drops bytes while the server is away).
    this.#writer = protocol.writer({ id, device, rate, continues }, link);
  }

  /** True when the server was told this turn continues another (no cancel needed for it). */
  get continued(): boolean {
    return this.#writer.continued;
  }

  /** The whole request's audio so far (int16 LE PCM), for a turn that continues this one. */
  requestAudio(): Uint8Array {
    return this.#request?.view().slice() ?? new Uint8Array(0);
  }

  /** True once the reply ended, failed or was cancelled. */
  get done(): boolean {
    return this.#done;
  }

  /** True once the user's utterance ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /** True while the turn can still be sent again whole (no reply yet, not replayed yet). */
  get replayable(): boolean {
    return !this.#done && !this.#replied && this.#replays < MAX_REPLAYS;
  }

  /** The turn opens on the server (v2 `start`). */
  open(): void {
    this.#writer.open(Date.now());
  }

  /** Appends user audio (int16 LE PCM at the turn's rate). */
  audio(pcm: Uint8Array): void {
    if (this.#ended || this.#done) return;
    if (this.#paused) {
      this.#held.append(pcm);
    } else {
      this.#writer.audio(pcm);
      this.#request?.append(pcm);
    }
  }

  /**
   * The user went quiet (v2, only to a server that can `speculate`): the audio so far goes out,
   * then `pause`; later audio is held until {@link resume} or dropped by {@link end}.
   */
  pause(): void {
    if (this.#ended || this.#done || this.#paused) return;
    // While suspended, the replay says `pause` itself.
    if (this.#writer.pause()) this.#paused = true;
  }

  /** Speech came back after {@link pause}: the held audio goes out, and streaming goes on. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    // clear() lets the buffer go rather than reusing it, so the view stays valid.
    const held = this.#held.view();
    this.#held.clear();
    if (held.length > 0) this.audio(held);
  }

  /** The utterance ended; `lastSpeechAt` is when its last speech sample was captured (ms). */
  end(lastSpeechAt: number): void {
    if (this.#ended || this.#done) return;
    this.#ended = true;
    this.#lastSpeechAt = lastSpeechAt;
    // Silence after a pause is not sent: the server's speculation covers the utterance.
    this.#paused = false;
    this.#held.clear();
    this.#writer.flush();
    if (this.#suspended) return; // sent when the server is back
    this.#sendEnd();
  }

  /**
   * Barge-in or hang-up: tells the server how much was played (also after its reply ended, so
   * its memory records what the user heard); the turn is over and late audio is dropped.
   */
  cancel(playedMs: number): void {
    this.#release();
    if (this.#cancelled || this.#failed) return;
    this.#cancelled = true;
    this.#writer.cancel(playedMs); // not sent while suspended: the server never had the turn
    this.#finish();
  }

  /**
   * The turn can no longer be continued (docs/protocol.md `commit`): the server applies its
   * side effects. Once; nothing after a cancel (which implies it) or a failure.
   */
  commit(): void {
    this.#release();
    if (this.#committed || this.#cancelled || this.#failed) return;
    this.#committed = true;
    this.#writer.commit();
  }

  /**
   * A turn continues this one (`next.continued`: the server was told, and drops this turn by
   * itself; else this turn is cancelled with nothing played). Its late replies are dropped.
   */
  supersede(nextContinued: boolean): void {
    this.#release();
    if (!nextContinued) {
      this.cancel(0);
      return;
    }
    if (this.#done) return;
    this.#cancelled = true;
    this.#finish();
  }

  /** One reply item from the server. */
  receive(reply: TurnReply): void {
    if (this.#done) return;
    if (reply.type === "eot") {
      this.#handlers.eot?.(reply.completion, reply.silenceMs);
      return;
    }
    if (reply.type === "state") {
      // The server has the turn and says so: the response timeout starts again.
      if (this.#ended && !this.#suspended) this.#arm();
      this.#handlers.state?.(reply.state, reply.position, reply.waitMs);
      return;
    }
    if (reply.type === "error" && reply.code === "unknown_turn" && this.#resendWhole()) return;
    if (!this.#replied) {
      this.#replied = true;
      this.#writer.replyStarted();
    }
    if (this.#ended) this.#arm();
    switch (reply.type) {
      case "audio":
        this.#handlers.audio?.(reply.pcm, reply.rate);
        break;
      case "text":
        this.#handlers.text?.(reply.kind, reply.text);
        break;
      case "end":
        this.#finish();
        this.#handlers.end(reply.stages);
        break;
      case "error":
        this.#failed = true;
        this.#finish();
        // A newer turn of the device took this one's place: expected, nothing to report.
        if (reply.code === "superseded") break;
        this.#handlers.fail("server_error", `${reply.code}: ${reply.message}`);
        break;
    }
  }

  /** The connection dropped or was never there: the turn fails with `reason`. */
  abort(reason: TurnFailure, message: string): void {
    if (this.#done) return;
    this.#failed = true;
    this.#finish();
    this.#handlers.fail(reason, message);
  }

  /** The server is away (outage hold): nothing is sent, no response is awaited. */
  suspend(): void {
    this.#suspended = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The server is back: everything so far goes out again on the new connection. */
  replay(): void {
    if (!this.#suspended || this.#done) return;
    this.#suspended = false;
    this.#replays++;
    this.#writer.replay(this.#startedAt, this.#paused, this.#replays < MAX_REPLAYS);
    if (this.#ended) this.#sendEnd();
  }

  /**
   * `unknown_turn` on a live link: the server does not know the turn this one continues (it
   * restarted since, docs/protocol.md "Continuing a turn"). The whole request (the earlier
   * turn's audio, then this one's so far) goes out again under this id as one plain turn, once,
   * and `end` if the utterance has ended. The server's `unknown_turn` errors for what was sent
   * before the resend (its audio, pause, end) come before any reply and are stale. Returns
   * whether the error was handled (false: it fails the turn as any other).
   */
  #resendWhole(): boolean {
    if (this.#resent) return !this.#replied;
    if (!this.#writer.continued || this.#replied || this.#suspended) return false;
    this.#resent = true;
    this.#writer.replay(this.#startedAt, this.#paused, this.#replays < MAX_REPLAYS);
    if (this.#ended) this.#sendEnd();
    return true;
  }

  #sendEnd(): void {
    this.#writer.end(this.#lastSpeechAt);
    this.endWrittenAt = Date.now();
    if (!this.#done) this.#arm();
  }

  #arm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const timeoutMs = this.#link.responseTimeoutMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#done) return;
      this.#writer.cancel(0);
      this.#failed = true;
      this.#finish();
      this.#handlers.fail("timeout", `no response from the AI server within ${timeoutMs} ms`);
      this.#link.responseTimedOut();
    }, timeoutMs);
  }

  /** Lets the request's audio go: nothing will continue this turn. */
  #release(): void {
    this.#request?.clear();
    this.#request = undefined;
  }

  #finish(): void {
    this.#done = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#writer.close();
    this.#held.clear();
    this.#link.finished(this);
  }
}
