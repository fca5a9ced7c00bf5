/**
 * Configuration both processes read from environment variables (spec 14.2 plus NAILA's own),
 * grouped into typed sections. {@link loadConfig} is pure and throws a {@link ConfigError}
 * naming the variable, its value and what is allowed; {@link configFromEnv} reads `Deno.env`,
 * prints that error as one line and exits with code 2. Variables only one process reads live
 * beside it (`server/config.ts`, `gateway/config.ts`), built from the same `env*` readers.
 *
 * An empty value counts as unset, so `MQTT_HOST=` in an env file means "embedded broker".
 *
 * @example
 * ```ts
 * import { loadConfig } from "@naila/shared/config";
 * const config = loadConfig({ MQTT_HOST: "main-server.local", LOG_LEVEL: "debug" });
 * config.mqtt.port; // 1883
 * ```
 */
import { isIP } from "node:net";
import { INT16_SCALE } from "./audio.ts";
import { ALLOWED_SAMPLE_RATES, type SampleRate } from "./frame_codec.ts";
import { LOG_LEVEL_NAMES, type LogLevel, parseLogLevel } from "./log.ts";

/** Exit code of {@link configFromEnv} on a bad variable (2: usage error, as in sysexits/bash). */
export const CONFIG_EXIT_CODE = 2;
/** AUDIO_SAMPLE_RATE must be one the wire protocol allows (docs/protocol.md). */
export const SAMPLE_RATES = ALLOWED_SAMPLE_RATES;
/** Highest 16-bit PCM amplitude: the ceiling of an energy VAD threshold. */
const MAX_PCM_AMPLITUDE = INT16_SCALE - 1;
/** Most silence frames: 1000 × 20 ms = 20 s, far beyond any end-of-utterance pause. */
const MAX_SILENCE_FRAMES = 1000;
/** Longest DNS name (RFC 1035). */
const MAX_HOST_CHARS = 253;

/** One ICE server, the shape of WebRTC's RTCIceServer. */
export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

/** MQTT connection settings. */
export interface MqttConfig {
  /** True when MQTT_HOST is unset: run the embedded broker and connect to it on loopback. */
  embedded: boolean;
  host: string;
  port: number;
  /** MQTT_USERNAME/MQTT_PASSWORD; unset: the stored login of the data dir (credentials.ts). */
  username?: string;
  password?: string;
  /** MQTT_PASSWORD_FILE: a file holding the password (kept out of the environment); read by `mqtt.ts`. */
  passwordFile?: string;
  /**
   * Present when TLS is on; file paths of PEM files (read by `mqtt.ts`). With the embedded broker
   * the server generates a CA and certificate into the data dir (certificates.ts) and listens
   * with TLS; clients trust that CA unless MQTT_CA names another.
   */
  tls?: { ca?: string; cert?: string; key?: string };
  /** MQTT_ALLOW_ANONYMOUS=true: the embedded broker lets clients in without a login (opt-out). */
  allowAnonymous?: boolean;
}

/** The loaded configuration. */
export interface Config {
  mqtt: MqttConfig;
  /**
   * The AI server(s): `host`/`port` is the first of `servers`, which lists every entry of a
   * comma-separated AI_SERVER_HOST (`host[:port]`, port default AI_SERVER_PORT; docs/scaling.md).
   */
  aiServer: {
    host: string;
    port: number;
    protocol: "v1" | "v2";
    servers: { host: string; port: number }[];
  };
  webrtc: { iceServers: IceServer[]; hostAddresses: string[] };
  audio: {
    /** "auto": silero when the model file exists, else energy (resolved by the gateway). */
    vadMode: "auto" | "energy" | "silero";
    vadThreshold: number;
    silenceFrames: number;
    sampleRate: SampleRate;
  };
  socket: { host: string; port: number };
  pipeline: "full" | "echo";
  logLevel: LogLevel;
  dataDir: string;
}

/** A variable with a value that is not allowed. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly value: string,
    readonly allowed: string,
  ) {
    super(`${variable}=${JSON.stringify(value)} is not allowed: expected ${allowed}`);
    this.name = "ConfigError";
  }
}

/** Environment variables by name; a loader reads only the ones it knows. */
export type Env = Record<string, string | undefined>;

/**
 * The readers below are shared by every loader (this one, `server/config.ts`,
 * `gateway/config.ts`) so each variable fails the same way.
 */

/** The trimmed value of `name`, or undefined when it is unset or empty. */
export function envValue(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

/** An integer in `min..max`, or `fallback` when unset. */
export function envInteger(
  env: Env,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = envValue(env, name);
  if (raw === undefined) return fallback;
  const allowed = `an integer ${min}..${max}`;
  if (!/^[0-9]+$/.test(raw)) throw new ConfigError(name, raw, allowed);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, raw, allowed);
  return value;
}

/** A TCP port (1..65535), or `fallback` when unset. */
export function envPort(env: Env, name: string, fallback: number): number {
  return envInteger(env, name, fallback, 1, 65535);
}

/** One of `allowed`, or `fallback` when unset. */
export function envOneOf<T extends string>(
  env: Env,
  name: string,
  allowed: readonly T[],
  fallback: T,
  options: { ignoreCase?: boolean } = {},
): T {
  const raw = envValue(env, name);
  if (raw === undefined) return fallback;
  const value = options.ignoreCase ? raw.toLowerCase() : raw;
  const match = allowed.find((a) => (options.ignoreCase ? a.toLowerCase() : a) === value);
  if (match === undefined) throw new ConfigError(name, raw, allowed.join("|"));
  return match;
}

/** Most AI servers one AI_SERVER_HOST may list: a home needs a few; bounds links and timers. */
export const MAX_AI_SERVERS = 16;

/**
 * AI_SERVER_HOST as a comma-separated list of `host[:port]` (`[v6]:port` for IPv6 with a port;
 * a bare IPv6 address takes AI_SERVER_PORT). Throws a ConfigError naming the bad entry.
 */
export function aiServers(env: Env): Config["aiServer"] {
  const port = envPort(env, "AI_SERVER_PORT", 9999);
  const protocol = envOneOf(env, "AI_SERVER_PROTOCOL", ["v1", "v2"], "v2");
  const raw = envValue(env, "AI_SERVER_HOST") ?? "127.0.0.1";
  const entries = raw.split(",").map((entry) => entry.trim());
  if (entries.length > MAX_AI_SERVERS) {
    throw new ConfigError("AI_SERVER_HOST", raw, `at most ${MAX_AI_SERVERS} host[:port] entries`);
  }
  const servers = entries.map((entry) => {
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    const hostPort = /^([^:]+):(\d+)$/.exec(entry);
    const [host, portText] = bracketed
      ? [bracketed[1], bracketed[2]]
      : hostPort
      ? [hostPort[1], hostPort[2]]
      : [entry, undefined];
    const one = { AI_SERVER_HOST: host, AI_SERVER_PORT: portText };
    return {
      host: envHost(one, "AI_SERVER_HOST", ""),
      port: portText === undefined ? port : envPort(one, "AI_SERVER_PORT", port),
    };
  });
  if (servers.some((server) => server.host === "")) {
    throw new ConfigError("AI_SERVER_HOST", raw, "comma-separated host[:port] entries, none empty");
  }
  return { host: servers[0].host, port: servers[0].port, protocol, servers };
}

/** A host name or IP address, or `fallback` when unset. */
export function envHost(env: Env, name: string, fallback: string): string {
  const raw = envValue(env, name);
  if (raw === undefined) return fallback;
  if (raw.length > MAX_HOST_CHARS || !/^[A-Za-z0-9._:\-\[\]%]+$/.test(raw)) {
    throw new ConfigError(
      name,
      raw,
      `a host name or IP address (at most ${MAX_HOST_CHARS} characters)`,
    );
  }
  return raw;
}

function bool(env: Env, name: string): boolean | undefined {
  const raw = envValue(env, name);
  if (raw === undefined) return undefined;
  const value = raw.toLowerCase();
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new ConfigError(name, raw, "true|false");
}

function loadMqtt(env: Env): MqttConfig {
  const configuredHost = envValue(env, "MQTT_HOST");
  const embedded = configuredHost === undefined;
  const ca = envValue(env, "MQTT_CA");
  const cert = envValue(env, "MQTT_CERT");
  const key = envValue(env, "MQTT_KEY");
  const username = envValue(env, "MQTT_USERNAME");
  const password = envValue(env, "MQTT_PASSWORD");
  const passwordFile = envValue(env, "MQTT_PASSWORD_FILE");
  if (password !== undefined && passwordFile !== undefined) {
    throw new ConfigError("MQTT_PASSWORD_FILE", passwordFile, "unset when MQTT_PASSWORD is set");
  }
  if (passwordFile !== undefined && username === undefined) {
    throw new ConfigError("MQTT_USERNAME", "", "a user name when MQTT_PASSWORD_FILE is set");
  }
  const explicitTls = bool(env, "MQTT_TLS");
  if (cert !== undefined && key === undefined) {
    throw new ConfigError("MQTT_KEY", "", "a key file path when MQTT_CERT is set");
  }
  if (key !== undefined && cert === undefined) {
    throw new ConfigError("MQTT_CERT", "", "a certificate file path when MQTT_KEY is set");
  }
  if (explicitTls === false && (ca !== undefined || cert !== undefined)) {
    throw new ConfigError(
      "MQTT_TLS",
      env.MQTT_TLS ?? "",
      "true or unset when MQTT_CA or MQTT_CERT is set",
    );
  }
  const tlsOn = explicitTls ?? (ca !== undefined || cert !== undefined);
  if (password !== undefined && username === undefined) {
    throw new ConfigError("MQTT_USERNAME", "", "a user name when MQTT_PASSWORD is set");
  }
  const config: MqttConfig = {
    embedded,
    host: embedded ? "127.0.0.1" : envHost(env, "MQTT_HOST", "127.0.0.1"),
    port: envPort(env, "MQTT_PORT", 1883),
  };
  if (bool(env, "MQTT_ALLOW_ANONYMOUS") === true) config.allowAnonymous = true;
  if (username !== undefined) config.username = username;
  if (password !== undefined) config.password = password;
  if (passwordFile !== undefined) config.passwordFile = passwordFile;
  if (tlsOn) {
    config.tls = {};
    if (ca !== undefined) config.tls.ca = ca;
    if (cert !== undefined) config.tls.cert = cert;
    if (key !== undefined) config.tls.key = key;
  }
  return config;
}

const ICE_URL = /^(stun|stuns|turn|turns):[^\s]+$/;
const ICE_ALLOWED =
  'a JSON array of "stun:"/"turn:" URLs or {urls, username?, credential?} objects';

function loadIceServers(env: Env): IceServer[] {
  const raw = envValue(env, "WEBRTC_ICE_SERVERS");
  if (raw === undefined) return [];
  const fail = (): never => {
    throw new ConfigError("WEBRTC_ICE_SERVERS", raw, ICE_ALLOWED);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    fail();
  }
  if (!Array.isArray(parsed)) fail();
  const isUrl = (u: unknown) => typeof u === "string" && ICE_URL.test(u);
  const isOptionalString = (v: unknown) => v === undefined || typeof v === "string";
  return (parsed as unknown[]).map((entry): IceServer => {
    if (isUrl(entry)) return { urls: entry as string };
    if (typeof entry !== "object" || entry === null) return fail();
    const { urls, username, credential } = entry as Record<string, unknown>;
    const urlsOk = isUrl(urls) || (Array.isArray(urls) && urls.length > 0 && urls.every(isUrl));
    if (!urlsOk || !isOptionalString(username) || !isOptionalString(credential)) fail();
    const server: IceServer = { urls: urls as string | string[] };
    if (username !== undefined) server.username = username as string;
    if (credential !== undefined) server.credential = credential as string;
    return server;
  });
}

function loadHostAddresses(env: Env): string[] {
  const raw = envValue(env, "WEBRTC_HOST_ADDRESSES");
  if (raw === undefined) return [];
  const addresses = raw.split(",").map((a) => a.trim()).filter((a) => a !== "");
  for (const address of addresses) {
    if (isIP(address) === 0) {
      throw new ConfigError(
        "WEBRTC_HOST_ADDRESSES",
        raw,
        `a comma-separated list of IP addresses (${JSON.stringify(address)} is not one)`,
      );
    }
  }
  return addresses;
}

function sampleRate(env: Env): SampleRate {
  const raw = envValue(env, "AUDIO_SAMPLE_RATE");
  if (raw === undefined) return 48000;
  const match = SAMPLE_RATES.find((rate) => String(rate) === raw);
  if (match === undefined) throw new ConfigError("AUDIO_SAMPLE_RATE", raw, SAMPLE_RATES.join("|"));
  return match;
}

/** Loads the configuration from `env`; throws {@link ConfigError} on the first bad variable. */
export function loadConfig(env: Env): Config {
  return {
    mqtt: loadMqtt(env),
    aiServer: aiServers(env),
    webrtc: { iceServers: loadIceServers(env), hostAddresses: loadHostAddresses(env) },
    audio: {
      vadMode: envOneOf(env, "AUDIO_VAD_MODE", ["auto", "energy", "silero"], "auto", {
        ignoreCase: true,
      }),
      vadThreshold: envInteger(env, "AUDIO_VAD_THRESHOLD", 500, 0, MAX_PCM_AMPLITUDE),
      silenceFrames: envInteger(env, "AUDIO_SILENCE_FRAMES", 15, 1, MAX_SILENCE_FRAMES),
      sampleRate: sampleRate(env),
    },
    socket: {
      host: envHost(env, "AUDIO_SOCKET_HOST", "0.0.0.0"),
      port: envPort(env, "AUDIO_SOCKET_PORT", 9999),
    },
    pipeline: envOneOf(env, "PIPELINE", ["full", "echo"], "full"),
    logLevel: parseLogLevel(
      envOneOf(env, "LOG_LEVEL", LOG_LEVEL_NAMES, "info", { ignoreCase: true }),
    )!,
    dataDir: envValue(env, "NAILA_DATA_DIR") ?? "./data",
  };
}

/**
 * Runs a pure loader on `Deno.env`. On a bad variable, prints one line naming it, its value and
 * what is allowed, and exits with {@link CONFIG_EXIT_CODE}: a process never starts half
 * configured.
 *
 * @example
 * ```ts
 * const server = loadOrExit(loadServerConfig); // server/main.ts
 * ```
 */
export function loadOrExit<T>(load: (env: Env) => T): T {
  try {
    return load(Deno.env.toObject());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`config: ${err.message}`);
    Deno.exit(CONFIG_EXIT_CODE);
  }
}

/** {@link loadConfig} on `Deno.env`, exiting with {@link CONFIG_EXIT_CODE} on a bad variable. */
export function configFromEnv(): Config {
  return loadOrExit(loadConfig);
}
