/**
 * The two wire protocols of the AI link as two adapters of one {@link AiProtocol} (spec 4.2,
 * docs/protocol.md); the connection and the turn ask the adapter, never the version:
 *
 * - **v2** ({@link V2_PROTOCOL}, default): hello exchange, pings; per turn `start`, `audio` in
 *   {@link AUDIO_CHUNK_MS} chunks while the user speaks, `pause` to a server that can
 *   `speculate`, `end`; `cancel` with `played_ms`. A copy of the audio is kept for a replay after
 *   an outage until the reply starts.
 * - **v1** ({@link V1_PROTOCOL}, `AI_SERVER_PROTOCOL=v1`): no handshake, no pings; the utterance
 *   is buffered and sent as one spec 4.2 frame at its end; the one response frame comes back as
 *   the turn's audio (if any) and end. Answers come strictly in order.
 *
 * @example
 * ```ts
 * const writer = V2_PROTOCOL.writer({ id, device, rate }, { send, serverCan });
 * writer.open(Date.now()); writer.audio(pcm); writer.flush(); writer.end(lastSpeechAt);
 * ```
 */
import {
  type Decoded,
  encodeV1,
  encodeV2,
  errorMessage,
  type FrameRequestMessage,
  type SampleRate,
  type StartMessage,
  type TurnCompletion,
  type TurnState,
  V2_CAPABILITIES,
} from "../shared/frame_codec.ts";
import { FrameFiller } from "../shared/media/frame_filler.ts";
import { UtteranceBuffer } from "./utterance_buffer.ts";

/** v2 audio goes out in 100 ms chunks: 5× fewer headers than per-frame, still streaming. */
export const AUDIO_CHUNK_MS = 100;
/** Capabilities this gateway announces and uses (v2 hello): every one the protocol defines. */
const CAPABILITIES: string[] = [...V2_CAPABILITIES];
/** Bytes per int16 sample. */
const BYTES_PER_SAMPLE = 2;

/** One item of a turn's reply, whatever the protocol. */
export type TurnReply =
  | { type: "audio"; pcm: Uint8Array; rate: SampleRate }
  | { type: "text"; kind: "transcript" | "reply"; text: string }
  | { type: "end"; stages?: Record<string, number> }
  | { type: "error"; code: string; message: string }
  /** The end-of-turn hint after a `pause` (capability `eot`). */
  | { type: "eot"; completion: TurnCompletion; silenceMs: number }
  /** Where the turn stands in the server's queue (capability `queue`). */
  | { type: "state"; state: TurnState; position?: number; waitMs?: number };

/** What one decoded server frame means to the connection. */
export type Inbound =
  | { kind: "hello"; capabilities: string[]; nonce?: string; proof?: string }
  | { kind: "ping"; id: number }
  | { kind: "pong"; id: number }
  | { kind: "turn"; turn: string; replies: TurnReply[] }
  | { kind: "error"; code: string; message: string }
  | { kind: "frame_request"; message: FrameRequestMessage }
  | { kind: "unexpected"; type: string };

/** Who a turn is. */
export interface TurnIdentity {
  id: string;
  device: string;
  /** Rate of the user audio (Hz). */
  rate: SampleRate;
  /**
   * The provisional turn this one continues (docs/protocol.md "Continuing a turn") and that
   * turn's whole request audio: a server with `continue` is told the id; any other peer gets
   * the audio first, so the merged request goes out as one plain turn (v1: one frame).
   * `whole`: the turn goes to a server that does not hold the earlier turn (it was on another
   * server, or on none), so the merged request goes out as one plain turn there too.
   */
  continues?: { id: string; pcm: Uint8Array; whole?: boolean };
}

/** Where a turn's writer sends, and what it may ask of the link (the AI client is one). */
export interface TurnOutput {
  /** Bytes to the server, in order; dropped while it is away. */
  send(bytes: Uint8Array): void;
  /** Whether the server announced `capability` in its hello (v2). */
  serverCan(capability: string): boolean;
}

/** One turn's messages as one protocol writes them. */
export interface TurnWriter {
  /** The turn opens (v2 `start`). */
  open(ts: number): void;
  /** User audio, int16 LE PCM at the turn's rate. */
  audio(pcm: Uint8Array): void;
  /** Sends the audio not yet sent (v2's partial chunk). */
  flush(): void;
  /** The user went quiet: `pause` to a server that can `speculate`; false when not supported. */
  pause(): boolean;
  /** The utterance ended at `lastSpeechAt` (ms): v2 `end`, v1 the whole frame. */
  end(lastSpeechAt: number): void;
  /**
   * After an outage: everything sent so far, again, on the new connection; `again`: whether
   * the turn may be replayed once more (else its copy is let go).
   */
  replay(startedAt: number, paused: boolean, again: boolean): void;
  /** Barge-in, hang-up or timeout: v2 `cancel` with what was played (ms). */
  cancel(playedMs: number): void;
  /** The turn can no longer be continued: v2 `commit` to a server with `continue`. */
  commit(): void;
  /**
   * True when the server was told the turn continues another (`start` with `continues`); that
   * turn then needs no `cancel`. False: the earlier turn's audio went out in this turn.
   */
  readonly continued: boolean;
  /** The first reply item came: the turn will not be replayed. */
  replyStarted(): void;
  /** Lets the buffers go. */
  close(): void;
}

/** One protocol version of the AI link; see the module doc. */
export interface AiProtocol {
  readonly name: "v1" | "v2";
  /** The frame codec's version for decoding. */
  readonly frameVersion: 1 | 2;
  /** True when the server answers strictly in order: a timed-out turn means it is stuck. */
  readonly inOrder: boolean;
  /**
   * The hello to send on connect (with `nonce` when authenticating), or undefined: the link is
   * ready at once.
   */
  hello(nonce?: string): Uint8Array | undefined;
  /** True when the link is kept alive with pings. */
  readonly pings: boolean;
  /** A ping with `id`. */
  ping(id: number): Uint8Array;
  /** The answer to the server's ping. */
  pong(id: number): Uint8Array;
  /** What to say about an undecodable frame before closing, if anything. */
  badFrame(message: string): Uint8Array | undefined;
  /** What a decoded frame means. */
  route(item: Decoded): Inbound;
  /** The writer of one turn. */
  writer(turn: TurnIdentity, out: TurnOutput): TurnWriter;
}

/** v2: streamed turns; see the module doc. */
export const V2_PROTOCOL: AiProtocol = {
  name: "v2",
  frameVersion: 2,
  inOrder: false,
  pings: true,
  hello: (nonce) =>
    encodeV2({
      type: "hello",
      version: 2,
      role: "gateway",
      capabilities: CAPABILITIES,
      ts: Date.now(),
      ...(nonce === undefined ? {} : { nonce }),
    }),
  ping: (id) => encodeV2({ type: "ping", id, ts: Date.now() }),
  pong: (id) => encodeV2({ type: "pong", id, ts: Date.now() }),
  // docs/protocol.md: answer undecodable input with `bad_frame`, then close.
  badFrame: (message) => encodeV2(errorMessage("bad_frame", message)),
  route(item: Decoded): Inbound {
    if (item.version !== 2) return { kind: "unexpected", type: "v1 frame" };
    const m = item.message;
    switch (m.type) {
      case "hello":
        return { kind: "hello", capabilities: m.capabilities, nonce: m.nonce, proof: m.proof };
      case "ping":
        return { kind: "ping", id: m.id };
      case "pong":
        return { kind: "pong", id: m.id };
      case "error":
        if (m.turn === undefined) return { kind: "error", code: m.code, message: m.message };
        return { kind: "turn", turn: m.turn, replies: [m] };
      case "audio":
      case "text":
      case "end":
        return { kind: "turn", turn: m.turn, replies: [m] };
      case "eot":
        return {
          kind: "turn",
          turn: m.turn,
          replies: [{ type: "eot", completion: m.completion, silenceMs: m.silence_ms }],
        };
      case "state": {
        const reply: TurnReply = { type: "state", state: m.state };
        if (m.position !== undefined) reply.position = m.position;
        if (m.wait_ms !== undefined) reply.waitMs = m.wait_ms;
        return { kind: "turn", turn: m.turn, replies: [reply] };
      }
      case "frame_request": // Camera frames (docs/video.md).
        return { kind: "frame_request", message: m };
      default:
        return { kind: "unexpected", type: m.type };
    }
  },
  writer: (turn, out) => new V2TurnWriter(turn, out),
};

/** v1: one frame per utterance, one per response; see the module doc. */
export const V1_PROTOCOL: AiProtocol = {
  name: "v1",
  frameVersion: 1,
  inOrder: true,
  pings: false,
  hello: () => undefined,
  ping: () => new Uint8Array(0),
  pong: () => new Uint8Array(0),
  badFrame: () => undefined,
  route(item: Decoded): Inbound {
    if (item.version !== 1) return { kind: "unexpected", type: item.message.type };
    const { frame } = item;
    const replies: TurnReply[] = [];
    if (frame.pcm.length > 0) replies.push({ type: "audio", pcm: frame.pcm, rate: frame.rate });
    replies.push({ type: "end" });
    return { kind: "turn", turn: frame.request, replies };
  },
  writer: (turn, out) => new V1TurnWriter(turn, out),
};

/** The adapter of a protocol name. */
export function aiProtocol(name: "v1" | "v2"): AiProtocol {
  return name === "v1" ? V1_PROTOCOL : V2_PROTOCOL;
}

class V2TurnWriter implements TurnWriter {
  #turn: TurnIdentity;
  #out: TurnOutput;
  #chunks: FrameFiller<Uint8Array>;
  #seq = 0;
  /** Everything sent, for a replay after an outage; let go once the reply starts. */
  #sent: UtteranceBuffer;
  /** Whether audio is still copied into {@link #sent}. */
  #copying = true;
  #continued = false;
  /** The earlier turn's audio went out as this turn's, so {@link #sent} holds it too. */
  #earlierInSent = false;
  /** A `start` went out (open or replay) at least once. */
  #opened = false;

  constructor(turn: TurnIdentity, out: TurnOutput) {
    this.#turn = turn;
    this.#out = out;
    const chunk = new Uint8Array(((turn.rate * AUDIO_CHUNK_MS) / 1000) * BYTES_PER_SAMPLE);
    this.#chunks = new FrameFiller<Uint8Array>(chunk, (full) => this.#sendAudio(full));
    this.#sent = new UtteranceBuffer(turn.rate);
  }

  get continued(): boolean {
    return this.#continued;
  }

  open(ts: number): void {
    this.#opened = true;
    const { id, device, rate, continues } = this.#turn;
    const start: StartMessage = { type: "start", turn: id, device, rate, ts };
    if (continues !== undefined && !continues.whole && this.#out.serverCan("continue")) {
      start.continues = continues.id;
      this.#continued = true;
      this.#out.send(encodeV2(start));
      return;
    }
    // No `continue` (or a replay on a new connection, where the earlier turn is unknown): the
    // earlier part's audio goes out first, as this turn's.
    this.#continued = false;
    this.#out.send(encodeV2(start));
    if (continues !== undefined && continues.pcm.length > 0) {
      this.#earlierInSent = true;
      this.audio(continues.pcm);
    }
  }

  audio(pcm: Uint8Array): void {
    this.#chunks.push(pcm);
  }

  flush(): void {
    if (this.#chunks.fill > 0) this.#sendAudio(this.#chunks.take());
  }

  pause(): boolean {
    if (!this.#out.serverCan("speculate")) return false;
    this.flush();
    this.#out.send(encodeV2({ type: "pause", turn: this.#turn.id, ts: Date.now() }));
    return true;
  }

  end(lastSpeechAt: number): void {
    this.#out.send(encodeV2({ type: "end", turn: this.#turn.id, ts: lastSpeechAt }));
  }

  replay(startedAt: number, paused: boolean, again: boolean): void {
    const { id, device, rate, continues } = this.#turn;
    const start: StartMessage = { type: "start", turn: id, device, rate, ts: startedAt };
    // Never sent before (held from its start in an outage) and back on the earlier turn's
    // server: the earlier turn waits there uncommitted, so this one names it. A server that
    // lost it answers unknown_turn, and the whole request goes out then (ai_turn.ts).
    const continuing = !this.#opened && continues !== undefined && !continues.whole &&
      this.#out.serverCan("continue");
    this.#opened = true;
    if (continuing) start.continues = continues.id;
    this.#out.send(encodeV2(start));
    this.#seq = 0;
    if (continuing) {
      this.#continued = true;
      const own = this.#sent.view();
      if (own.length > 0) this.#out.send(this.#audioMessage(own));
      if (paused) this.#out.send(encodeV2({ type: "pause", turn: this.#turn.id, ts: Date.now() }));
      return;
    }
    // The server may not know the earlier turn: the whole request goes out as this one. Its
    // audio is not in the copy when the server was told `continues`, or when the turn never
    // opened (held from its start during an outage).
    if (!this.#earlierInSent && continues !== undefined && continues.pcm.length > 0) {
      this.#out.send(this.#audioMessage(continues.pcm));
    }
    this.#continued = false;
    const pcm = this.#sent.view();
    if (pcm.length > 0) this.#out.send(this.#audioMessage(pcm));
    if (paused) this.#out.send(encodeV2({ type: "pause", turn: this.#turn.id, ts: Date.now() }));
    if (again) return;
    // No further replay: a second outage fails the turn, so the copy is no longer needed.
    this.#copying = false;
    this.#sent.clear();
  }

  cancel(playedMs: number): void {
    if (!this.#out.serverCan("cancel")) return;
    this.#out.send(encodeV2({
      type: "cancel",
      turn: this.#turn.id,
      ts: Date.now(),
      played_ms: Math.round(playedMs),
    }));
  }

  commit(): void {
    if (!this.#out.serverCan("continue")) return;
    this.#out.send(encodeV2({ type: "commit", turn: this.#turn.id, ts: Date.now() }));
  }

  replyStarted(): void {
    this.#copying = false;
    this.#sent.clear();
  }

  close(): void {
    this.#copying = false;
    this.#sent.clear();
  }

  #sendAudio(pcm: Uint8Array): void {
    if (this.#copying) this.#sent.append(pcm);
    this.#out.send(this.#audioMessage(pcm));
  }

  #audioMessage(pcm: Uint8Array): Uint8Array {
    const { id: turn, rate } = this.#turn;
    return encodeV2({ type: "audio", turn, seq: this.#seq++, rate, ts: Date.now(), pcm });
  }
}

class V1TurnWriter implements TurnWriter {
  #turn: TurnIdentity;
  #out: TurnOutput;
  /** The whole utterance, sent as one frame at its end (and again after an outage). */
  #pcm: UtteranceBuffer;

  constructor(turn: TurnIdentity, out: TurnOutput) {
    this.#turn = turn;
    this.#out = out;
    this.#pcm = new UtteranceBuffer(turn.rate);
    // A continuation's frame starts with the earlier part: v1 gets the merged utterance.
    if (turn.continues !== undefined) this.#pcm.append(turn.continues.pcm);
  }

  readonly continued = false;

  open(): void {}

  audio(pcm: Uint8Array): void {
    this.#pcm.append(pcm);
  }

  flush(): void {}

  pause(): boolean {
    return false;
  }

  end(): void {
    const { id: request, device, rate } = this.#turn;
    this.#out.send(encodeV1({ device, rate, request, pcm: this.#pcm.view() }));
  }

  /** The frame goes again at the end, which the turn sends after the replay. */
  replay(): void {}

  cancel(): void {}

  commit(): void {}

  replyStarted(): void {}

  close(): void {
    this.#pcm.clear();
  }
}
