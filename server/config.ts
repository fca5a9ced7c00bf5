/**
 * Server-only settings, beside the shared ones of `shared/config.ts` (MQTT, socket, pipeline,
 * data dir, log level). Pure {@link loadServerConfig} throws the shared `ConfigError` naming the
 * variable, its value and what is allowed.
 *
 * | Variable | Default | Meaning |
 * |---|---|---|
 * | `MQTT_BIND_HOST` | `0.0.0.0` | Where the embedded broker listens (MQTT_HOST unset): the gateway on the Pi must reach it |
 * | `STT_MODEL_DIR` | `models/whisper-tiny.en` | Whisper ONNX export (encoder_model, decoder_model_merged, tokenizer) |
 * | `TTS_VOICE` | `en-us` | espeak-ng voice |
 * | `TTS_ENGINE` | `auto` | `auto` (Piper if a voice is in models/piper/), `espeak` or `piper` |
 * | `PIPER_VOICE` | unset | a Piper `.onnx` voice (its `.onnx.json` beside it) |
 * | `LLM_URL` | unset | OpenAI-compatible base URL, e.g. `http://127.0.0.1:8080/v1`; unset = built-in engine only |
 * | `LLM_MODEL` | `default` | Model name sent to the LLM server |
 * | `LLM_API_KEY` | unset | Bearer token, if the LLM server wants one |
 * | `LLM_TIMEOUT_MS` | `20000` | Bound on one LLM request |
 * | `STT_ENCODER_FRAMES` | the model's (3000) | Whisper encoder window in 10 ms frames, or `fit` (the utterance + a 2.56 s margin: several times less encoder work) |
 * | `STT_MAX_TOKENS` | `128` | Most tokens decoded per utterance |
 * | `STT_THREADS` | `2` | onnxruntime intra-op threads |
 * | `STT_BATCH` | `8` | Most queued utterances transcribed in one batched Whisper run (1: one at a time) |
 * | `INFERENCE_QUEUE_SIZE` | `256` | Turns that may wait for inference, all devices together (a last guard) |
 * | `QUEUE_MAX_AUDIO_S` | `600` | Seconds of audio that may wait for inference before a turn is refused (`busy`) |
 * | `QUEUE_MAX_WAIT_MS` | `20000` | A turn whose estimated wait exceeds this is refused at once, with a spoken apology |
 * | `QUEUE_MAX_BYTES` | `67108864` | Audio bytes all turns may buffer (receiving or queued) |
 * | `QUEUE_NOTICE_MS` | `1500` | A turn still waiting this long hears a spoken "one moment" (gateways with `queue`) |
 * | `AUDIO_SOCKET_AUTH` | `on` | `off` lets any peer use the audio socket without the shared secret (explicit opt-out; a one-line warning at start when reachable beyond loopback) |
 * | `AUDIO_SOCKET_ALLOW` | unset | Comma-separated addresses or CIDR ranges allowed to connect (spec 17.2); v1 gateways only from these |
 * | `AUDIO_SOCKET_TLS_CERT` | unset | PEM certificate (chain): serve the audio socket over TLS |
 * | `AUDIO_SOCKET_TLS_KEY` | unset | Its PEM private key; set both or neither |
 *
 * The queue is fair across devices (round-robin); see server/inference_queue.ts and
 * docs/protocol.md "Waiting for inference".
 *
 * MediaConfig (spec 14.1: upload size, formats, snapshot timeout, alerts, storage): the `MEDIA_*`
 * and `ALERT_*` variables of `server/media/config.ts`.
 */
import { ConfigError, type Env, envInteger, envOneOf, envValue } from "../shared/config.ts";
import { type IpRange, parseRanges } from "../shared/ip_ranges.ts";
import { DEFAULT_LLM_TIMEOUT_MS } from "./assistant/llm_client.ts";
import { DEFAULT_QUEUE_LIMITS, type QueueLimits } from "./inference_queue.ts";
import { DEFAULT_STT_BATCH } from "./pipeline.ts";
import { loadMediaConfig, type MediaConfig } from "./media/config.ts";

export type { MediaConfig } from "./media/config.ts";

/** The server's own settings. */
export interface ServerConfig {
  mqttBindHost: string;
  sttModelDir: string;
  /** Options passed to `loadWhisper` (server/stt/whisper.ts). */
  stt: { encoderFrames?: number | "fit"; maxTokens: number; threads: number };
  ttsVoice: string;
  ttsEngine: "auto" | "espeak" | "piper";
  piperVoice?: string;
  llm?: { url: string; model: string; apiKey?: string; timeoutMs: number };
  queue: QueueLimits;
  /** Most utterances per batched STT run (server/pipeline.ts). */
  sttBatch: number;
  /** ms a queued turn waits before the spoken "one moment". */
  queueNoticeMs: number;
  /** Snapshots, recordings, uploads, alerts and their storage (spec 14.1 MediaConfig). */
  media: MediaConfig;
  /** Who may use the audio socket (spec 17.2). */
  audioSocket: {
    /** Peers must prove the data directory's secret (docs/protocol.md "Authentication"). */
    auth: boolean;
    allow: IpRange[];
    /** PEM file paths: TLS on the audio socket. */
    tls?: { cert: string; key: string };
  };
}

function allowList(env: Env): IpRange[] {
  const raw = envValue(env, "AUDIO_SOCKET_ALLOW") ?? "";
  try {
    return parseRanges(raw);
  } catch (error) {
    throw new ConfigError(
      "AUDIO_SOCKET_ALLOW",
      raw,
      `comma-separated addresses or CIDR ranges (${(error as Error).message})`,
    );
  }
}

function socketTls(env: Env): { cert: string; key: string } | undefined {
  const cert = envValue(env, "AUDIO_SOCKET_TLS_CERT");
  const key = envValue(env, "AUDIO_SOCKET_TLS_KEY");
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    const missing = cert === undefined ? "AUDIO_SOCKET_TLS_CERT" : "AUDIO_SOCKET_TLS_KEY";
    throw new ConfigError(missing, "", "a PEM file path: set both TLS variables or neither");
  }
  return { cert, key };
}

/** Upper bounds of the queue variables: a day of audio, 10 min of waiting, 4 GiB, 1 min. */
const MAX_QUEUE_AUDIO_S = 86_400;
const MAX_QUEUE_WAIT_MS = 600_000;
const MAX_QUEUE_BYTES = 4 * 1024 ** 3;
const MAX_NOTICE_MS = 60_000;
/** A batch beyond 32 utterances only adds memory: the gain flattens by 8 (bench/capacity.json). */
const MAX_STT_BATCH = 32;
/** Default of QUEUE_NOTICE_MS (see server/audio_socket.ts DEFAULT_QUEUE_TIMING). */
const DEFAULT_NOTICE_MS = 1500;

/** Whisper's 30 s window in 10 ms mel frames; its decoder has 448 positions. */
const WHISPER_FRAMES = 3000;

function engine(env: Env): ServerConfig["ttsEngine"] {
  const raw = envValue(env, "TTS_ENGINE") ?? "auto";
  if (raw !== "auto" && raw !== "espeak" && raw !== "piper") {
    throw new ConfigError("TTS_ENGINE", raw, "auto|espeak|piper");
  }
  return raw;
}

/** Reads the server-only variables from `env`. */
export function loadServerConfig(env: Env): ServerConfig {
  const ttsVoice = envValue(env, "TTS_VOICE") ?? "en-us";
  if (!/^[A-Za-z0-9_+\-]{1,40}$/.test(ttsVoice)) {
    throw new ConfigError("TTS_VOICE", ttsVoice, "an espeak-ng voice name such as en-us");
  }
  const mqttBindHost = envValue(env, "MQTT_BIND_HOST") ?? "0.0.0.0";
  if (!/^[A-Za-z0-9._:\-\[\]%]{1,253}$/.test(mqttBindHost)) {
    throw new ConfigError("MQTT_BIND_HOST", mqttBindHost, "a host name or IP address");
  }
  const config: ServerConfig = {
    mqttBindHost,
    sttModelDir: envValue(env, "STT_MODEL_DIR") ?? "models/whisper-tiny.en",
    stt: {
      maxTokens: envInteger(env, "STT_MAX_TOKENS", 128, 1, 448),
      threads: envInteger(env, "STT_THREADS", 2, 1, 64),
    },
    ttsVoice,
    ttsEngine: engine(env),
    queue: {
      maxWaiting: envInteger(env, "INFERENCE_QUEUE_SIZE", DEFAULT_QUEUE_LIMITS.maxWaiting, 0, 4096),
      maxQueuedAudioMs: 1000 * envInteger(
        env,
        "QUEUE_MAX_AUDIO_S",
        DEFAULT_QUEUE_LIMITS.maxQueuedAudioMs / 1000,
        0,
        MAX_QUEUE_AUDIO_S,
      ),
      maxWaitMs: envInteger(
        env,
        "QUEUE_MAX_WAIT_MS",
        DEFAULT_QUEUE_LIMITS.maxWaitMs,
        0,
        MAX_QUEUE_WAIT_MS,
      ),
      maxBufferedBytes: envInteger(
        env,
        "QUEUE_MAX_BYTES",
        DEFAULT_QUEUE_LIMITS.maxBufferedBytes,
        0,
        MAX_QUEUE_BYTES,
      ),
    },
    sttBatch: envInteger(env, "STT_BATCH", DEFAULT_STT_BATCH, 1, MAX_STT_BATCH),
    queueNoticeMs: envInteger(env, "QUEUE_NOTICE_MS", DEFAULT_NOTICE_MS, 0, MAX_NOTICE_MS),
    media: loadMediaConfig(env),
    audioSocket: {
      auth: envOneOf(env, "AUDIO_SOCKET_AUTH", ["on", "off"], "on") === "on",
      allow: allowList(env),
    },
  };
  const tls = socketTls(env);
  if (tls !== undefined) config.audioSocket.tls = tls;
  // Unset: the model's own window (its config), as loadWhisper decides.
  const frames = envValue(env, "STT_ENCODER_FRAMES");
  if (frames !== undefined) {
    config.stt.encoderFrames = frames === "fit"
      ? "fit"
      : envInteger(env, "STT_ENCODER_FRAMES", WHISPER_FRAMES, 2, WHISPER_FRAMES);
  }
  const piperVoice = envValue(env, "PIPER_VOICE");
  if (piperVoice !== undefined) config.piperVoice = piperVoice;
  const url = envValue(env, "LLM_URL");
  if (url !== undefined) {
    if (!/^https?:\/\/[^\s]+$/.test(url)) {
      throw new ConfigError("LLM_URL", url, "an http(s) URL such as http://127.0.0.1:8080/v1");
    }
    config.llm = {
      url,
      model: envValue(env, "LLM_MODEL") ?? "default",
      timeoutMs: envInteger(env, "LLM_TIMEOUT_MS", DEFAULT_LLM_TIMEOUT_MS, 100, 600_000),
    };
    const apiKey = envValue(env, "LLM_API_KEY");
    if (apiKey !== undefined) config.llm.apiKey = apiKey;
  }
  return config;
}
