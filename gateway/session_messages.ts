/**
 * The messages between the gateway's main thread and its session workers (session_workers.ts,
 * session_worker.ts; docs/scaling.md "Every core of the gateway"). Plain structured-cloneable
 * objects; PCM travels as `Uint8Array` (int16 LE) whose buffer is transferred.
 */
import type { SampleRate, TurnCompletion, TurnState } from "../shared/frame_codec.ts";
import type { LogLevel } from "../shared/log.ts";
import type { DeviceEvent, IceCandidate } from "../shared/messages.ts";
import type { IceServer } from "../shared/config.ts";
import type { TurnFailure } from "./ai_turn.ts";
import type { CloseReason, DeviceSessionOptions, SessionMetrics } from "./device_session.ts";

/** What a worker is started with. */
export interface WorkerInit {
  type: "init";
  /** Prefix of the turn ids this worker makes (unique per gateway and worker). */
  turnPrefix: string;
  peer: { iceServers: IceServer[]; hostAddresses: string[] };
  /** The sessions' audio settings, as the main thread's own sessions get them. */
  audio: DeviceSessionOptions["audio"];
  /** Silero model path, or undefined for the energy VAD at `threshold`. */
  vad: { sileroPath?: string; threshold: number };
  logLevel: LogLevel;
  /** How often the worker sends its metrics and session states (ms). */
  metricsMs: number;
}

/** One reply item of a turn, main → worker. */
export type ReplyItem =
  | { kind: "audio"; pcm: Uint8Array; rate: SampleRate }
  | { kind: "text"; text: "transcript" | "reply"; value: string }
  | { kind: "end"; stages?: Record<string, number> }
  | { kind: "fail"; reason: TurnFailure; message: string }
  /** The server's end-of-turn hint after a pause (`silenceMs` in ms). */
  | { kind: "eot"; completion: TurnCompletion; silenceMs: number }
  /** Where the turn stands in the server's queue (`waitMs` in ms). */
  | { kind: "state"; state: TurnState; position?: number; waitMs?: number };

/** Main thread → worker. */
export type ToWorker =
  | WorkerInit
  /** `echoCancellation`: the device's status said it cancels its own echo (no echo guard). */
  | { type: "open"; device: string; sessionId: string; echoCancellation: boolean }
  | { type: "answer"; device: string; sessionId: string; sdp: string }
  | { type: "ice"; device: string; candidate: IceCandidate }
  | { type: "announce"; device: string }
  | { type: "close"; device: string; sessionId: string; reason: CloseReason }
  /** The AI link's state: connected, and whether its servers take turns over 30 s. */
  | { type: "ai"; connected: boolean; longTurns: boolean }
  | { type: "reply"; turn: string; item: ReplyItem; endWrittenAt?: number }
  | { type: "shutdown" };

/** One call of a turn, worker → main. */
export type TurnCall =
  /**
   * `continues`: the id of the session's provisional turn this one continues (docs/protocol.md
   * "Continuing a turn"); the main thread supersedes that turn itself, knowing whether the server
   * was told. `sessionId`: the session that opened it (its finished turns are forgotten when it
   * closes, replaced or not).
   */
  | { op: "start"; device: string; sessionId: string; rate: SampleRate; continues?: string }
  | { op: "audio"; pcm: Uint8Array }
  | { op: "pause" }
  | { op: "resume" }
  | { op: "end"; lastSpeechAt: number }
  | { op: "cancel"; playedMs: number }
  | { op: "commit" };

/** Worker → main thread. */
export type FromWorker =
  | { type: "ready" }
  | { type: "offer"; device: string; sessionId: string; sdp: string }
  | { type: "ice"; device: string; candidate: IceCandidate }
  | { type: "event"; device: string; event: DeviceEvent }
  | { type: "closed"; device: string; sessionId: string; reason: CloseReason }
  | { type: "turn"; turn: string; call: TurnCall }
  | {
    type: "metrics";
    sessions: Record<string, { alive: boolean; metrics: SessionMetrics }>;
    playback: { ticks: number; lateTicks: number; stalls: number; maxLateMs: number };
    silero: { runs: number; totalMs: number };
  }
  | { type: "failed"; message: string };
