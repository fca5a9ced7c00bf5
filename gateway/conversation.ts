/**
 * One device's turns (spec 7.1, 7.2): utterances from the utterance segmenter become AI-server
 * turns; replies go to the device's playback queue; speech over a reply is a barge-in. It needs
 * only small interfaces of its collaborators ({@link TurnSource}, {@link ConversationTurn},
 * {@link ReplyPlayback}); it is the segmenter's sink, the playback queue's listener, and the
 * echo guard's {@link ReplyState}.
 *
 * - Turn-taking decisions come from the per-device machine of `turn_taking.ts`
 *   (docs/turn_taking.md section 3); this module performs its actions. An ended turn is
 *   provisional: speech that resumes while the server thinks (up to `continueMaxMs` after the
 *   end) or within `graceMs` of the reply's first packet **continues** the request: the reply
 *   stops, a new turn carries the earlier audio plus the new (`start` with `continues`, or the
 *   merged audio as one plain turn / one v1 frame), no `interrupted` event. The turn is
 *   committed once the grace is over (`commit`: the server's side effects apply).
 * - Speech after the grace, over a reply, is a barge-in: the queue is flushed (synchronously,
 *   so within one frame), the old turn is cancelled on the server with `played_ms` (v2, implies
 *   its commit), and an `interrupted` event on `naila/devices/{id}/events` says how much of the
 *   reply the user heard.
 * - The server's `eot` hint sets this turn's silence: `complete` ends it as soon as the hinted
 *   silence passed (before the segmenter's own window), `incomplete` holds the end up to
 *   `incompleteMaxMs`: speech that comes back meanwhile goes on in the same turn. The
 *   segmenter's window (AUDIO_SILENCE_FRAMES) is the fallback.
 * - A queued turn (`state` from a server with `queue`) shows as `waiting` on the events topic.
 * - A turn that times out or fails is reported on the same topic (`timeout` / `error`).
 * - `state` events (listening, user_speaking, thinking, replying) and a `turn` event with the
 *   transcript, the reply text and the latencies close every turn (`conversation_events.ts`).
 * - {@link Conversation.announce}: a turn without audio fetches what the server holds for the
 *   device (a due timer's announcement) and plays it, if no turn is in progress.
 *
 * @example
 * ```ts
 * const conversation = new Conversation({ device, sessionId, ai, playback, wake, publish, log, sampleRate });
 * const input = new AudioInput({ ...audio, reply: conversation }, conversation);
 * ```
 */
import { float32ToPcm, pcmToFloat32 } from "../shared/audio.ts";
import type { SampleRate } from "../shared/frame_codec.ts";
import type { Logger } from "../shared/log.ts";
import type { DeviceEvent } from "../shared/messages.ts";
import type { TurnFailure } from "./ai_turn.ts";
import type {
  ConversationState,
  ConversationTurn,
  ReplyPlayback,
  TurnRecord,
  TurnSource,
} from "./conversation_parts.ts";
import { ConversationEvents } from "./conversation_events.ts";
import type { AudioInputSink, ReplyState } from "./audio_input.ts";
import type { PlaybackListener } from "./playback.ts";
import type { EndReason } from "./utterance_segmenter.ts";
import { PAUSE_AFTER_MS, type TurnAction, TurnTaking } from "./turn_taking.ts";

/** Frames kept after an utterance ended early (an `eot` hint): a resumption's onset, 300 ms. */
const ONSET_FRAMES = 15;

/** Latencies of the last completed turns kept for metrics. */
const LATENCY_HISTORY = 32;

/** Dependencies of a {@link Conversation}. */
export interface ConversationOptions {
  device: string;
  sessionId: string;
  ai: TurnSource;
  sampleRate: SampleRate;
  playback: ReplyPlayback;
  /** Starts the playback clock after audio was queued. */
  wake(): void;
  publish(event: DeviceEvent): void;
  log: Logger;
  /** Turn-taking times (ms; turn_taking.ts defaults): silence window, grace, continuation. */
  turnTaking?: {
    silenceMs?: number;
    graceMs?: number;
    continueMaxMs?: number;
    incompleteMaxMs?: number;
  };
}

/** See the module doc. */
export class Conversation implements AudioInputSink, PlaybackListener, ReplyState {
  #o: ConversationOptions;
  #current: TurnRecord | undefined;
  /** The machine's turn (open, provisional or replying); may outlive {@link #current}. */
  #last: TurnRecord | undefined;
  #machine: TurnTaking;
  #local = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Frames after an early end, while the segmenter still runs: a resumption's onset. */
  #onset: Uint8Array[] = [];
  #events: ConversationEvents;
  #replyPlaying = false;
  /** The int16 bytes of the last utterance frame, reused for the next (same size each time). */
  #pcm: Uint8Array = new Uint8Array(0);
  #closed = false;
  /** Turns started, barge-ins, failures; latency (last speech → first reply packet), ms. */
  readonly stats = {
    turns: 0,
    interruptions: 0,
    timeouts: 0,
    errors: 0,
    /** Requests continued (speech within the grace): no barge-in, one merged turn. */
    continuations: 0,
    latencies: [] as number[],
  };

  /** Listens to `options.playback` for sent frames and drained replies. */
  constructor(options: ConversationOptions) {
    this.#o = options;
    this.#events = new ConversationEvents(options);
    this.#machine = new TurnTaking({
      newTurnId: () => `c${++this.#local}`,
      ...options.turnTaking,
    });
    options.playback.listen(this);
  }

  get state(): ConversationState {
    return this.#events.state;
  }

  /** True from a reply's first audio until it drained or was cut off: the echo guard's switch. */
  get replyPlaying(): boolean {
    return this.#replyPlaying;
  }

  utteranceStart(at: number): void {
    if (this.#closed) return;
    if (this.#machine.phase === "utterance" && this.#last && !this.#last.turn.ended) {
      // The segmenter's window passed but an `incomplete` hint holds the end: the same turn.
      this.#resumeSameTurn(at);
      return;
    }
    // A turn the machine does not know (an announcement) is barged in on as before.
    if (this.#machine.phase === "listening") this.#interrupt();
    // The machine runs on this clock: the segmenter's capture times may be on the media clock.
    this.#perform(this.#machine.speechStart(Date.now()), at);
  }

  #resumeSameTurn(_at: number): void {
    this.#machine.frame(true, Date.now());
    this.#last!.turn.resume();
    this.#events.setState("user_speaking", this.#last!.turn.id);
  }

  /** Performs the machine's actions in order (docs/turn_taking.md section 3). */
  #perform(actions: TurnAction[], at: number): void {
    let played = 0;
    for (const action of actions) {
      const record = "turn" in action && this.#last?.local === action.turn ? this.#last : undefined;
      switch (action.kind) {
        case "start":
          this.#startTurn(action.turn, at, action.continues);
          break;
        case "pause":
          record?.turn.pause();
          break;
        case "end":
          if (record) this.#endTurn(record, action.lastSpeechAt);
          break;
        case "flush":
          played = this.#o.playback.flush();
          this.#replyPlaying = false;
          break;
        case "cancel":
          if (record) this.#bargeIn(record, played);
          break;
        case "commit":
          if (record) this.#commit(record);
          break;
      }
    }
    this.#schedule();
  }

  /**
   * The turn can no longer be continued (once; not for a cancelled or failed turn): the server
   * applies it, and a reply that already drained closes it with its `turn` event.
   */
  #commit(record: TurnRecord): void {
    if (record.final) return;
    record.final = true;
    record.turn.commit();
    if (record.playedMs !== undefined) this.#events.turn(record, record.playedMs);
    record.playedMs = undefined;
  }

  /** Arms the clock for the machine's next deadline (grace over, incomplete wait over). */
  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const deadline = this.#machine.nextDeadline();
    if (deadline === undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const now = Date.now();
      this.#perform(this.#machine.tick(now), now);
    }, Math.max(0, deadline - Date.now()));
  }

  #startTurn(local: string, at: number, continues: string | undefined): void {
    const earlier = continues !== undefined && this.#last?.local === continues
      ? this.#last
      : undefined;
    const record = this.#open(at, local, earlier?.turn);
    if (earlier) {
      earlier.final = true;
      // A reply that drained within the grace: its turn was not answered after all.
      earlier.playedMs = undefined;
      earlier.turn.supersede(record.turn.continued);
      this.stats.continuations++;
      this.#o.log.info("request continued", {
        device: this.#o.device,
        turn: record.turn.id,
        continues: earlier.turn.id,
      });
      // The onset heard after an early end goes first.
      for (const frame of this.#onset) record.turn.audio(frame);
    }
    this.#onset = [];
    this.#events.setState("user_speaking", record.turn.id);
    this.#o.log.debug("utterance started", { device: this.#o.device, turn: record.turn.id });
  }

  /**
   * Opens a turn with no audio, which the server answers with what it holds for the device (a
   * due timer's announcement, server/README.md). Only when no turn is in progress (the user is
   * not speaking, no reply is awaited or playing) and the AI server is connected: otherwise the
   * server speaks it on the next turn. Returns whether a turn was opened.
   */
  announce(): boolean {
    if (this.#closed || this.#current || !this.#o.ai.connected) return false;
    if (this.#machine.phase !== "listening") return false;
    const record = this.#open(Date.now(), "announcement");
    record.turn.end(Date.now());
    this.#o.log.info("fetching an announcement", {
      device: this.#o.device,
      turn: record.turn.id,
    });
    if (!record.turn.done) this.#events.setState("thinking", record.turn.id);
    return true;
  }

  #open(at: number, local: string, continues?: ConversationTurn): TurnRecord {
    const turn = this.#o.ai.startTurn(this.#o.device, this.#o.sampleRate, {
      audio: (pcm, rate) => this.#replyAudio(record, pcm, rate),
      text: (kind, text) => {
        if (kind === "transcript") record.transcript = text;
        else record.reply = (record.reply ? record.reply + " " : "") + text;
      },
      end: (stages) => {
        record.stages = stages;
        this.#replyEnd(record);
      },
      fail: (reason, message) => this.#fail(record, reason, message),
      eot: (completion, silenceMs) => {
        if (record !== this.#last) return;
        const now = Date.now();
        this.#perform(this.#machine.hint(local, { completion, silenceMs }, now), now);
      },
      state: (state, position, waitMs) => this.#queueState(record, state, position, waitMs),
    }, continues ? { continues } : undefined);
    const record: TurnRecord = {
      turn,
      local,
      startedAt: at,
      replyEnded: false,
      audioQueued: false,
    };
    this.#current = record;
    if (local !== "announcement") this.#last = record;
    this.stats.turns++;
    return record;
  }

  /** One frame of the utterance (floats at the utterance rate), to the turn as int16 bytes. */
  utteranceAudio(frame: Float32Array): void {
    const record = this.#last;
    if (!record || this.#closed || (record.turn.done && !record.turn.ended)) return;
    this.#pcm = float32ToPcm(frame, this.#pcm);
    if (!record.turn.ended) {
      record.turn.audio(this.#pcm);
      return;
    }
    // Ended early by a hint while the segmenter still runs: keep the last frames, in case
    // speech resumes (its onset then opens the continuation).
    this.#onset.push(this.#pcm.slice());
    if (this.#onset.length > ONSET_FRAMES) this.#onset.shift();
  }

  utterancePause(_at?: number): void {
    if (this.#machine.phase !== "utterance") return;
    // The segmenter calls the pause PAUSE_AFTER_MS after the last speech frame. The machine
    // runs on Date.now(): the segmenter's capture times may be on the media clock.
    const now = Date.now();
    this.#machine.frame(true, now - PAUSE_AFTER_MS);
    this.#perform(this.#machine.frame(false, now), now);
  }

  utteranceResume(): void {
    const now = Date.now();
    if (this.#machine.phase === "utterance") {
      this.#machine.frame(true, now);
      this.#last?.turn.resume();
      return;
    }
    // Speech came back inside the segmenter's utterance after an early end.
    this.#perform(this.#machine.speechStart(now), now);
  }

  utteranceEnd(reason: EndReason, lastSpeechAt: number): void {
    if (this.#closed || this.#machine.phase !== "utterance") return;
    // The segmenter's window passed: that ends the turn, unless an `incomplete` hint asked for
    // more silence (then the machine's clock ends it, or speech comes back first).
    const hold = reason === "silence" &&
      this.#machine.requiredSilenceMs > this.#machine.silenceMs;
    const now = Date.now();
    this.#perform(hold ? [] : this.#machine.endNow(now, lastSpeechAt), now);
    if (this.#machine.phase === "utterance") {
      // An `incomplete` hint holds the end: the user is quiet meanwhile.
      this.#events.setState("thinking", this.#last?.turn.id);
    }
  }

  /** The machine's `end`: the utterance is over and goes to the server. */
  #endTurn(record: TurnRecord, lastSpeechAt: number): void {
    if (record.turn.ended) return;
    const reason = "turn_taking";
    record.lastSpeechAt = lastSpeechAt;
    record.endDetectedAt = Date.now();
    record.turn.end(lastSpeechAt);
    this.#o.log.debug("utterance ended", {
      device: this.#o.device,
      turn: record.turn.id,
      reason,
    });
    if (!record.turn.done) this.#events.setState("thinking", record.turn.id);
  }

  /** Called by the playback queue for each frame sent. */
  frameSent(turn: string): void {
    const record = this.#current;
    if (!record || record.turn.id !== turn || record.firstPacketAt !== undefined) return;
    record.firstPacketAt = Date.now();
    this.#perform(this.#machine.replyStarted(record.local, record.firstPacketAt), Date.now());
    if (record.lastSpeechAt !== undefined) {
      const latency = record.firstPacketAt - record.lastSpeechAt;
      this.stats.latencies.push(latency);
      if (this.stats.latencies.length > LATENCY_HISTORY) this.stats.latencies.shift();
    }
  }

  /** Called by the playback queue when all of `turn`'s reply was sent. */
  drained(turn: string, playedMs: number): void {
    const record = this.#current;
    this.#replyPlaying = false;
    if (!record || record.turn.id !== turn) return;
    this.#complete(record, playedMs);
    const now = Date.now();
    this.#perform(this.#machine.replyDone(record.local, now, { audio: true }), now);
  }

  /** The session ends: flush playback, cancel an open turn, commit a provisional one. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    const played = this.#o.playback.flush();
    for (const record of new Set([this.#current, this.#last])) {
      if (!record) continue;
      if (!record.turn.done) {
        record.final = true;
        record.turn.cancel(played);
      } else {
        this.#commit(record);
      }
    }
    this.#current = undefined;
    this.#last = undefined;
  }

  /** The server's queue (`state`): `waiting` while queued, `thinking` once it runs. */
  #queueState(record: TurnRecord, state: string, position?: number, waitMs?: number): void {
    if (record !== this.#current) return;
    if (state === "running") record.runningAt = Date.now();
    this.#events.queue(record.turn.id, state, position, waitMs);
  }

  #interrupt(): void {
    const record = this.#current;
    if (!record) return;
    const playing = this.#o.playback.playing && this.#o.playback.turn === record.turn.id;
    const awaiting = !record.turn.done;
    if (!playing && !awaiting) return;
    const played = this.#o.playback.flush();
    this.#replyPlaying = false;
    this.#bargeIn(record, played);
  }

  /** Barge-in on `record` after `played` ms of its reply: cancel (implies commit), event. */
  #bargeIn(record: TurnRecord, played: number): void {
    record.final = true;
    record.turn.cancel(played);
    if (this.#current === record) this.#current = undefined;
    this.stats.interruptions++;
    this.#events.interrupted(record.turn.id, played);
  }

  #replyAudio(record: TurnRecord, pcm: Uint8Array, rate: number): void {
    if (record !== this.#current || this.#closed) return;
    record.firstAudioAt ??= Date.now();
    this.#o.playback.enqueue(record.turn.id, pcmToFloat32(pcm), rate);
    record.audioQueued = true;
    this.#replyPlaying = true;
    this.#o.wake();
    this.#events.setState("replying", record.turn.id);
  }

  #replyEnd(record: TurnRecord): void {
    if (record !== this.#current) return;
    record.replyEnded = true;
    if (record.audioQueued) {
      this.#o.playback.finish(record.turn.id);
    } else {
      this.#complete(record, 0);
      const now = Date.now();
      this.#perform(this.#machine.replyDone(record.local, now, { audio: false }), now);
    }
  }

  #fail(record: TurnRecord, reason: TurnFailure, message: string): void {
    // A turn that failed while the user still spoke: the utterance is over for the machine too.
    record.final = true;
    if (record === this.#last && this.#machine.phase === "utterance") {
      this.#machine.endNow(Date.now());
    }
    if (record !== this.#current) return;
    if (reason === "timeout") this.stats.timeouts++;
    else this.stats.errors++;
    this.#events.failed(record.turn.id, reason, message);
    if (record.audioQueued) {
      this.#o.playback.finish(record.turn.id);
    } else {
      this.#current = undefined;
      this.#events.setState("listening");
      const now = Date.now();
      this.#perform(this.#machine.replyDone(record.local, now, { audio: false }), now);
    }
  }

  /**
   * The reply is over: the device listens again. The `turn` event closes the turn, unless it can
   * still be continued (a short reply drained within the grace): then it waits for the commit,
   * and a continuation drops it (the merged turn gets the event).
   */
  #complete(record: TurnRecord, playedMs: number): void {
    this.#current = undefined;
    const continuable = record === this.#last && !record.final &&
      this.#machine.turn === record.local &&
      (this.#machine.phase === "replying_within_grace" || this.#machine.phase === "pending_end");
    if (continuable) record.playedMs = playedMs;
    else this.#events.turn(record, playedMs);
    // A turn the machine does not track (an announcement) is final once its reply played: the
    // AI link (a session worker's main thread too) forgets it on commit.
    if (record !== this.#last) this.#commit(record);
    this.#events.setState("listening");
  }
}
