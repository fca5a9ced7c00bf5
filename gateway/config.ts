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
 * | `GATEWAY_ECHO_GUARD` | `raise` | `raise`, `half_duplex` or `off` (gateway/README.md) |
 * | `AUDIO_VAD_MODEL` | `models/silero_vad_v5.onnx` | Silero v5 model file |
 * | `AI_SERVER_TIMEOUT_MS` | `10000` | Response timeout per turn (spec 4.4) |
 * | `GATEWAY_METRICS_INTERVAL_MS` | `5000` | Period of `naila/gateway/metrics` |
 * | `VIDEO_*` | see docs/video.md | Cameras: resolution, frame rate, caps, motion (VideoConfig) |
 * | `GATEWAY_MQTT_CLIENT_ID` | `naila-gateway-{host}-{random}` | MQTT client id (unique per process unless set) |
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
import { RESPONSE_TIMEOUT_MS } from "./ai_turn.ts";
import type { EchoGuard } from "./audio_input.ts";
import { loadVideoConfig, type VideoConfig } from "./video/video_config.ts";

/** Spec 8.3 telemetry: every few seconds, QoS 0. */
export const METRICS_INTERVAL_MS = 5000;
/** Where `deno task models` puts Silero VAD v5. */
export const DEFAULT_SILERO_PATH = new URL("../models/silero_vad_v5.onnx", import.meta.url)
  .pathname;

const ECHO_GUARDS: readonly EchoGuard[] = ["raise", "half_duplex", "off"];
/** Below 100 ms a timeout or metrics period is a typo for seconds, not a setting. */
const MIN_INTERVAL_MS = 100;
/** A reply that takes 10 minutes to start is a dead server. */
const MAX_TIMEOUT_MS = 600_000;
/** Metrics less often than hourly are no telemetry. */
const MAX_METRICS_INTERVAL_MS = 3_600_000;
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
  };
  echoGuard: EchoGuard;
  sileroPath: string;
  responseTimeoutMs: number;
  metricsIntervalMs: number;
  /** Unset: a unique id per process (`uniqueClientId("gateway")` in shared/mqtt.ts). */
  mqttClientId?: string;
  /** Cameras: VIDEO_* (docs/video.md). */
  video: VideoConfig;
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

/** Reads the gateway-only variables from `env`; TLS files are checked for readability here. */
export function loadGatewayConfig(env: Env): GatewayConfig {
  const web: GatewayConfig["web"] = {
    enabled: envOneOf(env, "GATEWAY_WEB", ["on", "off"], "on", { ignoreCase: true }) === "on",
    host: envHost(env, "GATEWAY_HTTP_HOST", "0.0.0.0"),
    port: envPort(env, "GATEWAY_HTTP_PORT", 8080),
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
    echoGuard: envOneOf(env, "GATEWAY_ECHO_GUARD", ECHO_GUARDS, "raise"),
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
    video: loadVideoConfig(env),
  };
}
