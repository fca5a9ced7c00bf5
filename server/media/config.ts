/**
 * MediaConfig (spec 14.1: max upload size, supported formats, snapshot timeout) plus what the
 * media side needs beyond it: decoder limits, alert rules and their cooldown, opt-in storage
 * (spec 17.3: none by default) and its retention. Read by `server/config.ts`; a bad value throws
 * the shared `ConfigError` naming the variable, its value and what is allowed.
 *
 * | Variable | Default | Meaning |
 * |---|---|---|
 * | `MEDIA_MAX_UPLOAD_BYTES` | 8388608 | Largest decoded image, clip or upload (at most 8 MiB, the schema's cap) |
 * | `MEDIA_FORMATS` | all | Accepted formats, comma-separated: jpeg,png,webp,opus,wav,mp3,mp4,webm |
 * | `MEDIA_SNAPSHOT_TIMEOUT_MS` | 5000 | How long a snapshot request waits for the device |
 * | `MEDIA_DECODE_TIMEOUT_MS` | 20000 | Bound on one ffmpeg run (a recording or a video clip) |
 * | `MEDIA_MAX_CLIP_MS` | 60000 | Longest part of a clip decoded; the rest is ignored |
 * | `MEDIA_DEVICE_ZONES` | unset | `device=zone,...` for devices whose status names no zone |
 * | `MEDIA_CAMERA_POLL_MS` | 0 (off) | Ask every online camera for a snapshot this often, for alerts |
 * | `ALERT_RULES` | `*:person` | `zone:label,...`; `*` = any zone. Alert type is `{label}_detected` |
 * | `ALERT_COOLDOWN_MS` | 60000 | A rule fires again only after its object was unseen this long |
 * | `ALERT_MIN_CONFIDENCE` | 0.5 | Detections below this score raise no alert |
 * | `MEDIA_STORAGE` | `none` | `alerts`: keep alert snapshots and detections in NAILA_DATA_DIR/media |
 * | `MEDIA_RETENTION_DAYS` | 7 | Stored alerts older than this are deleted |
 * | `MEDIA_RETENTION_MB` | 500 | The oldest stored alerts are deleted beyond this many MB |
 */
import { ConfigError, type Env, envInteger, envOneOf, envValue } from "../../shared/config.ts";
import { isValidId } from "../../shared/ids.ts";
import { MAX_MEDIA_BYTES } from "../../shared/messages.ts";

/** Every format spec 11.6 lists. */
export const MEDIA_FORMATS = [
  "jpeg",
  "png",
  "webp",
  "opus",
  "wav",
  "mp3",
  "mp4",
  "webm",
] as const;
/** One media format. */
export type MediaFormat = typeof MEDIA_FORMATS[number];

/** An alert rule: a label seen in a zone (`*` = any) raises `{label}_detected` there. */
export interface AlertRule {
  zone: string;
  label: string;
}

/** The media side's settings. */
export interface MediaConfig {
  /** Largest decoded payload in bytes (images, clips, uploads). */
  maxUploadBytes: number;
  formats: MediaFormat[];
  snapshotTimeoutMs: number;
  decodeTimeoutMs: number;
  maxClipMs: number;
  /** Period of the alert snapshots asked of every online camera; 0 = only on demand. */
  cameraPollMs: number;
  /** Zones of devices that do not announce one in their status. */
  deviceZones: Record<string, string>;
  alertRules: AlertRule[];
  alertCooldownMs: number;
  /** Score in [0, 1]. */
  alertMinConfidence: number;
  storage: "none" | "alerts";
  retentionDays: number;
  retentionBytes: number;
}

/** A snapshot is a capture and one MQTT hop: 5 s is generous on a home LAN. */
const DEFAULT_SNAPSHOT_TIMEOUT_MS = 5000;
/** ffmpeg decodes a minute of audio in well under a second; 20 s only catches a stuck run. */
const DEFAULT_DECODE_TIMEOUT_MS = 20_000;
/** A voice message or motion clip is seconds long; a minute bounds the PCM we hold (1.9 MB). */
const DEFAULT_MAX_CLIP_MS = 60_000;
/** Frigate's default: an object unseen for a minute is gone; seen again, it is a new alert. */
const DEFAULT_ALERT_COOLDOWN_MS = 60_000;
/** Below this, CenterNet's persons include shadows and coats on hooks. */
const DEFAULT_ALERT_MIN_CONFIDENCE = 0.5;
const DEFAULT_RETENTION_DAYS = 7;
const DEFAULT_RETENTION_MB = 500;
const BYTES_PER_MB = 1024 * 1024;

function formats(env: Env): MediaFormat[] {
  const raw = envValue(env, "MEDIA_FORMATS");
  if (raw === undefined) return [...MEDIA_FORMATS];
  const list = raw.split(",").map((f) => f.trim().toLowerCase()).filter((f) => f.length > 0);
  const allowed = `a comma-separated list of ${MEDIA_FORMATS.join(",")}`;
  if (list.length === 0) throw new ConfigError("MEDIA_FORMATS", raw, allowed);
  for (const format of list) {
    if (!(MEDIA_FORMATS as readonly string[]).includes(format)) {
      throw new ConfigError("MEDIA_FORMATS", raw, `${allowed} (${format} is unknown)`);
    }
  }
  return [...new Set(list)] as MediaFormat[];
}

function deviceZones(env: Env): Record<string, string> {
  const raw = envValue(env, "MEDIA_DEVICE_ZONES");
  const zones: Record<string, string> = {};
  if (raw === undefined) return zones;
  for (const pair of raw.split(",")) {
    const [device, zone, extra] = pair.split("=").map((s) => s.trim());
    if (extra !== undefined || !isValidId(device) || !isValidId(zone)) {
      throw new ConfigError(
        "MEDIA_DEVICE_ZONES",
        raw,
        "device=zone pairs, e.g. front_cam=front_door",
      );
    }
    zones[device] = zone;
  }
  return zones;
}

function alertRules(env: Env): AlertRule[] {
  const raw = envValue(env, "ALERT_RULES") ?? "*:person";
  if (raw === "none") return [];
  const rules: AlertRule[] = [];
  for (const entry of raw.split(",")) {
    const [zone, label, extra] = entry.split(":").map((s) => s.trim());
    const zoneOk = zone === "*" || isValidId(zone);
    if (
      extra !== undefined || !zoneOk || label === undefined || !/^[a-z][a-z ]{0,40}$/.test(label)
    ) {
      throw new ConfigError(
        "ALERT_RULES",
        raw,
        "zone:label pairs (zone * = any; a COCO label such as person), e.g. front_door:person,*:dog, or none",
      );
    }
    rules.push({ zone, label });
  }
  return rules;
}

function score(env: Env, name: string, fallback: number): number {
  const raw = envValue(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^[0-9.]+$/.test(raw) || !(value >= 0 && value <= 1)) {
    throw new ConfigError(name, raw, "a number 0..1");
  }
  return value;
}

/** Reads the media variables from `env`; throws `ConfigError` on a bad value. */
export function loadMediaConfig(env: Env): MediaConfig {
  return {
    maxUploadBytes: envInteger(env, "MEDIA_MAX_UPLOAD_BYTES", MAX_MEDIA_BYTES, 1, MAX_MEDIA_BYTES),
    formats: formats(env),
    snapshotTimeoutMs: envInteger(
      env,
      "MEDIA_SNAPSHOT_TIMEOUT_MS",
      DEFAULT_SNAPSHOT_TIMEOUT_MS,
      100,
      120_000,
    ),
    decodeTimeoutMs: envInteger(
      env,
      "MEDIA_DECODE_TIMEOUT_MS",
      DEFAULT_DECODE_TIMEOUT_MS,
      100,
      600_000,
    ),
    maxClipMs: envInteger(env, "MEDIA_MAX_CLIP_MS", DEFAULT_MAX_CLIP_MS, 100, 600_000),
    cameraPollMs: envInteger(env, "MEDIA_CAMERA_POLL_MS", 0, 0, 86_400_000),
    deviceZones: deviceZones(env),
    alertRules: alertRules(env),
    alertCooldownMs: envInteger(
      env,
      "ALERT_COOLDOWN_MS",
      DEFAULT_ALERT_COOLDOWN_MS,
      0,
      86_400_000,
    ),
    alertMinConfidence: score(env, "ALERT_MIN_CONFIDENCE", DEFAULT_ALERT_MIN_CONFIDENCE),
    storage: envOneOf(env, "MEDIA_STORAGE", ["none", "alerts"] as const, "none"),
    retentionDays: envInteger(env, "MEDIA_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 1, 3650),
    retentionBytes: envInteger(env, "MEDIA_RETENTION_MB", DEFAULT_RETENTION_MB, 1, 1_000_000) *
      BYTES_PER_MB,
  };
}
