/**
 * One device's turns (spec 7.1, 7.2): utterances from the utterance segmenter become AI-server
 * turns; replies go to the device's playback queue; speech over a reply is a barge-in. It needs
 * only small interfaces of its collaborators ({@link TurnSource}, {@link ConversationTurn},
 * {@link ReplyPlayback}); it is the segmenter's sink, the playback queue's listener, and the
 * echo guard's {@link ReplyState}.
 *
 * - Utterance start → a new turn. If the previous turn is still awaited or its reply is still
 *   playing, that is a barge-in: the queue is flushed (synchronously, so within one frame), the
 *   old turn is cancelled on the server with `played_ms` (v2), and an `interrupted` event on
 *   `naila/devices/{id}/events` says how much of the reply the user heard.
 * - A turn that times out or fails is reported on the same topic (`timeout` / `error`).
 * - `state` events (listening, user_speaking, thinking, replying) and a `turn` event with the
 *   transcript, the reply text and the latencies close every turn.
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
import { roundMs } from "../shared/audio.ts";
import { type DeviceEvent, MAX_TEXT_CHARS } from "../shared/messages.ts";
import type { TurnFailure, TurnHandlers } from "./ai_turn.ts";
import type { AudioInputSink, ReplyState } from "./audio_input.ts";
import type { PlaybackListener } from "./playback.ts";
import type { EndReason } from "./utterance_segmenter.ts";

/** What the conversation needs of one AI-server turn (ai_turn.ts `Turn` is one). */
export interface ConversationTurn {
  readonly id: string;
  /** The reply ended, failed or was cancelled. */
  readonly done: boolean;
  /** The utterance ended. */
  readonly ended: boolean;
  /** Wall-clock ms when the utterance's end went to the server. */
  readonly endWrittenAt: number | undefined;
  audio(pcm: Uint8Array): void;
  pause(): void;
  resume(): void;
  end(lastSpeechAt: number): void;
  cancel(playedMs: number): void;
}

/** What the conversation needs of the AI link (ai_client.ts `AiClient` is one). */
export interface TurnSource {
  readonly connected: boolean;
  startTurn(device: string, rate: SampleRate, handlers: TurnHandlers): ConversationTurn;
}

/** What the conversation needs of the device's reply playback (playback.ts `PlaybackQueue`). */
export interface ReplyPlayback {
  /** The turn whose audio is playing or queued, if any. */
  readonly turn: string | undefined;
  /** True while audio is queued. */
  readonly playing: boolean;
  enqueue(turn: string, samples: Float32Array, rate: number): boolean;
  finish(turn: string): void;
  /** Drops everything queued; returns how much of the turn was played (ms). */
  flush(): number;
  listen(listener: PlaybackListener): void;
}

/** What the device's conversation is doing, for displays (shared/messages.ts `state`). */
export type ConversationState = "listening" | "user_speaking" | "thinking" | "replying";

/** Latencies of the last completed turns kept for metrics. */
const LATENCY_HISTORY = 32;

/**
 * The server's `stages` under their own names, plus `transport_ms`: the gateway's time from
 * writing `end` to the first reply audio, less what the server says it spent in that span
 * (`queue_ms` + `first_audio_ms`, or `echo_ms`): sockets, both directions, and decoding. Both
 * sides measure durations on their own clock, so no clock offset enters it.
 */
function serverLatency(record: TurnRecord): Record<string, number> {
  const stages = record.stages;
  if (!stages) return {};
  const latency: Record<string, number> = {};
  for (const [key, value] of Object.entries(stages)) {
    if (Number.isFinite(value) && value >= 0) latency[key] = value;
  }
  const serverFirst = stages.first_audio_ms ?? stages.echo_ms;
  const sentAt = record.turn.endWrittenAt;
  if (serverFirst !== undefined && sentAt !== undefined && record.firstAudioAt !== undefined) {
    const transport = record.firstAudioAt - sentAt - (stages.queue_ms ?? 0) - serverFirst;
    latency.transport_ms = Math.max(0, roundMs(transport));
  }
  return latency;
}

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
}

interface TurnRecord {
  turn: ConversationTurn;
  startedAt: number;
  lastSpeechAt?: number;
  endDetectedAt?: number;
  firstPacketAt?: number;
  /** Date.now() when the first reply audio arrived from the AI server. */
  firstAudioAt?: number;
  /** The server's own stage durations from its `end` (v2). */
  stages?: Record<string, number>;
  replyEnded: boolean;
  audioQueued: boolean;
  transcript?: string;
  reply?: string;
}

/** See the module doc. */
export class Conversation implements AudioInputSink, PlaybackListener, ReplyState {
  #o: ConversationOptions;
  #current: TurnRecord | undefined;
  #state: ConversationState = "listening";
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
    latencies: [] as number[],
  };

  /** Listens to `options.playback` for sent frames and drained replies. */
  constructor(options: ConversationOptions) {
    this.#o = options;
    options.playback.listen(this);
  }

  get state(): ConversationState {
    return this.#state;
  }

  /** True from a reply's first audio until it drained or was cut off: the echo guard's switch. */
  get replyPlaying(): boolean {
    return this.#replyPlaying;
  }

  utteranceStart(at: number): void {
    if (this.#closed) return;
    this.#interrupt();
    const { turn } = this.#open(at);
    this.#setState("user_speaking", turn.id);
    this.#o.log.debug("utterance started", { device: this.#o.device, turn: turn.id });
  }

  /**
   * Opens a turn with no audio, which the server answers with what it holds for the device (a
   * due timer's announcement, server/README.md). Only when no turn is in progress (the user is
   * not speaking, no reply is awaited or playing) and the AI server is connected: otherwise the
   * server speaks it on the next turn. Returns whether a turn was opened.
   */
  announce(): boolean {
    if (this.#closed || this.#current || !this.#o.ai.connected) return false;
    const record = this.#open(Date.now());
    record.turn.end(Date.now());
    this.#o.log.info("fetching an announcement", {
      device: this.#o.device,
      turn: record.turn.id,
    });
    if (!record.turn.done) this.#setState("thinking", record.turn.id);
    return true;
  }

  #open(at: number): TurnRecord {
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
    });
    const record: TurnRecord = { turn, startedAt: at, replyEnded: false, audioQueued: false };
    this.#current = record;
    this.stats.turns++;
    return record;
  }

  /** One frame of the utterance (floats at the utterance rate), to the turn as int16 bytes. */
  utteranceAudio(frame: Float32Array): void {
    const turn = this.#current?.turn;
    if (!turn) return;
    this.#pcm = float32ToPcm(frame, this.#pcm);
    turn.audio(this.#pcm);
  }

  utterancePause(): void {
    this.#current?.turn.pause();
  }

  utteranceResume(): void {
    this.#current?.turn.resume();
  }

  utteranceEnd(reason: EndReason, lastSpeechAt: number): void {
    const record = this.#current;
    if (!record || record.turn.ended) return;
    record.lastSpeechAt = lastSpeechAt;
    record.endDetectedAt = Date.now();
    record.turn.end(lastSpeechAt);
    this.#o.log.debug("utterance ended", {
      device: this.#o.device,
      turn: record.turn.id,
      reason,
    });
    if (!record.turn.done) this.#setState("thinking", record.turn.id);
  }

  /** Called by the playback queue for each frame sent. */
  frameSent(turn: string): void {
    const record = this.#current;
    if (!record || record.turn.id !== turn || record.firstPacketAt !== undefined) return;
    record.firstPacketAt = Date.now();
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
  }

  /** The session ends: flush playback, cancel an open turn. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const record = this.#current;
    const played = this.#o.playback.flush();
    if (record && !record.turn.done) record.turn.cancel(played);
    this.#current = undefined;
  }

  #interrupt(): void {
    const record = this.#current;
    if (!record) return;
    const playing = this.#o.playback.playing && this.#o.playback.turn === record.turn.id;
    const awaiting = !record.turn.done;
    if (!playing && !awaiting) return;
    const played = this.#o.playback.flush();
    this.#replyPlaying = false;
    record.turn.cancel(played);
    this.#current = undefined;
    this.stats.interruptions++;
    this.#o.log.info("barge-in", {
      device: this.#o.device,
      turn: record.turn.id,
      played_ms: played,
    });
    this.#o.publish({
      type: "interrupted",
      turn: record.turn.id,
      played_ms: Math.round(played),
      session_id: this.#o.sessionId,
      timestamp: new Date().toISOString(),
    });
  }

  #replyAudio(record: TurnRecord, pcm: Uint8Array, rate: number): void {
    if (record !== this.#current || this.#closed) return;
    record.firstAudioAt ??= Date.now();
    this.#o.playback.enqueue(record.turn.id, pcmToFloat32(pcm), rate);
    record.audioQueued = true;
    this.#replyPlaying = true;
    this.#o.wake();
    this.#setState("replying", record.turn.id);
  }

  #replyEnd(record: TurnRecord): void {
    if (record !== this.#current) return;
    record.replyEnded = true;
    if (record.audioQueued) {
      this.#o.playback.finish(record.turn.id);
    } else {
      this.#complete(record, 0);
    }
  }

  #fail(record: TurnRecord, reason: TurnFailure, message: string): void {
    if (record !== this.#current) return;
    if (reason === "timeout") this.stats.timeouts++;
    else this.stats.errors++;
    this.#o.log.warn("turn failed", {
      device: this.#o.device,
      turn: record.turn.id,
      reason,
      message,
    });
    const timestamp = new Date().toISOString();
    this.#o.publish(
      reason === "timeout"
        ? {
          type: "timeout",
          turn: record.turn.id,
          message,
          session_id: this.#o.sessionId,
          timestamp,
        }
        : {
          type: "error",
          turn: record.turn.id,
          message: `${reason}: ${message}`,
          session_id: this.#o.sessionId,
          timestamp,
        },
    );
    if (record.audioQueued) {
      this.#o.playback.finish(record.turn.id);
    } else {
      this.#current = undefined;
      this.#setState("listening");
    }
  }

  #complete(record: TurnRecord, playedMs: number): void {
    this.#current = undefined;
    const latency: Record<string, number> = {};
    if (record.lastSpeechAt !== undefined && record.endDetectedAt !== undefined) {
      latency.end_detect_ms = record.endDetectedAt - record.lastSpeechAt;
    }
    if (record.lastSpeechAt !== undefined && record.firstPacketAt !== undefined) {
      latency.first_reply_packet_ms = record.firstPacketAt - record.lastSpeechAt;
    }
    Object.assign(latency, serverLatency(record));
    const event: DeviceEvent = {
      type: "turn",
      turn: record.turn.id,
      played_ms: Math.round(playedMs),
      latency_ms: latency,
      session_id: this.#o.sessionId,
      timestamp: new Date().toISOString(),
    };
    if (record.transcript !== undefined) {
      event.transcript = record.transcript.slice(0, MAX_TEXT_CHARS);
    }
    if (record.reply !== undefined) event.reply = record.reply.slice(0, MAX_TEXT_CHARS);
    this.#o.publish(event);
    this.#setState("listening");
  }

  #setState(state: ConversationState, turn?: string): void {
    if (this.#state === state) return;
    this.#state = state;
    const event: DeviceEvent = {
      type: "state",
      state,
      session_id: this.#o.sessionId,
      timestamp: new Date().toISOString(),
    };
    if (turn !== undefined) event.turn = turn;
    this.#o.publish(event);
  }
}
