/**
 * A session worker (docs/scaling.md "Every core of the gateway"): a Deno Worker holding some of
 * the gateway's {@link DeviceSession}s, each with its werift peer, Opus, VAD and playback, on its
 * own 20 ms playback clock. MQTT and the AI links stay on the main thread (session_workers.ts):
 * signaling arrives and leaves as messages (session_messages.ts), and each turn is a
 * {@link WorkerTurn} whose calls go to the main thread's AI link and whose replies come back.
 */
/// <reference lib="deno.worker" />
import type { SampleRate } from "../shared/frame_codec.ts";
import { createLogger } from "../shared/log.ts";
import { peerConfig } from "../shared/media/webrtc.ts";
import type { TurnHandlers } from "./ai_turn.ts";
import type { ConversationTurn, TurnSource } from "./conversation_parts.ts";
import { DeviceSession } from "./device_session.ts";
import { PlaybackClock } from "./playback.ts";
import type { FromWorker, ReplyItem, ToWorker, TurnCall, WorkerInit } from "./session_messages.ts";
import { EnergyModel, SileroModel, SileroSession, type VoiceModel } from "./vad.ts";

function post(message: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(message, transfer);
}

/** One turn of a session in this worker; the AI link on the main thread does the work. */
class WorkerTurn implements ConversationTurn {
  readonly id: string;
  done = false;
  ended = false;
  endWrittenAt: number | undefined;
  readonly handlers: TurnHandlers;

  constructor(id: string, handlers: TurnHandlers) {
    this.id = id;
    this.handlers = handlers;
  }

  #call(call: TurnCall, transfer: Transferable[] = []): void {
    post({ type: "turn", turn: this.id, call }, transfer);
  }

  audio(pcm: Uint8Array): void {
    if (this.ended || this.done) return;
    // The caller reuses its buffer: send a copy, transferred.
    const copy = pcm.slice();
    this.#call({ op: "audio", pcm: copy }, [copy.buffer]);
  }
  pause(): void {
    this.#call({ op: "pause" });
  }
  resume(): void {
    this.#call({ op: "resume" });
  }
  end(lastSpeechAt: number): void {
    if (this.ended || this.done) return;
    this.ended = true;
    this.endWrittenAt = Date.now();
    this.#call({ op: "end", lastSpeechAt });
  }
  cancel(playedMs: number): void {
    if (this.done) return;
    this.done = true;
    this.#call({ op: "cancel", playedMs });
    turns.delete(this.id);
  }
  /** The turn is final (the main thread's AI link sends `commit`). */
  commit(): void {
    this.#call({ op: "commit" });
  }
  /** Known on the main thread only; this side's {@link supersede} does not need it. */
  readonly continued = false;
  /**
   * A turn continuing this one started (its start call named this one): the main thread has
   * superseded its side already, with the server's own answer to whether it continues. Here the
   * turn is over and its late replies are dropped.
   */
  supersede(_nextContinued: boolean): void {
    this.done = true;
    turns.delete(this.id);
  }

  receive(item: ReplyItem, endWrittenAt: number | undefined): void {
    if (this.done) return;
    if (endWrittenAt !== undefined) this.endWrittenAt = endWrittenAt;
    switch (item.kind) {
      case "audio":
        return this.handlers.audio?.(item.pcm, item.rate);
      case "text":
        return this.handlers.text?.(item.text, item.value);
      case "end":
        this.done = true;
        turns.delete(this.id);
        return this.handlers.end(item.stages);
      case "fail":
        this.done = true;
        turns.delete(this.id);
        return this.handlers.fail(item.reason, item.message);
      case "eot":
        return this.handlers.eot?.(item.completion, item.silenceMs);
      case "state":
        return this.handlers.state?.(item.state, item.position, item.waitMs);
    }
  }
}

const turns = new Map<string, WorkerTurn>();
const sessions = new Map<string, DeviceSession>();
let init: WorkerInit | undefined;
let clock: PlaybackClock | undefined;
let silero: SileroSession | undefined;
let aiConnected = false;
let longTurns = false;
let nextTurn = 1;
let metricsTimer: ReturnType<typeof setInterval> | undefined;

const ai: TurnSource = {
  get connected() {
    return aiConnected;
  },
  startTurn(
    device: string,
    rate: SampleRate,
    handlers: TurnHandlers,
    options?: { continues?: ConversationTurn },
  ): ConversationTurn {
    const id = `${init!.turnPrefix}${nextTurn++}`;
    const turn = new WorkerTurn(id, handlers);
    turns.set(id, turn);
    const continues = options?.continues?.id;
    const sessionId = sessions.get(device)?.sessionId ?? "";
    post({ type: "turn", turn: id, call: { op: "start", device, sessionId, rate, continues } });
    return turn;
  },
};

async function start(options: WorkerInit): Promise<void> {
  init = options;
  const log = (component: string) => createLogger(component, { level: options.logLevel });
  if (options.vad.sileroPath) silero = await SileroSession.load(options.vad.sileroPath);
  clock = new PlaybackClock({
    onError: (error) => log("gateway.worker").error("playback frame failed", { error }),
  });
  const sessionLog = log("gateway.session");
  const peer = peerConfig(options.peer);
  const model = (): VoiceModel =>
    silero ? new SileroModel(silero) : new EnergyModel({ threshold: options.vad.threshold || 1 });
  open = (device, sessionId, echoCancellation) => {
    sessions.get(device)?.close("replaced");
    const session = new DeviceSession({
      device,
      sessionId,
      peer,
      signal: {
        offer: (sdp) => post({ type: "offer", device, sessionId, sdp }),
        ice: (candidate) => post({ type: "ice", device, candidate }),
      },
      ai,
      clock: clock!,
      model: model(),
      audio: options.audio,
      longTurns: () => longTurns,
      echoCancellation,
      publishEvent: (event) => post({ type: "event", device, event }),
      onClosed: (closed, reason) => {
        if (sessions.get(closed.device) === closed) sessions.delete(closed.device);
        post({ type: "closed", device, sessionId: closed.sessionId, reason });
      },
      log: sessionLog,
    });
    sessions.set(device, session);
    session.start().catch((error) => {
      sessionLog.error("offer failed", { device, error });
      session.close("error");
    });
  };
  metricsTimer = setInterval(() => {
    const states: Record<
      string,
      { alive: boolean; metrics: ReturnType<DeviceSession["metrics"]> }
    > = {};
    for (const [device, session] of sessions) {
      states[device] = { alive: session.alive, metrics: session.metrics() };
    }
    post({
      type: "metrics",
      sessions: states,
      playback: clock!.takeStats(),
      silero: { runs: silero?.runs ?? 0, totalMs: silero?.totalMs ?? 0 },
    });
  }, options.metricsMs);
  post({ type: "ready" });
}

let open: (device: string, sessionId: string, echoCancellation: boolean) => void = () => {};

function current(device: string, sessionId: string): DeviceSession | undefined {
  const session = sessions.get(device);
  return session && session.sessionId === sessionId ? session : undefined;
}

async function shutdown(): Promise<void> {
  clearInterval(metricsTimer);
  for (const session of [...sessions.values()]) session.close("shutdown");
  clock?.stop();
  await silero?.close();
  self.close();
}

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  try {
    switch (message.type) {
      case "init":
        start(message).catch((error) => post({ type: "failed", message: String(error) }));
        return;
      case "open":
        return open(message.device, message.sessionId, message.echoCancellation);
      case "answer":
        void current(message.device, message.sessionId)?.applyAnswer(message.sdp).catch(() => {});
        return;
      case "ice":
        void current(message.device, message.candidate.session_id)?.addCandidate(message.candidate)
          .catch(() => {});
        return;
      case "announce":
        sessions.get(message.device)?.announce();
        return;
      case "close":
        current(message.device, message.sessionId)?.close(message.reason);
        return;
      case "ai":
        aiConnected = message.connected;
        longTurns = message.longTurns;
        return;
      case "reply":
        turns.get(message.turn)?.receive(message.item, message.endWrittenAt);
        return;
      case "shutdown":
        void shutdown();
        return;
    }
  } catch (error) {
    post({ type: "failed", message: `${message.type}: ${String(error)}` });
  }
};
