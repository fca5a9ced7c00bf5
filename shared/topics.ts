/**
 * The MQTT topic tree (spec 8.1, uploads from 11.9): one typed value per topic, a builder, a
 * parser, subscription filters, and each kind's QoS and retain flag (spec 8.3) kept beside it so
 * no caller picks them by hand.
 *
 * @example
 * ```ts
 * import { parseTopic, TOPIC_DELIVERY, topicFilter, topicString } from "@naila/shared/topics";
 * topicString({ kind: "device_status", device: "kitchen" }); // "naila/devices/kitchen/status"
 * parseTopic("naila/devices/kitchen/signaling/ice"); // { ok: true, value: { kind: "device_ice", device: "kitchen" } }
 * topicFilter("device_answer"); // "naila/devices/+/signaling/answer"
 * TOPIC_DELIVERY.device_status; // { qos: 1, retain: true }
 * ```
 */
import { idProblem } from "./ids.ts";

/** First level of every NAILA topic (spec 8.1). */
export const TOPIC_ROOT = "naila";

/** Topic kinds that carry no id. */
export type FixedTopicKind =
  | "gateway_status"
  | "gateway_metrics"
  | "server_status"
  | "server_broadcast"
  | "server_audit"
  | "alert_all";

/** Topic kinds under `naila/devices/{device}/`. */
export type DeviceTopicKind =
  | "device_status"
  | "device_command"
  | "device_offer"
  | "device_answer"
  | "device_ice"
  | "device_snapshot"
  | "device_media_request"
  | "device_recording"
  | "device_media_response"
  | "device_events";

/** Every topic as a typed value. */
export type Topic =
  // Mapped so each kind is its own union member: `Extract<Topic, { kind: "device_ice" }>` works.
  | { [K in FixedTopicKind]: { kind: K } }[FixedTopicKind]
  | { [K in DeviceTopicKind]: { kind: K; device: string } }[DeviceTopicKind]
  | { kind: "gateway_presence"; gateway: string }
  | { kind: "alert"; zone: string; alertType: string }
  | { kind: "upload_image"; session: string }
  | { kind: "upload_response"; session: string };

/** Every topic kind. */
export type TopicKind = Topic["kind"];

/** The topic value of one kind, e.g. `TopicOf<"alert">` has zone and alertType. */
export type TopicOf<K extends TopicKind> = Extract<Topic, { kind: K }>;

/** MQTT delivery settings for one topic kind. */
export interface Delivery {
  /** MQTT QoS level. */
  qos: 0 | 1;
  /** Whether the broker keeps the last message for late subscribers. */
  retain: boolean;
}

// Spec 8.3: signaling, commands, status and alerts need delivery (QoS 1); telemetry may drop
// (QoS 0). Only status is retained: a late subscriber must learn who is online, while a retained
// offer, command or event would be replayed stale to the next session.
const SIGNALING: Delivery = { qos: 1, retain: false };
const COMMAND: Delivery = { qos: 1, retain: false };
const STATUS: Delivery = { qos: 1, retain: true };
const ALERT: Delivery = { qos: 1, retain: false };
const TELEMETRY: Delivery = { qos: 0, retain: false };
// Media and events are one-shot answers a caller waits for: delivered once, never replayed.
const ONE_SHOT: Delivery = { qos: 1, retain: false };

/** QoS and retain flag of each topic kind (spec 8.3). */
export const TOPIC_DELIVERY: Readonly<Record<TopicKind, Readonly<Delivery>>> = Object.freeze({
  gateway_status: STATUS,
  gateway_metrics: TELEMETRY,
  // One gateway's membership and claimed devices (docs/scaling.md): a late gateway must see it.
  gateway_presence: STATUS,
  server_status: STATUS,
  server_broadcast: COMMAND,
  // Security events (spec 17.3): worth delivering, never replayed to a late subscriber.
  server_audit: ONE_SHOT,
  alert_all: ALERT,
  alert: ALERT,
  device_status: STATUS,
  device_command: COMMAND,
  device_offer: SIGNALING,
  device_answer: SIGNALING,
  device_ice: SIGNALING,
  device_snapshot: ONE_SHOT,
  device_media_request: COMMAND,
  device_events: ONE_SHOT,
  // A clip the device sends on its own (a voice message, a motion clip: spec 11.6).
  device_recording: ONE_SHOT,
  // The server's answer to a recording, upload or visual question, for the device or a display.
  device_media_response: ONE_SHOT,
  upload_image: ONE_SHOT,
  // The server's answer to one upload (spec 11.7 step 4), for the web service that bridged it.
  upload_response: ONE_SHOT,
});

const FIXED_PATHS: Readonly<Record<FixedTopicKind, string>> = {
  gateway_status: "gateway/status",
  gateway_metrics: "gateway/metrics",
  server_status: "server/status",
  server_broadcast: "server/broadcast",
  server_audit: "server/audit",
  alert_all: "alerts/all",
};

/** Levels after `naila/devices/{device}/` for each device topic kind. */
const DEVICE_SUFFIXES: Readonly<Record<DeviceTopicKind, string>> = {
  device_status: "status",
  device_command: "command",
  device_offer: "signaling/offer",
  device_answer: "signaling/answer",
  device_ice: "signaling/ice",
  device_snapshot: "media/snapshot",
  device_media_request: "media/request",
  device_recording: "media/recording",
  device_media_response: "media/response",
  device_events: "events",
};

/** Last level of `naila/uploads/{session_id}/…`: the upload, and the server's answer to it. */
const UPLOAD_LEAVES = { upload_image: "image", upload_response: "response" } as const;
const UPLOAD_BY_LEAF = new Map<string, "upload_image" | "upload_response">([
  ["image", "upload_image"],
  ["response", "upload_response"],
]);

const FIXED_BY_PATH = new Map(
  Object.entries(FIXED_PATHS).map(([kind, path]) => [path, kind as FixedTopicKind]),
);
const DEVICE_BY_SUFFIX = new Map(
  Object.entries(DEVICE_SUFFIXES).map(([kind, suffix]) => [suffix, kind as DeviceTopicKind]),
);

/** Result of {@link parseTopic}. */
export type TopicParse = { ok: true; value: Topic } | { ok: false; error: string };

function isFixed(kind: TopicKind): kind is FixedTopicKind {
  return kind in FIXED_PATHS;
}

function isDevice(kind: TopicKind): kind is DeviceTopicKind {
  return kind in DEVICE_SUFFIXES;
}

function checkId(field: string, value: string): string {
  const problem = idProblem(value);
  if (problem !== undefined) {
    throw new TypeError(`topic ${field} ${JSON.stringify(value)} ${problem}`);
  }
  return value;
}

/**
 * Builds the topic string of `topic`.
 * Throws a TypeError naming the field when an id breaks the rule of `ids.ts`.
 */
export function topicString(topic: Topic): string {
  const kind = topic.kind;
  if (isFixed(kind)) return `${TOPIC_ROOT}/${FIXED_PATHS[kind]}`;
  if (isDevice(kind)) {
    const { device } = topic as TopicOf<DeviceTopicKind>;
    return `${TOPIC_ROOT}/devices/${checkId("device", device)}/${DEVICE_SUFFIXES[kind]}`;
  }
  if (kind === "alert") {
    const { zone, alertType } = topic as TopicOf<"alert">;
    return `${TOPIC_ROOT}/alerts/${checkId("zone", zone)}/${checkId("alertType", alertType)}`;
  }
  if (kind === "upload_image" || kind === "upload_response") {
    const { session } = topic as TopicOf<"upload_image" | "upload_response">;
    return `${TOPIC_ROOT}/uploads/${checkId("session", session)}/${UPLOAD_LEAVES[kind]}`;
  }
  if (kind === "gateway_presence") {
    const { gateway } = topic as TopicOf<"gateway_presence">;
    return `${TOPIC_ROOT}/gateways/${checkId("gateway", gateway)}/status`;
  }
  throw new TypeError(`topic kind ${JSON.stringify(kind)} is unknown`);
}

/** Ids to pin in {@link topicFilter}; any id left out becomes the `+` wildcard. */
export interface TopicFilterOptions {
  device?: string;
  zone?: string;
  alertType?: string;
  session?: string;
  gateway?: string;
}

/**
 * Subscription filter for every topic of `kind`, e.g. `naila/devices/+/status`.
 * Ids given in `options` are pinned (and validated); the rest match any value.
 */
export function topicFilter(kind: TopicKind, options: TopicFilterOptions = {}): string {
  const pin = (field: keyof TopicFilterOptions) => {
    const value = options[field];
    return value === undefined ? "+" : checkId(field, value);
  };
  if (isFixed(kind)) return `${TOPIC_ROOT}/${FIXED_PATHS[kind]}`;
  if (isDevice(kind)) return `${TOPIC_ROOT}/devices/${pin("device")}/${DEVICE_SUFFIXES[kind]}`;
  if (kind === "alert") return `${TOPIC_ROOT}/alerts/${pin("zone")}/${pin("alertType")}`;
  if (kind === "upload_image" || kind === "upload_response") {
    return `${TOPIC_ROOT}/uploads/${pin("session")}/${UPLOAD_LEAVES[kind]}`;
  }
  if (kind === "gateway_presence") return `${TOPIC_ROOT}/gateways/${pin("gateway")}/status`;
  throw new TypeError(`topic kind ${JSON.stringify(kind)} is unknown`);
}

/** Filter matching every topic under one device: `naila/devices/{device}/#`. */
export function deviceFilter(device: string): string {
  return `${TOPIC_ROOT}/devices/${checkId("device", device)}/#`;
}

/**
 * Parses a topic string into its typed value, or says what is wrong with it.
 * Wildcards are rejected: they belong in filters, never in a received topic.
 */
export function parseTopic(topic: string): TopicParse {
  const fail = (why: string): TopicParse => ({
    ok: false,
    error: `topic ${JSON.stringify(topic)} ${why}`,
  });
  const levels = topic.split("/");
  if (levels[0] !== TOPIC_ROOT) return fail(`does not start with "${TOPIC_ROOT}/"`);
  const rest = levels.slice(1);
  const fixed = FIXED_BY_PATH.get(rest.join("/"));
  if (fixed !== undefined) return { ok: true, value: { kind: fixed } };
  const idAt = (field: string, index: number): string | undefined => {
    const problem = idProblem(rest[index]);
    return problem === undefined ? undefined : `${field} ${JSON.stringify(rest[index])} ${problem}`;
  };
  switch (rest[0]) {
    case "devices": {
      const kind = DEVICE_BY_SUFFIX.get(rest.slice(2).join("/"));
      if (rest.length < 3 || kind === undefined) {
        return fail(
          `has unknown device subtopic ${
            JSON.stringify(rest.slice(2).join("/"))
          }, expected one of ${[...DEVICE_BY_SUFFIX.keys()].join("|")}`,
        );
      }
      const problem = idAt("device", 1);
      if (problem) return fail(problem);
      return { ok: true, value: { kind, device: rest[1] } };
    }
    case "alerts": {
      if (rest.length !== 3) {
        return fail(
          `has ${levels.length} levels, expected naila/alerts/all or naila/alerts/{zone}/{alert_type}`,
        );
      }
      const problem = idAt("zone", 1) ?? idAt("alert_type", 2);
      if (problem) return fail(problem);
      return { ok: true, value: { kind: "alert", zone: rest[1], alertType: rest[2] } };
    }
    case "uploads": {
      const kind = rest.length === 3 ? UPLOAD_BY_LEAF.get(rest[2]) : undefined;
      if (kind === undefined) {
        return fail(
          "is not naila/uploads/{session_id}/image or naila/uploads/{session_id}/response",
        );
      }
      const problem = idAt("session_id", 1);
      if (problem) return fail(problem);
      return { ok: true, value: { kind, session: rest[1] } };
    }
    case "gateways": {
      if (rest.length !== 3 || rest[2] !== "status") {
        return fail("is not naila/gateways/{gateway_id}/status");
      }
      const problem = idAt("gateway_id", 1);
      if (problem) return fail(problem);
      return { ok: true, value: { kind: "gateway_presence", gateway: rest[1] } };
    }
    case "gateway":
    case "server":
      return fail(
        `is not a known ${rest[0]} topic, expected one of ${
          [...FIXED_BY_PATH.keys()].filter((path) => path.startsWith(`${rest[0]}/`)).join("|")
        }`,
      );
    default:
      return fail(
        `has unknown second level ${
          JSON.stringify(rest[0] ?? "")
        }, expected gateway|devices|server|alerts|uploads|gateways`,
      );
  }
}
