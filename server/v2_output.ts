/**
 * What one v2 connection sends to its gateway (docs/protocol.md): messages, a turn's reply as
 * text and audio chunks under their seq, the spoken notices ("one moment", the overload
 * apology) and, with `queue`, the `state` of a waiting turn. Shared by `v2_adapter.ts` and
 * `v2_turns.ts`.
 */
import { encodeV2, errorMessage, type SampleRate, type V2Message } from "../shared/frame_codec.ts";
import type { QueuePosition } from "./inference_queue.ts";
import type { NoticeKind } from "./notices.ts";
import { type ReplySink, sendChunked } from "./pipeline.ts";
import { watchQueuedTurn } from "./queue_updates.ts";
import type { ConnectionLink } from "./socket_link.ts";
import type { Turn } from "./v2_turn.ts";

/** See the module doc. */
export class V2Output {
  #link: ConnectionLink;
  #capabilities: ReadonlySet<string>;

  /** `capabilities`: the gateway's, filled in by its hello. */
  constructor(link: ConnectionLink, capabilities: ReadonlySet<string>) {
    this.#link = link;
    this.#capabilities = capabilities;
  }

  /** Encodes and queues `message`; one that cannot be encoded is logged, never thrown. */
  send(message: V2Message): void {
    try {
      this.#link.send(encodeV2(message, this.#link.settings.limits));
    } catch (error) {
      this.#link.settings.log?.error("cannot encode reply", {
        peer: this.#link.peer,
        type: message.type,
        error,
      });
    }
  }

  /** An error for `turn` (or the connection, without one). */
  error(turn: string | undefined, code: string, message: string): void {
    this.send(errorMessage(code, message, { turn }));
  }

  /** Sends a notice as the turn's next reply audio chunks (nothing without notices). */
  async speak(turn: Turn, kind: NoticeKind): Promise<void> {
    const notices = this.#link.settings.notices;
    if (notices === undefined) return;
    const pcm = await notices.speech(kind, turn.rate);
    // A "one moment" for a turn cancelled meanwhile is not said; the apology always is.
    if (!this.#link.open || (kind === "wait" && turn.controller.signal.aborted)) return;
    const audio = (chunk: Uint8Array, rate: number) => this.audio(turn, chunk, rate);
    sendChunked({ transcript: () => {}, reply: () => {}, audio }, pcm, turn.rate);
  }

  /** The turn must wait: with the `queue` capability, the gateway hears where it stands. */
  queued(turn: Turn, where: QueuePosition, now: () => QueuePosition | undefined): void {
    if (!this.#capabilities.has("queue")) return;
    turn.queueTimers = watchQueuedTurn({
      where,
      now,
      timing: this.#link.settings.queueTiming,
      queued: () => turn.phase === "queued" && !turn.controller.signal.aborted,
      state: (at) =>
        this.send({
          type: "state",
          turn: turn.id,
          state: "queued",
          position: at.position,
          wait_ms: Math.round(at.waitMs),
          ts: Date.now(),
        }),
      notice: () => turn.notice = this.speak(turn, "wait"),
    });
  }

  /** Where a running turn's text and audio go (nothing once it is cancelled or closed). */
  sink(turn: Turn): ReplySink {
    const live = () => this.#link.open && !turn.controller.signal.aborted;
    const text = (kind: "transcript" | "reply", value: string) => {
      if (live() && this.#capabilities.has("text")) {
        this.send({ type: "text", turn: turn.id, kind, ts: Date.now(), text: value });
      }
    };
    return {
      transcript: (value) => text("transcript", value),
      reply: (value) => text("reply", value),
      audio: (pcm, rate) => {
        if (live()) this.audio(turn, pcm, rate);
      },
    };
  }

  /** One chunk of the turn's reply audio, under its next seq. */
  audio(turn: Turn, pcm: Uint8Array, rate: number): void {
    const message = { type: "audio", turn: turn.id, seq: turn.outSeq++, ts: Date.now(), pcm };
    this.send({ ...message, type: "audio", rate: rate as SampleRate });
  }
}
