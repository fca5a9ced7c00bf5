/**
 * The gateway process, wired (spec 4.3 "Gateway Startup"): MQTT signaling, the AI-server client,
 * one {@link DeviceSession} per online device, one playback clock, one shared Silero session,
 * and `naila/gateway/metrics` every {@link METRICS_INTERVAL_MS} (gateway/config.ts).
 *
 * Devices are independent: each has its own session, decoder, VAD state, queue and turn; one
 * that fails is closed alone. A device that re-announces itself (status `online: true`) gets a
 * new session replacing the old one (spec 9.3); `online: false` ends it.
 *
 * @example
 * ```ts
 * const gateway = await startGateway(loadConfig(Deno.env.toObject()), { log });
 * await gateway.close();
 * ```
 */
import { existsSync } from "node:fs";
import type { Config } from "../shared/config.ts";
import { withStoredLogin } from "../shared/credentials.ts";
import type { Logger } from "../shared/log.ts";
import type { DeviceStatus, GatewayMetrics } from "../shared/messages.ts";
import { createAiLink } from "./ai_link.ts";
import { MAX_OPENS_PER_WINDOW, OPEN_WINDOW_MS, SessionRateLimit } from "./session_rate_limit.ts";
import { type AiLink, turnPrefix } from "./ai_servers.ts";
import {
  DEFAULT_MAX_CANDIDATES,
  DEFAULT_MAX_DEVICES,
  DEFAULT_SILERO_PATH,
  type GatewayConfig,
  METRICS_INTERVAL_MS,
} from "./config.ts";
import { LAN_RANGES } from "../shared/ip_ranges.ts";
import { AnswerGate } from "./answer_gate.ts";
import type { EchoGuard } from "./echo_guard.ts";
import { type CloseReason, DeviceSession } from "./device_session.ts";
import { MetricsSampler } from "./gateway_metrics.ts";
import { PlaybackClock } from "./playback.ts";
import { LONG_TURN_CAPABILITY } from "./utterance_segmenter.ts";
import { type Signaling, startSignaling } from "./signaling.ts";
import { startMembership } from "./gateway_membership.ts";
import { type RemoteSession, SessionWorkers } from "./session_workers.ts";
import { EnergyModel, SileroModel, SileroSession, type VoiceModel } from "./vad.ts";
import { peerConfig } from "../shared/media/webrtc.ts";
import { CameraHub } from "./camera_hub.ts";
import { loadVideoConfig, type VideoConfig } from "./video/mod.ts";

const SESSION_ID_BYTES = 8;
/** Session workers report their sessions' state at least this often (ms), for `alive`. */
const WORKER_METRICS_MS = 1000;

/** Gateway settings beyond shared/config.ts (from gateway/config.ts; gateway/README.md). */
export interface GatewayOptions {
  log: (component: string) => Logger;
  /** GATEWAY_ECHO_GUARD: estimate (default) | raise | half_duplex | off. */
  echoGuard?: EchoGuard;
  /** GATEWAY_ECHO_MARGIN_DB, AUDIO_STALL_HOLD_MS, TURN_MAX_MS (gateway/config.ts). */
  echoMarginDb?: number;
  stallHoldMs?: number;
  turnMaxMs?: number;
  /** TURN_GRACE_MS, TURN_CONTINUE_MAX_MS, TURN_INCOMPLETE_MAX_MS (gateway/turn_taking.ts). */
  turnTaking?: GatewayConfig["turnTaking"];
  /** AUDIO_VAD_MODEL: path of the Silero v5 ONNX file. */
  sileroPath?: string;
  /** GATEWAY_METRICS_INTERVAL_MS. */
  metricsIntervalMs?: number;
  /** AI_SERVER_TIMEOUT_MS: response timeout (spec 4.4: 10 s). */
  responseTimeoutMs?: number;
  /** MQTT client id; default naila-gateway. */
  clientId?: string;
  /** GATEWAY_WORKERS: session worker threads; 0 (default): sessions on the main thread. */
  workers?: number;
  /** AI_SERVER_AUTH / _SECRET / _TLS; default: authenticate with the data dir's secret. */
  aiServer?: GatewayConfig["aiServer"];
  /** GATEWAY_MAX_DEVICES; default {@link DEFAULT_MAX_DEVICES}. */
  maxDevices?: number;
  /** WEBRTC_ALLOWED_CANDIDATE_RANGES / WEBRTC_MAX_CANDIDATES; default LAN ranges, 20. */
  candidates?: GatewayConfig["candidates"];
  /** VideoConfig (VIDEO_*, docs/video.md); default its defaults. */
  video?: VideoConfig;
}

/** A device session, on the main thread or in a session worker (session_workers.ts). */
export type GatewaySession = DeviceSession | RemoteSession;

/** A running gateway. */
export interface Gateway {
  readonly signaling: Signaling;
  /** Its AI servers (one, or several where AI_SERVER_HOST lists them). */
  readonly ai: AiLink;
  readonly vadMode: "energy" | "silero";
  sessions(): ReadonlyMap<string, GatewaySession>;
  metrics(): GatewayMetrics;
  close(): Promise<void>;
}

function sessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(SESSION_ID_BYTES));
  return "s" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Starts everything; resolves once MQTT is connected and announced. */
export async function startGateway(config: Config, options: GatewayOptions): Promise<Gateway> {
  const log = options.log("gateway");
  const startedAt = performance.now();
  const sileroPath = options.sileroPath ?? DEFAULT_SILERO_PATH;
  let vadMode: "energy" | "silero" = config.audio.vadMode === "auto"
    ? (existsSync(sileroPath) ? "silero" : "energy")
    : config.audio.vadMode;
  let silero: SileroSession | undefined;
  if (vadMode === "silero") {
    try {
      silero = await SileroSession.load(sileroPath);
    } catch (error) {
      if (config.audio.vadMode === "silero") throw error;
      log.warn("Silero VAD unavailable, using the energy VAD", { path: sileroPath, error });
      vadMode = "energy";
    }
  }
  log.info("VAD", { mode: vadMode, threshold: config.audio.vadThreshold });
  const createModel = (): VoiceModel =>
    silero
      ? new SileroModel(silero)
      : new EnergyModel({ threshold: config.audio.vadThreshold || 1 });

  const workerCount = options.workers ?? 0;
  const ai = createAiLink(config, {
    aiServer: options.aiServer,
    responseTimeoutMs: options.responseTimeoutMs,
    log,
    aiLog: options.log("gateway.ai"),
  });
  const clock = new PlaybackClock({
    onError: (error) => log.error("playback frame failed", { error }),
  });
  const sessions = new Map<string, GatewaySession>();
  // Cameras (docs/video.md): motion frames to the server, live grabs for its frame requests.
  const videoConfig = options.video ?? loadVideoConfig({});
  const cameras = new CameraHub({ link: ai, log: options.log("gateway.video") });
  ai.onFrameRequest((request) => cameras.request(request));
  const peer = peerConfig({
    iceServers: config.webrtc.iceServers,
    hostAddresses: config.webrtc.hostAddresses,
  });
  const sessionLog = options.log("gateway.session");
  // Assigned once MQTT is up; sessions only exist after that.
  const link: { signaling?: Signaling } = {};
  let closing = false;

  // Every session's audio settings, on the main thread or in a session worker.
  const sessionAudio = {
    silenceFrames: config.audio.silenceFrames,
    sampleRate: config.audio.sampleRate,
    echoGuard: options.echoGuard ?? "estimate",
    echoMarginDb: options.echoMarginDb,
    stallHoldMs: options.stallHoldMs,
    turnMaxMs: options.turnMaxMs,
    turnTaking: options.turnTaking,
  };
  const workers = workerCount > 0
    ? await SessionWorkers.start(workerCount, {
      peer: { iceServers: config.webrtc.iceServers, hostAddresses: config.webrtc.hostAddresses },
      audio: sessionAudio,
      vad: {
        sileroPath: silero ? sileroPath : undefined,
        threshold: config.audio.vadThreshold,
      },
      logLevel: config.logLevel,
      metricsMs: Math.min(options.metricsIntervalMs ?? METRICS_INTERVAL_MS, WORKER_METRICS_MS),
    }, {
      ai,
      turnPrefix: turnPrefix(),
      log,
      out: {
        offer: (device, session_id, sdp) =>
          link.signaling?.publishOffer(device, { type: "offer", sdp, session_id }),
        ice: (device, candidate) => link.signaling?.publishIce(device, candidate),
        event: (device, event) => link.signaling?.publishEvent(device, event),
        closed: (session, reason) => onClosed(session, reason),
      },
    })
    : undefined;
  if (workers) log.info("session workers", { workers: workerCount });

  /** Devices whose status says they cancel their own speaker echo. */
  const echoCancelling = new Set<string>();
  /** Devices whose status announces the `video` capability (a camera). */
  const cameraDevices = new Set<string>();
  // Other gateways on the broker (docs/scaling.md): this one serves only the devices it owns.
  const mqttConfig = withStoredLogin(config.mqtt, config.dataDir, { role: "gateway" });
  const membership = await startMembership(mqttConfig, {
    log: options.log("gateway.membership"),
    open: (device) => openSession(device, echoCancelling.has(device), cameraDevices.has(device)),
    close: (device) => sessions.get(device)?.close("replaced"),
    serving: (device) => sessions.has(device),
  });

  const onClosed = (session: GatewaySession, reason: CloseReason) => {
    if (sessions.get(session.device) === session) {
      sessions.delete(session.device);
      membership.claimsChanged();
    }
    if (reason === "failed" || reason === "no_answer") {
      link.signaling?.publishEvent(session.device, {
        type: "error",
        message: `WebRTC session ${session.sessionId} ended: ${reason}`,
        session_id: session.sessionId,
        timestamp: new Date().toISOString(),
      });
    }
  };

  const maxDevices = options.maxDevices ?? DEFAULT_MAX_DEVICES;
  const candidateLimits = options.candidates ??
    { allowed: [...LAN_RANGES], max: DEFAULT_MAX_CANDIDATES };

  /** Tells the device on its events topic why it gets no (or no more) session. */
  const refuse = (device: string, message: string, sessionId?: string) => {
    log.warn("audit: device refused", { device, message });
    link.signaling?.publishEvent(device, {
      type: "error",
      message,
      ...(sessionId === undefined ? {} : { session_id: sessionId }),
      timestamp: new Date().toISOString(),
    });
  };

  /** What answers and candidates must pass (answer_gate.ts); a failed answer ends its session. */
  const gate = new AnswerGate<GatewaySession>({
    candidates: candidateLimits,
    log,
    fail: (session, problem) => {
      refuse(session.device, `SDP answer refused: ${problem}`, session.sessionId);
      session.close("error");
    },
  });

  /** A device whose status flaps gets no session per flip (session_rate_limit.ts). */
  const flapLimit = new SessionRateLimit();
  const openSession = (device: string, echoCancellation: boolean, video: boolean) => {
    if (!sessions.has(device) && sessions.size >= maxDevices) {
      refuse(device, `the gateway serves at most ${maxDevices} devices (GATEWAY_MAX_DEVICES)`);
      return;
    }
    if (!flapLimit.allow(device)) {
      refuse(
        device,
        `too many new sessions (more than ${MAX_OPENS_PER_WINDOW} in ${
          OPEN_WINDOW_MS / 1000
        } s): ` +
          "announce the device again later",
      );
      return;
    }
    sessions.get(device)?.close("replaced");
    // Cameras stay on the main thread with the camera hub; the rest go to the session workers.
    const remote = !video && workers?.open(device, sessionId(), echoCancellation);
    const session = remote || new DeviceSession({
      device,
      sessionId: sessionId(),
      peer,
      signal: {
        offer: (sdp) =>
          link.signaling!.publishOffer(device, {
            type: "offer",
            sdp,
            session_id: session.sessionId,
          }),
        ice: (candidate) => link.signaling!.publishIce(device, candidate),
      },
      ai,
      clock,
      model: createModel(),
      audio: sessionAudio,
      echoCancellation,
      longTurns: () => ai.serverCan(LONG_TURN_CAPABILITY),
      publishEvent: (event) => link.signaling!.publishEvent(device, event),
      onClosed,
      log: sessionLog,
      video: video ? { config: videoConfig, hub: cameras } : undefined,
    });
    sessions.set(device, session);
    membership.claimsChanged();
    log.info("device online: offering", { device, session: session.sessionId });
    session.start().catch((error) => {
      log.error("offer failed", { device, error });
      session.close("error");
    });
  };

  const current = (device: string, id: string, what: string) => {
    const session = sessions.get(device);
    if (!session || session.sessionId !== id) {
      log.warn(`${what} for an unknown session dropped`, { device, session_id: id });
      return undefined;
    }
    return session;
  };

  // Connection epoch (docs/protocol.md) of the status that opened each device's live session.
  const liveEpochs = new Map<string, number>();
  const onStatus = (device: string, status: DeviceStatus, retained: boolean) => {
    if (closing) return;
    const online = status.online;
    const live = liveEpochs.get(device);
    if (!online && status.epoch !== undefined && live !== undefined && status.epoch < live) {
      // A last will of an older connection (a device that rebooted): the live session stays.
      return void log.info("stale offline status ignored", {
        device,
        epoch: status.epoch,
        live_epoch: live,
      });
    }
    if (status.epoch !== undefined) liveEpochs.set(device, status.epoch);
    else liveEpochs.delete(device);
    if (!online) {
      membership.deviceOffline(device);
      return void sessions.get(device)?.close("offline");
    }
    // A retained status replayed on our (re)subscribe is not a device reconnecting (spec 9.3):
    // keep a session that is alive instead of cutting the call.
    if (retained && sessions.get(device)?.alive) {
      return void log.debug("retained status of a device with a live session", { device });
    }
    // A device that cancels its own echo (the browser page) needs no echo guard (README).
    if (status.echo_cancellation === true) echoCancelling.add(device);
    else echoCancelling.delete(device);
    // A camera (docs/video.md): the session takes a VP8 track beside the audio.
    if (status.capabilities?.includes("video")) cameraDevices.add(device);
    else cameraDevices.delete(device);
    membership.deviceOnline(device);
  };
  // Retained statuses can arrive before startSignaling resolves; offers need its publisher.
  const early: [string, DeviceStatus, boolean][] = [];
  let ready: Signaling;
  try {
    ready = await startSignaling(mqttConfig, {
      status(device, status, { retained }) {
        // An MQTT-only camera (capabilities without "audio", docs/media.md) has no voice to stream.
        if (status.online && status.capabilities && !status.capabilities.includes("audio")) return;
        if (link.signaling) onStatus(device, status, retained);
        else early.push([device, status, retained]);
      },
      answer(device, answer) {
        const session = current(device, answer.session_id, "answer");
        if (session) gate.answer(session, answer.sdp);
      },
      ice(device, candidate) {
        const session = current(device, candidate.session_id, "ICE candidate");
        if (session) gate.candidate(session, candidate);
      },
      serverStatus(status) {
        ai.serverStatus(status);
      },
      command(device, command) {
        // A due timer (server/README.md): fetch and play the announcement now if the device is free.
        if (command.command === "announce") sessions.get(device)?.announce();
      },
    }, {
      log: options.log("gateway.signaling"),
      clientId: options.clientId,
      status: () => ({ sessions: sessions.size, gateway_id: membership.id }),
    });
  } catch (error) {
    await membership.close();
    throw error;
  }
  link.signaling = ready;
  for (const [device, status, retained] of early.splice(0)) onStatus(device, status, retained);
  ai.start();

  const sampler = new MetricsSampler(startedAt);
  const metrics = (): GatewayMetrics =>
    sampler.sample({
      sessions,
      ai,
      vadMode,
      vadRuns: workers
        ? {
          runs: workers.silero.runs + (silero?.runs ?? 0),
          totalMs: workers.silero.totalMs + (silero?.totalMs ?? 0),
        }
        : silero,
      playback: workers ? workers.takeStats(clock.takeStats()) : clock.takeStats(),
    });
  const metricsTimer = setInterval(
    () => ready.publishMetrics(metrics()),
    options.metricsIntervalMs ?? METRICS_INTERVAL_MS,
  );

  return {
    signaling: ready,
    ai,
    vadMode,
    sessions: () => sessions,
    metrics,
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(metricsTimer);
      await membership.close();
      for (const session of [...sessions.values()]) session.close("shutdown");
      workers?.close();
      clock.stop();
      ai.close();
      await ready.close();
      await silero?.close();
    },
  };
}
