/**
 * One device's WebRTC session (spec 5.3, 9.1): a werift peer connection with one sendrecv Opus
 * 48 kHz mono transceiver, the offer/answer and trickled ICE of its signaling, and the audio
 * pipeline both ways:
 *
 *   RTP in ─▶ {@link AudioReceiver} (media clock, adaptive reorder window, stalls)
 *     ─▶ {@link AudioInput} (its segmenter) ─▶ {@link Conversation} ─▶ AI server
 *     ─▶ Conversation ─▶ {@link PlaybackQueue} ─▶ {@link OpusRtpSender} ─▶ RTP out
 *
 * Every reply frame sent also goes to the input as the echo path's reference (guard
 * `estimate`); a device that announced `echo_cancellation` in its status gets guard `off`.
 *
 * The parts are made in the order audio flows back to front (playback, conversation, input,
 * packet order), each handed the one it feeds; the session relays none of their events.
 *
 * The offer is re-published (same session id) when no answer comes, {@link OFFER_RETRY_MS}
 * apart, then the session gives up. A failed or closed connection ends the session; the owner
 * ({@link Gateway}) drops it and a later status `online: true` makes a new one.
 *
 * @example
 * ```ts
 * const session = new DeviceSession({ device: "kitchen", sessionId, ... });
 * await session.start();              // publishes the offer
 * await session.applyAnswer(sdp);     // from signaling/answer
 * await session.addCandidate(init);   // from signaling/ice (from: "device")
 * ```
 */
import { type RTCIceCandidateInit, RTCPeerConnection, type RTCPeerConnectionConfig } from "werift";
import type { SampleRate } from "../shared/frame_codec.ts";
import type { Logger } from "../shared/log.ts";
import { roundMs } from "../shared/audio.ts";
import type { DeviceEvent, IceCandidate } from "../shared/messages.ts";
import { AudioInput } from "./audio_input.ts";
import type { EchoGuard } from "./echo_guard.ts";
import { Conversation } from "./conversation.ts";
import type { TurnSource } from "./conversation_parts.ts";
import { AudioReceiver } from "./audio_receiver.ts";
import { DEFAULT_TURN_MAX_MS, MAX_UTTERANCE_MS } from "./utterance_segmenter.ts";
import { type PlaybackClock, PlaybackQueue } from "./playback.ts";
import type { VoiceModel } from "./vad.ts";
import { OpusRtpSender } from "../shared/media/webrtc.ts";
import { OPUS_FRAME_MS } from "../shared/media/opus_codec.ts";
import type { CameraHub } from "./camera_hub.ts";
import type { VideoConfig } from "./video/mod.ts";
import { type VideoMetrics, VideoSession } from "./video_session.ts";

/** Waits for an answer before re-publishing the offer: 2 s, 4 s, 8 s, then give up. */
export const OFFER_RETRY_MS = [2000, 4000, 8000] as const;
/** A session still not connected this long after its answer is dead (ICE found no path). */
export const CONNECT_TIMEOUT_MS = 15_000;

/** Why a session ended. */
export type CloseReason =
  | "replaced"
  | "offline"
  | "failed"
  | "closed"
  | "no_answer"
  | "shutdown"
  | "error";

/** Dependencies of a {@link DeviceSession}. */
export interface DeviceSessionOptions {
  device: string;
  sessionId: string;
  peer: RTCPeerConnectionConfig;
  /** Publishes the offer and this side's ICE candidates (marked `from: "gateway"`). */
  signal: {
    offer(sdp: string): void;
    ice(candidate: IceCandidate): void;
  };
  /** The AI link (the gateway's AiServers). */
  ai: TurnSource;
  clock: PlaybackClock;
  model: VoiceModel;
  audio: {
    silenceFrames: number;
    sampleRate: SampleRate;
    echoGuard: EchoGuard;
    /** GATEWAY_ECHO_MARGIN_DB (guard `estimate`). */
    echoMarginDb?: number;
    /** AUDIO_STALL_HOLD_MS: a device this overdue on the media clock is heard as silent. */
    stallHoldMs?: number;
    /** TURN_MAX_MS: an utterance's cap while {@link DeviceSessionOptions.longTurns} says yes. */
    turnMaxMs?: number;
    /** Grace and continuation waits (ms; gateway/turn_taking.ts defaults when unset). */
    turnTaking?: { graceMs?: number; continueMaxMs?: number; incompleteMaxMs?: number };
  };
  /**
   * Whether the AI server takes turns longer than 30 s (its hello announced
   * `LONG_TURN_CAPABILITY`); none or false: utterances are cut at 30 s.
   */
  longTurns?: () => boolean;
  /** The device's status said it cancels its own echo: no echo guard (`off`). */
  echoCancellation?: boolean;
  publishEvent(event: DeviceEvent): void;
  onClosed(session: DeviceSession, reason: CloseReason): void;
  log: Logger;
  offerRetryMs?: readonly number[];
  /** A camera (status capability "video"): a VP8 track beside the audio (video_session.ts). */
  video?: { config: VideoConfig; hub: CameraHub };
}

/** Per-device numbers for `naila/gateway/metrics`. */
export interface SessionMetrics {
  session_id: string;
  connection: string;
  packets_in: number;
  packets_out: number;
  lost: number;
  late: number;
  concealed: number;
  undecodable: number;
  jitter_ms: number;
  /** The adaptive reorder wait (audio_receiver.ts), ms. */
  reorder_depth_ms: number;
  /** Stalls longer than AUDIO_STALL_HOLD_MS, and silence fed for gaps and stalls (ms). */
  stalls: number;
  silence_ms: number;
  /** Mic frames the echo path called echo; its estimate once converged (guard `estimate`). */
  echo_frames: number;
  echo_delay_ms?: number;
  echo_gain_db?: number;
  vad_state: string;
  conversation: string;
  utterances: number;
  turns: number;
  interruptions: number;
  timeouts: number;
  last_latency_ms?: number;
  /** Camera counters, once a video track arrived. */
  video?: VideoMetrics;
}

/** See the module doc. */
export class DeviceSession {
  readonly device: string;
  readonly sessionId: string;
  #o: DeviceSessionOptions;
  #log: Logger;
  #pc: RTCPeerConnection;
  #input: AudioInput;
  #receiver: AudioReceiver;
  #playback: PlaybackQueue;
  #conversation: Conversation;
  /** Reply frames out: Opus, RTP, to the transceiver's sender once {@link start} made it. */
  /** Reply frames out: Opus, RTP, the transceiver's sender. */
  #rtp: OpusRtpSender;
  #offerSdp: string | undefined;
  #answered = false;
  #offerTimer: ReturnType<typeof setTimeout> | undefined;
  #offerAttempt = 0;
  #closed = false;
  #packetsIn = 0;
  #packetsOut = 0;
  /** When the last reply frame was sent, as the echo path's reference time (ms). */
  #referenceAt = -Infinity;
  #video: VideoSession | undefined;

  constructor(options: DeviceSessionOptions) {
    this.#o = options;
    this.device = options.device;
    this.sessionId = options.sessionId;
    this.#log = options.log;
    this.#pc = new RTCPeerConnection(options.peer);
    const transceiver = this.#pc.addTransceiver("audio", { direction: "sendrecv" });
    this.#rtp = new OpusRtpSender((packet) => {
      this.#packetsOut++;
      transceiver.sender.sendRtp(packet).catch((error) => {
        this.#log.debug("RTP send failed", { device: this.device, error: String(error) });
      });
    });
    // Wired in the order audio flows, back to front: each part exists before the one feeding it.
    this.#playback = new PlaybackQueue({
      send: (frame, first) => {
        if (this.#closed) return;
        this.#rtp.sendFrame(frame, first);
        // The device plays a late clock's catch-up burst frame after frame: the echo path's
        // reference times stay 20 ms apart (a gap in sending restarts them at now).
        this.#referenceAt = Math.max(Date.now(), this.#referenceAt + OPUS_FRAME_MS);
        this.#input.reference(frame, this.#referenceAt, first);
      },
    });
    this.#conversation = new Conversation({
      device: options.device,
      sessionId: options.sessionId,
      ai: options.ai,
      sampleRate: options.audio.sampleRate,
      playback: this.#playback,
      wake: () => options.clock.wake(),
      publish: options.publishEvent,
      log: options.log,
      // The silence window that ends an utterance is AUDIO_SILENCE_FRAMES' (spec 14.2).
      turnTaking: {
        silenceMs: options.audio.silenceFrames * OPUS_FRAME_MS,
        ...options.audio.turnTaking,
      },
    });
    this.#input = new AudioInput({
      model: options.model,
      silenceFrames: options.audio.silenceFrames,
      sampleRate: options.audio.sampleRate,
      echoGuard: sessionGuard(options.audio.echoGuard, options.echoCancellation),
      echoMarginDb: options.audio.echoMarginDb,
      maxUtteranceMs: () =>
        options.longTurns?.() ? options.audio.turnMaxMs ?? DEFAULT_TURN_MAX_MS : MAX_UTTERANCE_MS,
      reply: this.#conversation,
      onError: (error) => this.#log.error("audio frame failed", { device: this.device, error }),
    }, this.#conversation);
    this.#receiver = new AudioReceiver(this.#input, { stallHoldMs: options.audio.stallHoldMs });
    transceiver.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) =>
        this.#receive(rtp.header.sequenceNumber, rtp.header.timestamp, rtp.payload)
      );
    });
    options.clock.add(this.#playback);
    if (options.video) {
      this.#video = new VideoSession(this.#pc, {
        device: this.device,
        ...options.video,
        log: this.#log,
      });
    }
  }

  /** Creates the offer, publishes it, starts the answer timer. */
  async start(): Promise<void> {
    const pc = this.#pc;
    pc.onIceCandidate.subscribe((candidate) => {
      if (this.#closed || !candidate) return;
      const init = candidate.toJSON();
      this.#o.signal.ice({
        candidate: init.candidate,
        sdpMid: init.sdpMid ?? null,
        sdpMLineIndex: init.sdpMLineIndex ?? null,
        session_id: this.sessionId,
        from: "gateway",
      });
    });
    pc.connectionStateChange.subscribe((state) => {
      this.#log.debug("connection state", { device: this.device, state });
      if (state === "connected") {
        this.#log.info("device connected", { device: this.device, session: this.sessionId });
      } else if (state === "failed" || state === "closed") {
        this.close(state);
      }
    });
    await pc.setLocalDescription(await pc.createOffer());
    if (this.#closed) return;
    this.#offerSdp = pc.localDescription!.sdp;
    this.#publishOffer();
  }

  /** The device's answer (already validated and matched to this session). */
  async applyAnswer(sdp: string): Promise<void> {
    if (this.#closed) return;
    if (this.#answered) {
      this.#log.debug("duplicate answer ignored", { device: this.device });
      return;
    }
    const problem = answerProblem(sdp);
    if (problem) throw new Error(`SDP answer ${problem}`);
    await this.#pc.setRemoteDescription({ type: "answer", sdp });
    this.#answered = true;
    if (this.#offerTimer !== undefined) clearTimeout(this.#offerTimer);
    this.#offerTimer = setTimeout(() => {
      this.#offerTimer = undefined;
      if (this.#closed || this.#pc.connectionState === "connected") return;
      this.#log.warn("no connection after the answer", {
        device: this.device,
        session: this.sessionId,
        state: this.#pc.connectionState,
      });
      this.close("failed");
    }, CONNECT_TIMEOUT_MS);
  }

  /** A device candidate; "" or null is the end-of-candidates mark. */
  async addCandidate(message: IceCandidate): Promise<void> {
    if (this.#closed) return;
    if (!message.candidate) return; // End of candidates: werift needs nothing.
    const init: RTCIceCandidateInit = { candidate: message.candidate };
    if (message.sdpMid != null) init.sdpMid = message.sdpMid;
    if (message.sdpMLineIndex != null) init.sdpMLineIndex = message.sdpMLineIndex;
    await this.#pc.addIceCandidate(init);
  }

  /** Ends the session: playback flushed, open turn cancelled, connection closed. */
  close(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#offerTimer !== undefined) clearTimeout(this.#offerTimer);
    this.#o.clock.remove(this.#playback);
    this.#conversation.close();
    this.#receiver.close();
    this.#input.close();
    this.#video?.close();
    this.#rtp.close();
    this.#pc.close().catch(() => {});
    this.#log.info("session closed", {
      device: this.device,
      session: this.sessionId,
      reason,
      packets_in: this.#packetsIn,
      packets_out: this.#packetsOut,
    });
    this.#o.onClosed(this, reason);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * A due timer's announcement (server `announce` command): fetched with an empty turn and played
   * at once if the device is connected and no turn is in progress; otherwise the server speaks it
   * on the device's next turn. Returns whether a turn was opened.
   */
  announce(): boolean {
    if (this.#closed || this.#pc.connectionState !== "connected") return false;
    return this.#conversation.announce();
  }

  /** Open and not failed: connected, or still connecting (offer out, answer or ICE pending). */
  get alive(): boolean {
    const state = this.#pc.connectionState;
    return !this.#closed && state !== "failed" && state !== "closed" && state !== "disconnected";
  }

  metrics(): SessionMetrics {
    const s = this.#receiver.stats;
    const c = this.#conversation.stats;
    const m: SessionMetrics = {
      session_id: this.sessionId,
      connection: this.#pc.connectionState,
      packets_in: this.#packetsIn,
      packets_out: this.#packetsOut,
      lost: s.lost,
      late: s.late,
      concealed: this.#input.stats.concealed,
      undecodable: this.#input.stats.undecodable,
      jitter_ms: Math.round(this.#receiver.jitterMs * 100) / 100,
      reorder_depth_ms: Math.round(this.#receiver.depthMs),
      stalls: s.stalls,
      silence_ms: s.silenceMs,
      echo_frames: this.#input.stats.echo,
      vad_state: this.#input.vadState,
      conversation: this.#conversation.state,
      utterances: this.#input.stats.utterances,
      turns: c.turns,
      interruptions: c.interruptions,
      timeouts: c.timeouts,
    };
    const echo = this.#input.echoEstimate;
    if (echo?.converged) {
      m.echo_delay_ms = echo.delayMs;
      m.echo_gain_db = Number.isFinite(echo.gainDb) ? roundMs(echo.gainDb) : -99;
    }
    if (c.latencies.length > 0) m.last_latency_ms = c.latencies[c.latencies.length - 1];
    const video = this.#video?.metrics();
    if (video) m.video = video;
    return m;
  }

  #publishOffer(): void {
    if (this.#closed || this.#answered || this.#offerSdp === undefined) return;
    const waits = this.#o.offerRetryMs ?? OFFER_RETRY_MS;
    if (this.#offerAttempt > waits.length) return;
    this.#o.signal.offer(this.#offerSdp);
    const wait = waits[this.#offerAttempt++];
    this.#offerTimer = setTimeout(() => {
      this.#offerTimer = undefined;
      if (this.#answered || this.#closed) return;
      if (this.#offerAttempt >= waits.length) {
        this.#log.warn("no answer to the offer, giving up", {
          device: this.device,
          session: this.sessionId,
          attempts: this.#offerAttempt,
        });
        this.close("no_answer");
        return;
      }
      this.#log.info("no answer yet, offering again", {
        device: this.device,
        attempt: this.#offerAttempt + 1,
      });
      this.#publishOffer();
    }, wait);
  }

  #receive(sequence: number, timestamp: number, payload: Uint8Array): void {
    if (this.#closed) return;
    this.#packetsIn++;
    this.#receiver.receive(sequence, timestamp, payload);
  }
}

/** What makes `sdp` unusable as an answer to our audio offer, or undefined. */
export function answerProblem(sdp: string): string | undefined {
  if (!sdp.startsWith("v=0")) {
    return `does not start with "v=0" (got ${JSON.stringify(sdp.slice(0, 20))})`;
  }
  for (
    const [needle, what] of [
      ["\nm=audio ", "audio m-line"],
      ["a=ice-ufrag:", "ICE username fragment"],
      ["a=fingerprint:", "DTLS fingerprint"],
    ]
  ) {
    if (!sdp.includes(needle)) return `has no ${what}`;
  }
  return undefined;
}

/**
 * The echo guard of one session: a device that cancels its own echo (status
 * `echo_cancellation: true`) needs neither `estimate` nor `raise`; `half_duplex`, a deliberate
 * "no barge-in" choice, stays.
 */
export function sessionGuard(configured: EchoGuard, echoCancellation = false): EchoGuard {
  return echoCancellation && configured !== "half_duplex" ? "off" : configured;
}
