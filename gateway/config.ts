/**
 * Gateway-only settings, beside the shared ones of `shared/config.ts` (MQTT, AI server address,
 * WebRTC, audio, log level). They live here, not in shared/, because only the gateway reads them
 * and they name gateway concepts (echo guard, device page, Silero file); the server never sees
 * them. Pure {@link loadGatewayConfig} throws the shared `ConfigError` naming the variable, its
 * value and what is allowed; `loadOrExit(loadGatewayConfig)` turns that into exit code 2.
 *
 * | Variable | Default | Meaning |
 * |---|---|---|
 * | `GATEWAY_HTTP_HOST` | `0.0.0.0` | Where the browser device page listens |
 * | `GATEWAY_HTTP_PORT` | `8080` | Its port |
 * | `GATEWAY_TLS_CERT` | unset | PEM certificate (chain) file: serve the page over HTTPS |
 * | `GATEWAY_TLS_KEY` | unset | PEM private key file; set both TLS variables or neither |
 * | `GATEWAY_WEB` | `on` | `off` disables the device page |
 * | `GATEWAY_ECHO_GUARD` | `estimate` | `estimate`, `raise`, `half_duplex` or `off` (gateway/README.md) |
 * | `GATEWAY_ECHO_MARGIN_DB` | `6` | `estimate`: dB mic speech must be above the predicted echo |
 * | `AUDIO_STALL_HOLD_MS` | `1000` | A device silent this long on the media clock is heard as silent |
 * | `TURN_MAX_MS` | `120000` | Longest request streamed as one v2 turn to a server that allows it |
 * | `TURN_GRACE_MS` | `800` | Speech this soon after the reply starts continues the request (not a barge-in) |
 * | `TURN_CONTINUE_MAX_MS` | `3000` | Speech this soon after an utterance ended, reply not yet started, continues it |
 * | `TURN_INCOMPLETE_MAX_MS` | `1200` | Longest silence an unfinished request ("set a timer for") is given |
 * | `AUDIO_VAD_MODEL` | `models/silero_vad_v5.onnx` | Silero v5 model file |
 * | `AI_SERVER_TIMEOUT_MS` | `10000` | Response timeout per turn (spec 4.4) |
 * | `GATEWAY_METRICS_INTERVAL_MS` | `5000` | Period of `naila/gateway/metrics` |
 * | `GATEWAY_WORKERS` | `0` | Session worker threads (0: on the main thread; docs/scaling.md) |
 * | `VIDEO_*` | see docs/video.md | Cameras: resolution, frame rate, caps, motion (VideoConfig) |
 * | `GATEWAY_MQTT_CLIENT_ID` | `naila-gateway-{host}-{random}` | MQTT client id (unique per process unless set) |
 * | `GATEWAY_PAIRING` | `on` | `off`: the device page needs no pairing token (explicit opt-out; warned at start when reachable beyond loopback) |
 * | `GATEWAY_WEB_ORIGINS` | unset | Comma-separated origins allowed besides the page's own (e.g. behind a reverse proxy) |
 * | `GATEWAY_WEB_MAX_SOCKETS` | `16` | Device-page sockets open at once |
 * | `GATEWAY_MAX_DEVICES` | `64` | Devices with a session at once; more are refused on their events topic |
 * | `WEBRTC_ALLOWED_CANDIDATE_RANGES` | private LAN + loopback | Comma-separated CIDR ranges a device's ICE candidates may name; others are dropped |
 * | `WEBRTC_MAX_CANDIDATES` | `20` | Remote ICE candidates accepted per session |
 * | `AI_SERVER_SECRET` | unset | The audio-socket secret (a remote gateway); unset: `AI_SERVER_SECRET_FILE`, else the data dir's `secrets/audio_socket_secret` (one machine) |
 * | `AI_SERVER_SECRET_FILE` | unset | A file holding the secret (first line) |
 * | `AI_SERVER_AUTH` | `on` | `off`: connect without authenticating (a server with `AUDIO_SOCKET_AUTH=off`) |
 * | `AI_SERVER_TLS` | `off` | `on`: connect to the audio socket over TLS |
 * | `AI_SERVER_CA` | unset | PEM CA certificate to trust for that TLS (else the system's) |
 *
 * @example
 * ```ts
 * const gateway = loadGatewayConfig({ GATEWAY_ECHO_GUARD: "off" });
 * gateway.http.port; // 8080
 * ```
 */
import {
  ConfigError,
  type Env,
  envHost,
  envInteger,
  envOneOf,
  envPort,
  envValue,
} from "../shared/config.ts";
import { readSecretFile, secretProblem } from "../shared/audio_auth.ts";
import { type IpRange, LAN_RANGES, parseRanges } from "../shared/ip_ranges.ts";
import { RESPONSE_TIMEOUT_MS } from "./ai_turn.ts";
import type { EchoGuard } from "./echo_guard.ts";
import { ECHO_MARGIN_DB } from "./echo_path.ts";
import { DEFAULT_STALL_HOLD_MS } from "./audio_receiver.ts";
import { DEFAULT_TURN_MAX_MS, MAX_UTTERANCE_MS } from "./utterance_segmenter.ts";
import {
  DEFAULT_CONTINUE_MAX_MS,
  DEFAULT_GRACE_MS,
  DEFAULT_INCOMPLETE_MAX_MS,
} from "./turn_taking.ts";

/** Upper bound of the turn-taking waits: past 10 s a pause is a new request, not a hesitation. */
const MAX_TURN_WAIT_MS = 10_000;
import { loadVideoConfig, type VideoConfig } from "./video/video_config.ts";

/** Spec 8.3 telemetry: every few seconds, QoS 0. */
export const METRICS_INTERVAL_MS = 5000;
/** Where `deno task models` puts Silero VAD v5. */
export const DEFAULT_SILERO_PATH = new URL("../models/silero_vad_v5.onnx", import.meta.url)
  .pathname;

const ECHO_GUARDS: readonly EchoGuard[] = ["estimate", "raise", "half_duplex", "off"];
/** `echo_path.ts` accepts margins of 0..40 dB; beyond 40 dB nobody could barge in. */
const MAX_ECHO_MARGIN_DB = 40;
/** A stall hold under 100 ms is shorter than ordinary jitter: every hiccup would end a turn. */
const MIN_STALL_HOLD_MS = 100;
/** Over 10 s a device that vanished would hold its turn open far too long. */
const MAX_STALL_HOLD_MS = 10_000;
/** Ten minutes of speech is no request; the server must hold the whole turn in memory. */
const MAX_TURN_MS = 600_000;
/** Below 100 ms a timeout or metrics period is a typo for seconds, not a setting. */
const MIN_INTERVAL_MS = 100;
/** A reply that takes 10 minutes to start is a dead server. */
const MAX_TIMEOUT_MS = 600_000;
/** Metrics less often than hourly are no telemetry. */
const MAX_METRICS_INTERVAL_MS = 3_600_000;
/** Device-page sockets at once: a household's open pages; beyond it is a flood. */
export const DEFAULT_MAX_SOCKETS = 16;
/**
 * Devices at once: a 2-core machine served 40 full-duplex devices within its frame deadlines
 * (README "Benchmarks"); 64 leaves room for listening-only devices and still stops a flood.
 */
export const DEFAULT_MAX_DEVICES = 64;
/** Remote ICE candidates per session: a device has a few interfaces, each a host and a srflx. */
export const DEFAULT_MAX_CANDIDATES = 20;
/** Largest value of a cap setting: beyond it a typo, not a home. */
const MAX_CAP = 10_000;
/** Client ids brokers accept everywhere: MQTT 3.1.1 guarantees 23 characters, most allow more. */
const CLIENT_ID = /^[A-Za-z0-9_.\-]{1,64}$/;

/** The gateway's own settings. */
export interface GatewayConfig {
  /** The browser device page (gateway/web_bridge.ts); `tls` present means HTTPS. */
  web: {
    enabled: boolean;
    host: string;
    port: number;
    tls?: { cert: string; key: string };
    /** Browsers must be paired (shared/web_pairing.ts). */
    pairing: boolean;
    origins: string[];
    maxSockets: number;
  };
  /** Devices with a session at once. */
  maxDevices: number;
  /** Which remote ICE candidates a session uses (spec 17.1). */
  candidates: { allowed: IpRange[]; max: number };
  echoGuard: EchoGuard;
  /** GATEWAY_ECHO_MARGIN_DB, dB. */
  echoMarginDb: number;
  /** AUDIO_STALL_HOLD_MS. */
  stallHoldMs: number;
  /** TURN_MAX_MS: a v2 turn's audio cap when the server accepts long turns. */
  turnMaxMs: number;
  /** TURN_GRACE_MS, TURN_CONTINUE_MAX_MS, TURN_INCOMPLETE_MAX_MS (gateway/turn_taking.ts). */
  turnTaking: { graceMs: number; continueMaxMs: number; incompleteMaxMs: number };
  sileroPath: string;
  responseTimeoutMs: number;
  metricsIntervalMs: number;
  /** Unset: a unique id per process (`uniqueClientId("gateway")` in shared/mqtt.ts). */
  mqttClientId?: string;
  /** GATEWAY_WORKERS: session worker threads (0: sessions on the main thread; docs/scaling.md). */
  workers: number;
  /** How the gateway proves itself to the AI server (docs/protocol.md "Authentication"). */
  aiServer: {
    auth: boolean;
    /** From AI_SERVER_SECRET or AI_SERVER_SECRET_FILE; unset: the data dir's, read at connect. */
    secret?: string;
    tls?: { caCerts: string[] };
  };
  /** Cameras: VIDEO_* (docs/video.md). */
  video: VideoConfig;
}

function loadAiServerAccess(env: Env): GatewayConfig["aiServer"] {
  const access: GatewayConfig["aiServer"] = {
    auth: envOneOf(env, "AI_SERVER_AUTH", ["on", "off"], "on") === "on",
  };
  const secret = envValue(env, "AI_SERVER_SECRET");
  const file = envValue(env, "AI_SERVER_SECRET_FILE");
  if (secret !== undefined) {
    const problem = secretProblem(secret);
    if (problem !== undefined) {
      throw new ConfigError("AI_SERVER_SECRET", "(hidden)", `a secret: it ${problem}`);
    }
    access.secret = secret;
  } else if (file !== undefined) {
    try {
      access.secret = readSecretFile(file);
    } catch (error) {
      throw new ConfigError("AI_SERVER_SECRET_FILE", file, (error as Error).message);
    }
  }
  if (envOneOf(env, "AI_SERVER_TLS", ["on", "off"], "off") === "on") {
    const ca = envValue(env, "AI_SERVER_CA");
    access.tls = {
      caCerts: ca === undefined ? [] : [
        Deno.readTextFileSync(
          pemFile("AI_SERVER_CA", ca, /-----BEGIN CERTIFICATE-----/, "certificate"),
        ),
      ],
    };
  }
  return access;
}

/** Reads a PEM file at start, so a wrong path or an unreadable file stops the gateway there. */
function pemFile(name: string, path: string, label: RegExp, what: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    throw new ConfigError(name, path, `a readable PEM ${what} file (${(error as Error).name})`);
  }
  if (!label.test(text)) throw new ConfigError(name, path, `a PEM file holding a ${what}`);
  return path;
}

function loadTls(env: Env): GatewayConfig["web"]["tls"] {
  const cert = envValue(env, "GATEWAY_TLS_CERT");
  const key = envValue(env, "GATEWAY_TLS_KEY");
  if (cert === undefined && key === undefined) return undefined;
  if (key === undefined) {
    throw new ConfigError("GATEWAY_TLS_KEY", "", "a key file path when GATEWAY_TLS_CERT is set");
  }
  if (cert === undefined) {
    throw new ConfigError(
      "GATEWAY_TLS_CERT",
      "",
      "a certificate file path when GATEWAY_TLS_KEY is set",
    );
  }
  return {
    cert: pemFile("GATEWAY_TLS_CERT", cert, /-----BEGIN CERTIFICATE-----/, "certificate"),
    key: pemFile("GATEWAY_TLS_KEY", key, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, "private key"),
  };
}

/** Most session workers: more threads than a Pi's cores only add switching. */
const MAX_WORKERS = 16;

/** Reads the gateway-only variables from `env`; TLS files are checked for readability here. */
export function loadGatewayConfig(env: Env): GatewayConfig {
  const web: GatewayConfig["web"] = {
    enabled: envOneOf(env, "GATEWAY_WEB", ["on", "off"], "on", { ignoreCase: true }) === "on",
    host: envHost(env, "GATEWAY_HTTP_HOST", "0.0.0.0"),
    port: envPort(env, "GATEWAY_HTTP_PORT", 8080),
    pairing: envOneOf(env, "GATEWAY_PAIRING", ["on", "off"], "on") === "on",
    origins: webOrigins(env),
    maxSockets: envInteger(env, "GATEWAY_WEB_MAX_SOCKETS", DEFAULT_MAX_SOCKETS, 1, MAX_CAP),
  };
  const tls = loadTls(env);
  if (tls !== undefined) web.tls = tls;
  const mqttClientId = envValue(env, "GATEWAY_MQTT_CLIENT_ID");
  if (mqttClientId !== undefined && !CLIENT_ID.test(mqttClientId)) {
    throw new ConfigError(
      "GATEWAY_MQTT_CLIENT_ID",
      mqttClientId,
      "1 to 64 letters, digits, '_', '.' or '-'",
    );
  }
  return {
    web,
    echoGuard: envOneOf(env, "GATEWAY_ECHO_GUARD", ECHO_GUARDS, "estimate"),
    echoMarginDb: envInteger(env, "GATEWAY_ECHO_MARGIN_DB", ECHO_MARGIN_DB, 0, MAX_ECHO_MARGIN_DB),
    stallHoldMs: envInteger(
      env,
      "AUDIO_STALL_HOLD_MS",
      DEFAULT_STALL_HOLD_MS,
      MIN_STALL_HOLD_MS,
      MAX_STALL_HOLD_MS,
    ),
    turnMaxMs: envInteger(env, "TURN_MAX_MS", DEFAULT_TURN_MAX_MS, MAX_UTTERANCE_MS, MAX_TURN_MS),
    turnTaking: {
      graceMs: envInteger(env, "TURN_GRACE_MS", DEFAULT_GRACE_MS, 0, MAX_TURN_WAIT_MS),
      continueMaxMs: envInteger(
        env,
        "TURN_CONTINUE_MAX_MS",
        DEFAULT_CONTINUE_MAX_MS,
        0,
        MAX_TURN_WAIT_MS,
      ),
      incompleteMaxMs: envInteger(
        env,
        "TURN_INCOMPLETE_MAX_MS",
        DEFAULT_INCOMPLETE_MAX_MS,
        0,
        MAX_TURN_WAIT_MS,
      ),
    },
    sileroPath: envValue(env, "AUDIO_VAD_MODEL") ?? DEFAULT_SILERO_PATH,
    responseTimeoutMs: envInteger(
      env,
      "AI_SERVER_TIMEOUT_MS",
      RESPONSE_TIMEOUT_MS,
      MIN_INTERVAL_MS,
      MAX_TIMEOUT_MS,
    ),
    metricsIntervalMs: envInteger(
      env,
      "GATEWAY_METRICS_INTERVAL_MS",
      METRICS_INTERVAL_MS,
      MIN_INTERVAL_MS,
      MAX_METRICS_INTERVAL_MS,
    ),
    mqttClientId,
    workers: envInteger(env, "GATEWAY_WORKERS", 0, 0, MAX_WORKERS),
    aiServer: loadAiServerAccess(env),
    maxDevices: envInteger(env, "GATEWAY_MAX_DEVICES", DEFAULT_MAX_DEVICES, 1, MAX_CAP),
    candidates: {
      allowed: candidateRanges(env),
      max: envInteger(env, "WEBRTC_MAX_CANDIDATES", DEFAULT_MAX_CANDIDATES, 1, MAX_CAP),
    },
    video: loadVideoConfig(env),
  };
}

function webOrigins(env: Env): string[] {
  const raw = envValue(env, "GATEWAY_WEB_ORIGINS") ?? "";
  const origins = raw.split(",").map((o) => o.trim()).filter((o) => o !== "");
  for (const origin of origins) {
    if (!/^https?:\/\/[A-Za-z0-9.\-\[\]:]+$/.test(origin)) {
      throw new ConfigError("GATEWAY_WEB_ORIGINS", raw, "origins such as https://naila.home:8443");
    }
  }
  return origins;
}

function candidateRanges(env: Env): IpRange[] {
  const raw = envValue(env, "WEBRTC_ALLOWED_CANDIDATE_RANGES");
  if (raw === undefined) return [...LAN_RANGES];
  try {
    return parseRanges(raw);
  } catch (error) {
    throw new ConfigError(
      "WEBRTC_ALLOWED_CANDIDATE_RANGES",
      raw,
      `comma-separated CIDR ranges (${(error as Error).message})`,
    );
  }
}
