/**
 * What a device's conversation (conversation.ts) is made of: the small interfaces of its
 * collaborators (the AI turn, the AI link, the reply playback), the record it keeps per turn,
 * and the `turn` event that closes a turn with its latencies (spec 7.2).
 */
import { roundMs } from "../shared/audio.ts";
import { type DeviceEvent, MAX_TEXT_CHARS } from "../shared/messages.ts";
import type { SampleRate } from "../shared/frame_codec.ts";
import type { TurnHandlers } from "./ai_turn.ts";
import type { PlaybackListener } from "./playback.ts";

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
  /** The turn is final: the server applies its side effects. */
  commit(): void;
  /** A continuation took over (`nextContinued`: the server was told so). */
  supersede(nextContinued: boolean): void;
  /** True when the server was told this turn continues another. */
  readonly continued: boolean;
}

/** What the conversation needs of the AI link (ai_servers.ts `AiServers` is one). */
export interface TurnSource {
  readonly connected: boolean;
  startTurn(
    device: string,
    rate: SampleRate,
    handlers: TurnHandlers,
    options?: { continues?: ConversationTurn },
  ): ConversationTurn;
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
export type ConversationState =
  | "listening"
  | "user_speaking"
  | "thinking"
  | "waiting"
  | "replying";

/** What the conversation keeps of one turn. */
export interface TurnRecord {
  turn: ConversationTurn;
  /** The turn-taking machine's id of this turn. */
  local: string;
  /** Date.now() when the server said the turn runs after waiting in its queue. */
  runningAt?: number;
  /** Committed, cancelled or failed: nothing more to commit. */
  final?: boolean;
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

/** The `turn` event that closes `record` after `playedMs` of its reply (spec 7.2). */
export function turnEvent(record: TurnRecord, playedMs: number, sessionId: string): DeviceEvent {
  const latency: Record<string, number> = {};
  if (record.lastSpeechAt !== undefined && record.endDetectedAt !== undefined) {
    latency.end_detect_ms = record.endDetectedAt - record.lastSpeechAt;
  }
  if (record.lastSpeechAt !== undefined && record.firstPacketAt !== undefined) {
    latency.first_reply_packet_ms = record.firstPacketAt - record.lastSpeechAt;
  }
  Object.assign(latency, serverLatency(record));
  if (record.runningAt !== undefined && record.turn.endWrittenAt !== undefined) {
    latency.queue_wait_ms = Math.max(0, record.runningAt - record.turn.endWrittenAt);
  }
  const event: DeviceEvent = {
    type: "turn",
    turn: record.turn.id,
    played_ms: Math.round(playedMs),
    latency_ms: latency,
    session_id: sessionId,
    timestamp: new Date().toISOString(),
  };
  if (record.transcript !== undefined) {
    event.transcript = record.transcript.slice(0, MAX_TEXT_CHARS);
  }
  if (record.reply !== undefined) event.reply = record.reply.slice(0, MAX_TEXT_CHARS);
  return event;
}
