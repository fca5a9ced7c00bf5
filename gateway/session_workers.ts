/**
 * Device sessions spread over worker threads (`GATEWAY_WORKERS`, docs/scaling.md "Every core of
 * the gateway"): the main thread keeps MQTT, the membership, the AI links and the metrics; each
 * of N workers (session_worker.ts) holds the sessions of the devices given to it (the one with the
 * fewest sessions gets a new device), with their own werift peers, Opus, VAD and playback clock.
 *
 * A {@link RemoteSession} stands for a session in a worker with the few calls gateway.ts makes;
 * its state and metrics are those the worker last sent (every `metricsMs`). A worker's turn calls
 * go to the main thread's {@link AiServers} under the id the worker made (unique per worker), and
 * the replies go back to that worker.
 *
 * @example
 * ```ts
 * const workers = await SessionWorkers.start(2, init, { ai, signal, onClosed, log });
 * const session = workers.open("kitchen", "s1"); await session.start();
 * ```
 */
import type { Logger } from "../shared/log.ts";
import type { DeviceEvent, IceCandidate } from "../shared/messages.ts";
import type { Turn } from "./ai_turn.ts";
import type { AiServers } from "./ai_servers.ts";
import type { ClockStats } from "../shared/media/frame_clock.ts";
import { ClockStatsSum } from "./clock_stats_sum.ts";
import type { CloseReason, SessionMetrics } from "./device_session.ts";
import type { FromWorker, ReplyItem, ToWorker, WorkerInit } from "./session_messages.ts";
import { LONG_TURN_CAPABILITY } from "./utterance_segmenter.ts";

/**
 * How often the workers are told whether the AI link is up and takes long turns (ms): a turn
 * start checks it.
 */
const AI_STATE_POLL_MS = 100;
/** A worker that is not ready this long after start failed to load (Silero, werift) (ms). */
const WORKER_START_TIMEOUT_MS = 30_000;

/** Where the workers' signaling and events go (gateway.ts's MQTT side). */
export interface WorkerOutputs {
  offer(device: string, sessionId: string, sdp: string): void;
  ice(device: string, candidate: IceCandidate): void;
  event(device: string, event: DeviceEvent): void;
  /** A session ended in its worker. */
  closed(session: RemoteSession, reason: CloseReason): void;
}

/** A device session held by a worker; the calls gateway.ts makes of a `DeviceSession`. */
export class RemoteSession {
  readonly device: string;
  readonly sessionId: string;
  readonly #echoCancellation: boolean;
  #worker: WorkerLink;
  #closed = false;
  /** From the worker's last metrics; alive until it says otherwise. */
  state: { alive: boolean; metrics: SessionMetrics | undefined } = {
    alive: true,
    metrics: undefined,
  };

  constructor(worker: WorkerLink, device: string, sessionId: string, echoCancellation: boolean) {
    this.#worker = worker;
    this.device = device;
    this.sessionId = sessionId;
    this.#echoCancellation = echoCancellation;
  }

  get worker(): WorkerLink {
    return this.#worker;
  }

  get alive(): boolean {
    return !this.#closed && this.state.alive;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Makes the session in its worker, which offers. */
  start(): Promise<void> {
    this.#worker.post({
      type: "open",
      device: this.device,
      sessionId: this.sessionId,
      echoCancellation: this.#echoCancellation,
    });
    return Promise.resolve();
  }

  applyAnswer(sdp: string): Promise<void> {
    this.#worker.post({ type: "answer", device: this.device, sessionId: this.sessionId, sdp });
    return Promise.resolve();
  }

  addCandidate(candidate: IceCandidate): Promise<void> {
    this.#worker.post({ type: "ice", device: this.device, candidate });
    return Promise.resolve();
  }

  announce(): boolean {
    this.#worker.post({ type: "announce", device: this.device });
    return true;
  }

  close(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.post({
      type: "close",
      device: this.device,
      sessionId: this.sessionId,
      reason,
    });
  }

  /** Marks it closed (the worker closed it). */
  ended(): void {
    this.#closed = true;
  }

  metrics(): SessionMetrics {
    return this.state.metrics ?? {
      session_id: this.sessionId,
      connection: "new",
      packets_in: 0,
      packets_out: 0,
      lost: 0,
      late: 0,
      concealed: 0,
      undecodable: 0,
      jitter_ms: 0,
      vad_state: "quiet",
      conversation: "idle",
      utterances: 0,
      turns: 0,
      interruptions: 0,
      timeouts: 0,
      reorder_depth_ms: 0,
      stalls: 0,
      silence_ms: 0,
      echo_frames: 0,
    };
  }
}

/** One worker thread and what it holds. */
class WorkerLink {
  readonly worker: Worker;
  readonly sessions = new Map<string, RemoteSession>();
  constructor(worker: Worker) {
    this.worker = worker;
  }
  post(message: ToWorker, transfer: Transferable[] = []): void {
    this.worker.postMessage(message, transfer);
  }
}

/** See the module doc. */
export class SessionWorkers {
  #links: WorkerLink[];
  #ai: AiServers;
  #out: WorkerOutputs;
  #log: Logger;
  #turns = new Map<string, Turn>();
  /** The session each of {@link #turns} belongs to (its id). */
  #turnSessions = new Map<string, string>();
  #playback = new ClockStatsSum();
  #silero = new Map<WorkerLink, { runs: number; totalMs: number }>();
  #aiTimer: ReturnType<typeof setInterval>;
  #aiState = { connected: false, longTurns: false };

  private constructor(links: WorkerLink[], ai: AiServers, out: WorkerOutputs, log: Logger) {
    this.#links = links;
    this.#ai = ai;
    this.#out = out;
    this.#log = log;
    this.#aiTimer = setInterval(() => {
      const state = { connected: ai.connected, longTurns: ai.serverCan(LONG_TURN_CAPABILITY) };
      if (
        state.connected === this.#aiState.connected && state.longTurns === this.#aiState.longTurns
      ) return;
      this.#aiState = state;
      for (const link of links) link.post({ type: "ai", ...state });
    }, AI_STATE_POLL_MS);
  }

  /** Starts `count` workers and waits until each is ready; throws if one fails to start. */
  static async start(
    count: number,
    init: Omit<WorkerInit, "type" | "turnPrefix">,
    deps: { ai: AiServers; out: WorkerOutputs; log: Logger; turnPrefix: string },
  ): Promise<SessionWorkers> {
    const links: WorkerLink[] = [];
    const ready: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const worker = new Worker(new URL("./session_worker.ts", import.meta.url), {
        type: "module",
      });
      const link = new WorkerLink(worker);
      links.push(link);
      ready.push(
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`session worker ${i} not ready`)),
            WORKER_START_TIMEOUT_MS,
          );
          worker.addEventListener("message", function first(event: MessageEvent<FromWorker>) {
            if (event.data.type !== "ready" && event.data.type !== "failed") return;
            clearTimeout(timer);
            worker.removeEventListener("message", first);
            if (event.data.type === "ready") resolve();
            else reject(new Error(`session worker ${i} failed: ${event.data.message}`));
          });
        }),
      );
      link.post({ type: "init", turnPrefix: `${deps.turnPrefix}w${i}n`, ...init });
    }
    const workers = new SessionWorkers(links, deps.ai, deps.out, deps.log);
    for (const link of links) {
      link.worker.addEventListener("message", (event: MessageEvent<FromWorker>) => {
        try {
          workers.#receive(link, event.data);
        } catch (error) {
          deps.log.error("session worker message failed", { error });
        }
      });
    }
    try {
      await Promise.all(ready);
    } catch (error) {
      workers.close();
      throw error;
    }
    return workers;
  }

  /**
   * A new session for `device` in the worker with the fewest sessions (or its current one);
   * `echoCancellation`: the device cancels its own echo (no echo guard).
   */
  open(device: string, sessionId: string, echoCancellation = false): RemoteSession {
    const link = this.#links.find((l) => l.sessions.has(device)) ??
      this.#links.reduce((a, b) => (b.sessions.size < a.sessions.size ? b : a));
    const session = new RemoteSession(link, device, sessionId, echoCancellation);
    link.sessions.set(device, session);
    return session;
  }

  /**
   * The workers' playback clocks as one (cumulative counters, worst lateness since the last
   * call), with `own`, the main thread's clock (its sessions: cameras), when given.
   */
  takeStats(own?: ClockStats): ClockStats {
    if (own) this.#playback.report(this, own);
    return this.#playback.take();
  }

  /** Silero windows run and their total time (ms), over all workers. */
  get silero(): { runs: number; totalMs: number } {
    let runs = 0, totalMs = 0;
    for (const s of this.#silero.values()) {
      runs += s.runs;
      totalMs += s.totalMs;
    }
    return { runs, totalMs };
  }

  /** Closes every session and stops the workers. */
  close(): void {
    clearInterval(this.#aiTimer);
    for (const link of this.#links) {
      link.post({ type: "shutdown" });
      // The worker closes itself after its sessions; terminate after a moment regardless.
      setTimeout(() => link.worker.terminate(), 1000);
    }
    for (const turn of this.#turns.values()) turn.cancel(0);
    this.#turns.clear();
    this.#turnSessions.clear();
  }

  /** The turn's worker is done with it (committed, cancelled, superseded, failed, closed). */
  #forget(id: string): void {
    this.#turns.delete(id);
    this.#turnSessions.delete(id);
  }

  #receive(link: WorkerLink, message: FromWorker): void {
    switch (message.type) {
      case "offer":
        return this.#out.offer(message.device, message.sessionId, message.sdp);
      case "ice":
        return this.#out.ice(message.device, message.candidate);
      case "event":
        return this.#out.event(message.device, message.event);
      case "closed": {
        // Its open turns were cancelled by the worker; forget the finished ones never committed,
        // also when a new session replaced it.
        for (const [id, turn] of this.#turns) {
          if (turn.done && this.#turnSessions.get(id) === message.sessionId) this.#forget(id);
        }
        const session = link.sessions.get(message.device);
        if (!session || session.sessionId !== message.sessionId) return;
        link.sessions.delete(message.device);
        session.ended();
        return this.#out.closed(session, message.reason);
      }
      case "turn":
        return this.#turnCall(link, message.turn, message.call);
      case "metrics": {
        for (const [device, state] of Object.entries(message.sessions)) {
          const session = link.sessions.get(device);
          if (session && session.sessionId === state.metrics.session_id) session.state = state;
        }
        this.#playback.report(link, message.playback);
        this.#silero.set(link, message.silero);
        return;
      }
      case "failed":
        this.#log.error("session worker error", { message: message.message });
        return;
      case "ready":
        return;
    }
  }

  #turnCall(link: WorkerLink, id: string, call: Extract<FromWorker, { type: "turn" }>["call"]) {
    if (call.op === "start") {
      // Gone when its reply ended or failed meanwhile: then this is a plain turn. Only a turn
      // of the same device is continued.
      const found = call.continues === undefined ? undefined : this.#turns.get(call.continues);
      const earlier = found?.device === call.device ? found : undefined;
      const reply = (item: ReplyItem, transfer: Transferable[] = []) => {
        const turn = this.#turns.get(id);
        link.post({ type: "reply", turn: id, item, endWrittenAt: turn?.endWrittenAt }, transfer);
      };
      const turn = this.#ai.startTurn(call.device, call.rate, {
        audio: (pcm, rate) => {
          const copy = pcm.slice();
          reply({ kind: "audio", pcm: copy, rate }, [copy.buffer]);
        },
        text: (text, value) => reply({ kind: "text", text, value }),
        // Kept after its reply ended: the worker still commits it, or continues it.
        end: (stages) => reply({ kind: "end", stages }),
        fail: (reason, message) => {
          reply({ kind: "fail", reason, message });
          this.#forget(id);
        },
        eot: (completion, silenceMs) => reply({ kind: "eot", completion, silenceMs }),
        state: (state, position, waitMs) => reply({ kind: "state", state, position, waitMs }),
      }, { id, continues: earlier });
      if (!turn.done) {
        this.#turns.set(id, turn);
        this.#turnSessions.set(id, call.sessionId);
      }
      // The worker's conversation superseded the earlier turn as it started this one; the real
      // supersede is here, where the server's answer (`continued`) is known.
      if (earlier) {
        this.#forget(earlier.id);
        earlier.supersede(turn.continued);
      }
      return;
    }
    const turn = this.#turns.get(id);
    if (!turn) return;
    switch (call.op) {
      case "audio":
        return turn.audio(call.pcm);
      case "pause":
        return turn.pause();
      case "resume":
        return turn.resume();
      case "end":
        return turn.end(call.lastSpeechAt);
      case "cancel":
        this.#forget(id);
        return turn.cancel(call.playedMs);
      case "commit":
        this.#forget(id);
        return turn.commit();
    }
  }
}
