/**
 * The AI server (spec section 6): the embedded MQTT broker when MQTT_HOST is unset, the retained
 * `naila/server/status` with a last will, the audio socket for the gateway, and behind it the
 * sequential inference queue and the pipeline (echo, or Whisper → assistant → espeak-ng).
 *
 * One utterance through the server, in order (each file one step):
 *
 * 1. `audio_socket.ts` — the listener accepts the gateway's TCP connection (connection limit).
 * 2. `socket_connection.ts` — decodes frames as bytes arrive (shared/frame_codec.ts); its first
 *    byte picks the protocol version; frame and idle timers; the connection's write queue.
 * 3. `v2_adapter.ts` (hello, ping, camera frames) → `v2_turns.ts` — the turn table: `start`,
 *    `audio`…, (`pause`: speculative STT), `end`; or `v1_adapter.ts` — one spec 4.2 request
 *    frame is one turn, answered in order.
 * 4. `inference_queue.ts` — one turn at a time (spec 16.2), fair across devices; refused
 *    (`busy`, with a spoken apology from `notices.ts`) only when queued work, the estimated wait
 *    or buffered audio pass their limits. The status on `naila/server/status` carries the load.
 * 5. `pipeline.ts` — STT (`stt/`) → assistant (`assistant/`) → TTS (`tts/`) sentence by sentence,
 *    each reply chunk to the turn's sink.
 * 6. Back in `v2_turns.ts` (text, audio chunks, `end` with stages) or `v1_adapter.ts` (one 48 kHz
 *    frame), written by `socket_connection.ts`.
 *
 * @example
 * ```ts
 * import { loadConfig } from "../shared/config.ts";
 * import { loadServerConfig, startServer } from "./mod.ts";
 * const server = await startServer({ config: loadConfig({ PIPELINE: "echo" }), server: loadServerConfig({}) });
 * // ... the gateway connects to server.audioPort
 * await server.close();
 * ```
 */
import { join } from "node:path";
import { startEmbeddedBroker } from "../shared/broker.ts";
import { ensureBrokerCertificate } from "../shared/certificates.ts";
import type { Config } from "../shared/config.ts";
import { ensureRoleUsers, withStoredLogin } from "../shared/credentials.ts";
import { uniqueClientId } from "../shared/mqtt.ts";
import { createLogger, type Logger } from "../shared/log.ts";
import { parseDeviceEvent, type ServerLoad, type ServerStatus } from "../shared/messages.ts";
import { topicFilter } from "../shared/topics.ts";
import { announceCommand, createAssistant } from "./assistant/mod.ts";
import { AudioSocketServer, socketAccessOptions } from "./audio_socket.ts";
import { AuditLog, type AuditRecord } from "../shared/audit.ts";
import { CameraFrames } from "./camera_frames.ts";
import type { ServerConfig } from "./config.ts";
import { InferenceQueue, QueueError, type QueueLoad } from "./inference_queue.ts";
import { MediaError, MediaService, MediaStore } from "./media/mod.ts";
import { MqttLink } from "./mqtt_link.ts";
import { Notices } from "./notices.ts";
import { EchoPipeline, FullPipeline, type Pipeline } from "./pipeline.ts";
import type { SpeechToText } from "./stt/types.ts";
import { createTts } from "./tts/mod.ts";
import type { TextToSpeech } from "./tts/types.ts";
import type { Vision } from "./vision/mod.ts";

export { loadServerConfig, type ServerConfig } from "./config.ts";

/** Reported in the server status. */
export const SERVER_VERSION = "0.1.0";
/** The load on the status is published at most this often (ms), and only when it changed. */
export const LOAD_PUBLISH_MS = 1000;
/** How often the load is looked at: a queue that fills and drains within a second still shows. */
const LOAD_CHECK_MS = 100;
/** ms per minute, for the capacity estimate. */
const MS_PER_MINUTE = 60_000;

/** Audio-socket audit events (audio_socket.ts, socket_auth.ts) as audit records. */
const SOCKET_AUDIT_EVENTS = new Set<AuditRecord["event"]>([
  "auth_failed",
  "auth_required",
  "auth_timeout",
  "address_refused",
  "v1_refused",
]);

/**
 * One audio-socket security event as an audit record: the peer's address without its port (the
 * rate limit counts per address), the detail as text. An unknown event name is kept in `detail`
 * under `auth_failed` rather than dropped.
 */
export function socketAuditRecord(event: string, fields: Record<string, unknown>): AuditRecord {
  // `peer` is "host:port" (socket_connection.ts); `address` is the host alone.
  const peer = typeof fields.peer === "string" ? fields.peer : "";
  const address = typeof fields.address === "string"
    ? fields.address
    : peer.slice(0, Math.max(0, peer.lastIndexOf(":")));
  const known = SOCKET_AUDIT_EVENTS.has(event as AuditRecord["event"]);
  const detail = fields.detail === undefined ? undefined : String(fields.detail);
  return {
    event: known ? event as AuditRecord["event"] : "auth_failed",
    address: address || undefined,
    detail: known ? detail : `${event}${detail ? `: ${detail}` : ""}`,
  };
}

/** The queue's load as the status carries it (shared/messages.ts `ServerLoad`). */
export function serverLoad(load: QueueLoad): ServerLoad {
  const out: ServerLoad = {
    queued_turns: load.queuedTurns,
    queued_audio_s: load.queuedAudioS,
    active_devices: load.activeDevices,
    wait_ms: load.waitMs,
    turn_ms: load.turnMs,
  };
  if (load.turnMs > 0) out.capacity_turns_per_min = Math.round(MS_PER_MINUTE / load.turnMs);
  return out;
}

/** Conversation memory file under NAILA_DATA_DIR. */
export const DATABASE_FILE = "naila.db";

/** Options of {@link startServer}. */
export interface StartServerOptions {
  config: Config;
  server: ServerConfig;
  /** Speech to text to use instead of loading Whisper from `server.sttModelDir` (tests). */
  stt?: SpeechToText;
  tts?: TextToSpeech;
  /** Vision to use instead of starting the worker on first use (benchmarks share one). */
  vision?: Vision;
}

/** A running server. */
export interface RunningServer {
  audioPort: number;
  mqttPort: number;
  pipeline: Pipeline;
  /** Snapshots, recordings, uploads, alerts and visual questions (server/media). */
  media: MediaService;
  /** Camera frames from gateways (counters for tests and benchmarks). */
  cameras: CameraFrames;
  /** Publishes the offline status, closes the socket, MQTT, memory and the embedded broker. */
  close(): Promise<void>;
}

/** The STT model could not be loaded: names the directory and how to get a model. */
export class SttLoadError extends Error {
  override name = "SttLoadError";
  constructor(readonly modelDir: string, cause: unknown) {
    super(
      `STT_MODEL_DIR ${JSON.stringify(modelDir)} has no loadable Whisper model (${
        (cause as Error)?.message ?? cause
      }); run "deno task models" on a machine with internet, or set PIPELINE=echo`,
      { cause },
    );
  }
}

/**
 * Loads Whisper in a worker thread (stt/worker_client.ts): onnxruntime's runs block their thread,
 * and this one must keep reading the sockets meanwhile. The echo pipeline never starts it.
 */
async function loadStt(modelDir: string, options: ServerConfig["stt"]): Promise<SpeechToText> {
  try {
    const { loadWhisperWorker } = await import("./stt/worker_client.ts");
    return await loadWhisperWorker(modelDir, options);
  } catch (error) {
    throw new SttLoadError(modelDir, error);
  }
}

function status(
  online: boolean,
  config: Config,
  extra: Record<string, unknown> = {},
): ServerStatus {
  return {
    online,
    timestamp: new Date().toISOString(),
    version: SERVER_VERSION,
    pipeline: config.pipeline,
    ...extra,
  };
}

/** Starts everything; rejects (after undoing what had started) if any part cannot start. */
export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const { config, server } = options;
  const logger = (component: string): Logger =>
    createLogger(`server.${component}`, { level: config.logLevel });
  const log = logger("main");
  const undo: (() => Promise<void> | void)[] = [];
  const unwind = async () => {
    for (const step of undo.reverse()) {
      try {
        await step();
      } catch (error) {
        log.warn("shutdown step failed", { error });
      }
    }
  };
  try {
    // First start: MQTT users for the server and gateway roles, owner-only (credentials.ts).
    ensureRoleUsers(config.dataDir);
    let mqttConfig = config.mqtt;
    let mqttPort = config.mqtt.port;
    if (config.mqtt.embedded) {
      const certificate = config.mqtt.tls
        ? await ensureBrokerCertificate(config.dataDir)
        : undefined;
      const broker = await startEmbeddedBroker({
        host: server.mqttBindHost,
        port: config.mqtt.port,
        dataDir: config.dataDir,
        allowAnonymous: config.mqtt.allowAnonymous,
        tls: certificate && {
          cert: await Deno.readTextFile(certificate.cert),
          key: await Deno.readTextFile(certificate.key),
        },
        log: logger("broker"),
      });
      undo.push(() => broker.close());
      mqttPort = broker.port;
      mqttConfig = { ...config.mqtt, host: "127.0.0.1", port: broker.port };
      log.info("embedded MQTT broker listening", {
        host: server.mqttBindHost,
        port: broker.port,
        tls: broker.tls,
      });
      if (config.mqtt.allowAnonymous) {
        log.warn(
          `MQTT_ALLOW_ANONYMOUS=true: the embedded broker on ${server.mqttBindHost}:${broker.port} ` +
            "lets anyone who reaches it read and send every NAILA message",
        );
      }
    }
    mqttConfig = withStoredLogin(mqttConfig, config.dataDir, { role: "server" });
    // Filled in once the socket is listening; published (retained) on every MQTT connect, which
    // starts only then, so nobody sees the server online before it can answer.
    let online: Record<string, unknown> = {};
    const queue = new InferenceQueue({ limits: server.queue });
    const mqtt = new MqttLink(mqttConfig, {
      clientId: uniqueClientId("server"),
      will: { topic: { kind: "server_status" }, message: status(false, config) },
      online: () => status(true, config, { ...online, load: serverLoad(queue.load()) }),
      log: logger("mqtt"),
    });
    undo.push(() => mqtt.close(status(false, config)));

    // Media (spec 10.1, 11): vision starts on first use, so a voice-only server never loads it.
    let vision: Promise<Vision> | undefined = options.vision && Promise.resolve(options.vision);
    undo.push(async () => {
      if (vision !== undefined && options.vision === undefined) {
        await (await vision.catch(() => undefined))?.close();
      }
    });
    let store: MediaStore | undefined;
    if (server.media.storage === "alerts") {
      await Deno.mkdir(config.dataDir, { recursive: true });
      store = await MediaStore.open({
        dataDir: config.dataDir,
        databasePath: join(config.dataDir, DATABASE_FILE),
        retentionDays: server.media.retentionDays,
        retentionBytes: server.media.retentionBytes,
      });
      undo.push(() => store?.close());
    }
    let say: ((device: string, text: string) => void) | undefined;
    let recordingTurns = 0;
    const media: MediaService = new MediaService({
      link: mqtt,
      config: server.media,
      vision: () =>
        vision ??= import("./vision/mod.ts").then(({ createVision }) =>
          createVision({ maxBytes: server.media.maxUploadBytes })
        ),
      store,
      // A recording is a spoken turn without the socket: the pipeline with a sink that keeps
      // the text (the reply audio is spoken on the device through `say`).
      // It waits in the inference queue like any turn (spec 16.2: inference is sequential), so
      // a voice message never runs beside a live turn's STT.
      voiceTurn: async (device, audio) => {
        const turn = `recording_${++recordingTurns}`;
        const utterance = { device, turn, pcm: audio.pcm, rate: audio.rate, endedAt: Date.now() };
        const sink = { transcript() {}, reply() {}, audio() {} };
        try {
          const result = await queue.run(
            turn,
            (signal) => pipeline.run(utterance, sink, { signal, outputRate: audio.rate }),
            // A recording waits in its device's line like a spoken turn (fair across devices).
            { device, audioMs: (audio.pcm.length / 2 / audio.rate) * 1000 },
          );
          return { transcript: result.transcript, reply: result.reply };
        } catch (error) {
          if (error instanceof QueueError) throw new MediaError("busy", error.message);
          throw error;
        }
      },
      speak: (device, text) => say?.(device, text),
      // Spec 11.4: a gateway's live video frame (server/camera_frames.ts), before a snapshot.
      liveFrame: async (device, zone): Promise<Uint8Array | undefined> =>
        (await cameras.liveFrame(media.devices.liveCameras(device, zone)))?.jpeg,
      log: logger("media"),
    });
    const cameras: CameraFrames = new CameraFrames({
      analyse: (device, jpeg, frame): Promise<unknown> =>
        media.analyseCameraFrame(device, jpeg, frame),
      log: logger("cameras"),
    });
    undo.push(() => media.close());
    media.start();

    let pipeline: Pipeline;
    let notices: Notices;
    let details: Record<string, unknown> = {};
    if (config.pipeline === "echo") {
      pipeline = new EchoPipeline();
      // The echo pipeline speaks nothing of its own; its notices get an espeak-ng on first use.
      notices = new Notices(
        () => options.tts ? Promise.resolve(options.tts) : createTts({ engine: "espeak" }),
        { log: logger("notices"), owns: options.tts === undefined },
      );
      undo.push(() => notices.close());
    } else {
      const stt = options.stt ?? await loadStt(server.sttModelDir, server.stt);
      // A caller's own STT (tests) is the caller's to close.
      if (stt !== options.stt) undo.push(() => stt.close?.());
      const tts = options.tts ?? await createTts({
        engine: server.ttsEngine,
        voice: server.ttsVoice,
        piperVoice: server.piperVoice,
      });
      undo.push(() => tts.close?.());
      notices = new Notices(() => Promise.resolve(tts), { log: logger("notices"), owns: false });
      await Deno.mkdir(config.dataDir, { recursive: true });
      const assistantLog = logger("assistant");
      const publishCommand = (device: string, command: { command: string; params?: object }) => {
        mqtt.publish({ kind: "device_command", device }, {
          command: command.command,
          params: { ...command.params },
        }).catch((error) => assistantLog.warn("command not published", { device, error }));
      };
      const assistant = createAssistant({
        databasePath: join(config.dataDir, DATABASE_FILE),
        publishCommand,
        // Due timers: an `announce` command now, and the spoken text on the device's next turn.
        onTimerDue: (timer) => {
          assistantLog.info("timer due", { device: timer.device, timer: timer.id });
          publishCommand(timer.device, announceCommand(timer));
        },
        llm: server.llm,
        log: assistantLog,
        visual: (device, text) => media.answerQuestion(device, text),
      });
      undo.push(() => assistant.close());
      // Alerts and recording answers are spoken like a due timer: queued, then pulled by the
      // gateway's empty turn after an `announce` command.
      say = (device, text) => {
        assistant.say(device, text);
        publishCommand(device, { command: "announce", params: { text, reason: "media" } });
      };
      // Barge-ins the gateway reports as device events: the only way a v1 gateway (no cancel)
      // can tell the memory how much of a reply was heard; for v2 it repeats the cancel.
      mqtt.subscribe(topicFilter("device_events"), (topic, payload) => {
        if (topic.kind !== "device_events") return;
        const event = parseDeviceEvent(payload);
        if (!event.ok || event.value.type !== "interrupted") return;
        try {
          assistant.memory.markInterruptedByTurn(
            { device: topic.device, turn: event.value.turn },
            event.value.played_ms,
          );
        } catch (error) {
          assistantLog.warn("interruption not recorded", { device: topic.device, error });
        }
      });
      pipeline = new FullPipeline({
        stt,
        assistant,
        tts,
        log: logger("pipeline"),
        sttBatch: server.sttBatch,
      });
      details = { tts: tts.name, llm: server.llm?.model ?? null, stt: server.sttModelDir };
    }

    const socketLog = logger("audio_socket");
    // The audio socket's security events join the broker's on naila/server/audit (spec 17.3),
    // with the same rate limit per event kind and address.
    const socketAudit = new AuditLog({
      log: socketLog,
      publish: (event) => void mqtt.publish({ kind: "server_audit" }, event).catch(() => {}),
    });
    const socket = AudioSocketServer.listen({
      audit: (event, fields) => socketAudit.record(socketAuditRecord(event, fields)),
      host: config.socket.host,
      port: config.socket.port,
      pipeline,
      queue,
      log: socketLog,
      ...socketAccessOptions(config.socket.host, config.dataDir, server.audioSocket, socketLog),
      notices,
      cameras,
      queueTiming: { noticeMs: server.queueNoticeMs },
    });
    undo.push(() => socket.close());
    // The load on the status, at a bounded rate: at most once per LOAD_PUBLISH_MS, when changed,
    // and at once when it changes after a quiet second (a burst shorter than the period is seen).
    let published = JSON.stringify({ ...serverLoad(queue.load()), wait_ms: 0 });
    let publishedAt = 0;
    const loadTimer = setInterval(() => {
      if (performance.now() - publishedAt < LOAD_PUBLISH_MS) return;
      const load = serverLoad(queue.load());
      // The wait estimate drifts as the running turn proceeds; the queue's shape is what counts.
      const shape = JSON.stringify({ ...load, wait_ms: 0 });
      if (shape === published) return;
      published = shape;
      publishedAt = performance.now();
      void mqtt.republish();
    }, LOAD_CHECK_MS);
    undo.push(() => clearInterval(loadTimer));
    // Port and host name tell a gateway with several AI servers which link this load belongs to.
    online = { audio_socket_port: socket.port, hostname: Deno.hostname(), ...details };
    mqtt.start();
    // The embedded broker is up already: be online before saying ready. An external broker may
    // be down; the socket serves meanwhile and the status follows when it is reachable.
    if (config.mqtt.embedded) await mqtt.whenConnected();
    log.info("server ready", {
      audio_socket: `${socket.hostname}:${socket.port}`,
      mqtt_port: mqttPort,
      pipeline: pipeline.kind,
      ...details,
    });
    let closing: Promise<void> | undefined;
    return {
      audioPort: socket.port,
      mqttPort,
      pipeline,
      media,
      cameras,
      close: () => closing ??= unwind(),
    };
  } catch (error) {
    await unwind();
    throw error;
  }
}
