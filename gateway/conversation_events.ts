/**
 * What a device's conversation (conversation.ts) tells the device's events topic
 * `naila/devices/{id}/events` (spec 7.2), and the log lines that go with it: `state` events
 * (listening, user_speaking, thinking, waiting, replying), `interrupted` after a barge-in with how
 * much of the reply the user heard, `timeout` / `error` for a failed turn, and the `turn` event
 * that closes a turn with its transcript, reply text and latencies.
 *
 * @example
 * ```ts
 * const events = new ConversationEvents({ device, sessionId, publish, log });
 * events.setState("user_speaking", turn.id);
 * events.interrupted(turn.id, 1200);
 * ```
 */
import { roundMs } from "../shared/audio.ts";
import type { Logger } from "../shared/log.ts";
import { type DeviceEvent, MAX_TEXT_CHARS } from "../shared/messages.ts";
import type { TurnFailure } from "./ai_turn.ts";
import type { ConversationState, TurnRecord } from "./conversation_parts.ts";

/** Where and for whom a {@link ConversationEvents} publishes. */
export interface ConversationEventsOptions {
  device: string;
  sessionId: string;
  publish(event: DeviceEvent): void;
  log: Logger;
}

/** See the module doc. */
export class ConversationEvents {
  #o: ConversationEventsOptions;
  #state: ConversationState = "listening";

  constructor(options: ConversationEventsOptions) {
    this.#o = options;
  }

  /** The state last published (`listening` at start). */
  get state(): ConversationState {
    return this.#state;
  }

  /**
   * Publishes a `state` event when the state changes (`waiting` every time: its position moves),
   * with `turn` and `extra` fields (`position`, `wait_ms`) if given.
   */
  setState(state: ConversationState, turn?: string, extra: Record<string, number> = {}): void {
    if (this.#state === state && state !== "waiting") return;
    this.#state = state;
    const event: DeviceEvent = {
      type: "state",
      state,
      ...extra,
      session_id: this.#o.sessionId,
      timestamp: new Date().toISOString(),
    };
    if (turn !== undefined) event.turn = turn;
    this.#o.publish(event);
  }

  /** The server's queue (`state`): `waiting` while queued (position, wait), `thinking` once it runs. */
  queue(turn: string, state: string, position?: number, waitMs?: number): void {
    if (state === "running") return this.setState("thinking", turn);
    const extra: Record<string, number> = {};
    if (position !== undefined) extra.position = position;
    if (waitMs !== undefined) extra.wait_ms = Math.round(waitMs);
    this.setState("waiting", turn, extra);
  }

  /** A barge-in on `turn` after `playedMs` of its reply: logged, and `interrupted` published. */
  interrupted(turn: string, playedMs: number): void {
    this.#o.log.info("barge-in", {
      device: this.#o.device,
      turn,
      played_ms: playedMs,
    });
    this.#o.publish({
      type: "interrupted",
      turn,
      played_ms: Math.round(playedMs),
      session_id: this.#o.sessionId,
      timestamp: new Date().toISOString(),
    });
  }

  /** A failed turn: logged, and published as `timeout` or as `error` naming the reason. */
  failed(turn: string, reason: TurnFailure, message: string): void {
    this.#o.log.warn("turn failed", {
      device: this.#o.device,
      turn,
      reason,
      message,
    });
    const timestamp = new Date().toISOString();
    this.#o.publish(
      reason === "timeout"
        ? {
          type: "timeout",
          turn,
          message,
          session_id: this.#o.sessionId,
          timestamp,
        }
        : {
          type: "error",
          turn,
          message: `${reason}: ${message}`,
          session_id: this.#o.sessionId,
          timestamp,
        },
    );
  }

  /** Publishes the `turn` event that closes `record` after `playedMs` of its reply. */
  turn(record: TurnRecord, playedMs: number): void {
    this.#o.publish(turnEvent(record, playedMs, this.#o.sessionId));
  }
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
