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
import process from "node:process";
import type { Config } from "../shared/config.ts";
import { withStoredLogin } from "../shared/credentials.ts";
import type { Logger } from "../shared/log.ts";
import { roundTenth } from "../shared/rounding.ts";
import type { DeviceStatus, GatewayMetrics } from "../shared/messages.ts";
import { AiClient } from "./ai_client.ts";
import { DEFAULT_SILERO_PATH, METRICS_INTERVAL_MS } from "./config.ts";
import type { EchoGuard } from "./audio_input.ts";
import { type CloseReason, DeviceSession, type SessionMetrics } from "./device_session.ts";
import { PlaybackClock } from "./playback.ts";
import { type Signaling, startSignaling } from "./signaling.ts";
import { EnergyModel, SileroModel, SileroSession, type VoiceModel } from "./vad.ts";
import { peerConfig } from "../shared/media/webrtc.ts";
import { CameraHub } from "./camera_hub.ts";
import { loadVideoConfig, type VideoConfig } from "./video/mod.ts";

const SESSION_ID_BYTES = 8;

/** Gateway settings beyond shared/config.ts (from gateway/config.ts; gateway/README.md). */
export interface GatewayOptions {
  log: (component: string) => Logger;
  /** GATEWAY_ECHO_GUARD: raise (default) | half_duplex | off. */
  echoGuard?: EchoGuard;
  /** AUDIO_VAD_MODEL: path of the Silero v5 ONNX file. */
  sileroPath?: string;
  /** GATEWAY_METRICS_INTERVAL_MS. */
  metricsIntervalMs?: number;
  /** AI_SERVER_TIMEOUT_MS: response timeout (spec 4.4: 10 s). */
  responseTimeoutMs?: number;
  /** MQTT client id; default naila-gateway. */
  clientId?: string;
  /** VideoConfig (VIDEO_*, docs/video.md); default its defaults. */
  video?: VideoConfig;
}

/** A running gateway. */
export interface Gateway {
  readonly signaling: Signaling;
  readonly ai: AiClient;
  readonly vadMode: "energy" | "silero";
  sessions(): ReadonlyMap<string, DeviceSession>;
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

  const ai = new AiClient({
    host: config.aiServer.host,
    port: config.aiServer.port,
    protocol: config.aiServer.protocol,
    log: options.log("gateway.ai"),
    responseTimeoutMs: options.responseTimeoutMs,
  });
  const clock = new PlaybackClock({
    onError: (error) => log.error("playback frame failed", { error }),
  });
  const sessions = new Map<string, DeviceSession>();
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

  const onClosed = (session: DeviceSession, reason: CloseReason) => {
    if (sessions.get(session.device) === session) sessions.delete(session.device);
    if (reason === "failed" || reason === "no_answer") {
      link.signaling?.publishEvent(session.device, {
        type: "error",
        message: `WebRTC session ${session.sessionId} ended: ${reason}`,
        session_id: session.sessionId,
        timestamp: new Date().toISOString(),
      });
    }
  };

  const openSession = (device: string, video: boolean) => {
    sessions.get(device)?.close("replaced");
    const session = new DeviceSession({
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
      audio: {
        silenceFrames: config.audio.silenceFrames,
        sampleRate: config.audio.sampleRate,
        echoGuard: options.echoGuard ?? "raise",
      },
      publishEvent: (event) => link.signaling!.publishEvent(device, event),
      onClosed,
      log: sessionLog,
      video: video ? { config: videoConfig, hub: cameras } : undefined,
    });
    sessions.set(device, session);
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
    if (!online) return void sessions.get(device)?.close("offline");
    // A retained status replayed on our (re)subscribe is not a device reconnecting (spec 9.3):
    // keep a session that is alive instead of cutting the call.
    if (retained && sessions.get(device)?.alive) {
      return void log.debug("retained status of a device with a live session", { device });
    }
    openSession(device, status.capabilities?.includes("video") ?? false);
  };
  // Retained statuses can arrive before startSignaling resolves; offers need its publisher.
  const early: [string, DeviceStatus, boolean][] = [];
  const mqttConfig = withStoredLogin(config.mqtt, config.dataDir, { role: "gateway" });
  const ready = await startSignaling(mqttConfig, {
    status(device, status, { retained }) {
      // An MQTT-only camera (capabilities without "audio", docs/media.md) has no voice to stream.
      if (status.online && status.capabilities && !status.capabilities.includes("audio")) return;
      if (link.signaling) onStatus(device, status, retained);
      else early.push([device, status, retained]);
    },
    answer(device, answer) {
      const session = current(device, answer.session_id, "answer");
      session?.applyAnswer(answer.sdp).catch((error) =>
        log.warn("SDP answer rejected", { device, error: String(error) })
      );
    },
    ice(device, candidate) {
      const session = current(device, candidate.session_id, "ICE candidate");
      session?.addCandidate(candidate).catch((error) =>
        log.warn("ICE candidate rejected", { device, error: String(error) })
      );
    },
    command(device, command) {
      // A due timer (server/README.md): fetch and play the announcement now if the device is free.
      if (command.command === "announce") sessions.get(device)?.announce();
    },
  }, {
    log: options.log("gateway.signaling"),
    clientId: options.clientId,
    status: () => ({ sessions: sessions.size }),
  });
  link.signaling = ready;
  for (const [device, status, retained] of early.splice(0)) onStatus(device, status, retained);
  ai.start();

  let lastCpu = process.cpuUsage();
  let lastCpuAt = performance.now();
  const metrics = (): GatewayMetrics => {
    const cpu = process.cpuUsage();
    const at = performance.now();
    const cpuPercent = ((cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000) /
      Math.max(1, at - lastCpuAt) * 100;
    lastCpu = cpu;
    lastCpuAt = at;
    const memory = Deno.memoryUsage();
    const playback = clock.takeStats();
    const devices: Record<string, SessionMetrics> = {};
    let framesIn = 0, framesOut = 0;
    for (const [device, session] of sessions) {
      const m = session.metrics();
      devices[device] = m;
      framesIn += m.packets_in;
      framesOut += m.packets_out;
    }
    return {
      timestamp: new Date().toISOString(),
      sessions: sessions.size,
      uptime_s: Math.round((performance.now() - startedAt) / 100) / 10,
      cpu_percent: roundTenth(cpuPercent),
      memory_mb: Math.round(memory.rss / 1e5) / 10,
      heap_mb: Math.round(memory.heapUsed / 1e5) / 10,
      external_mb: Math.round(memory.external / 1e5) / 10,
      frames_in: framesIn,
      frames_out: framesOut,
      ai_server: { connected: ai.connected, protocol: ai.protocol, rtt_ms: ai.lastRttMs ?? null },
      vad: {
        mode: vadMode,
        silero_runs: silero?.runs ?? 0,
        silero_ms_per_window: silero && silero.runs > 0 ? silero.totalMs / silero.runs : null,
      },
      playback: {
        ticks: playback.ticks,
        late_ticks: playback.lateTicks,
        stalls: playback.stalls,
        max_late_ms: roundTenth(playback.maxLateMs),
      },
      devices,
    };
  };
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
      for (const session of [...sessions.values()]) session.close("shutdown");
      clock.stop();
      ai.close();
      await ready.close();
      await silero?.close();
    },
  };
}
