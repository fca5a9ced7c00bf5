/**
 * What a device's conversation (conversation.ts) is made of: the small interfaces of its
 * collaborators (the AI turn, the AI link, the reply playback) and the record it keeps per turn.
 * The events it publishes are in conversation_events.ts.
 */
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
  /** Played ms of a reply that drained while the turn could still be continued: its event waits. */
  playedMs?: number;
}
