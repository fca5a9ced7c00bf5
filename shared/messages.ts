/**
 * JSON messages carried over MQTT: the spec's (8.2 status/signaling/alert, 11.5 snapshot,
 * 11.6 recording, 11.9 upload, 11.11 visual context) and NAILA's own (gateway/server status,
 * gateway metrics, device events and commands). Each has a zod schema, an inferred type and a
 * `parseX(input)` that accepts a JSON string or an already-parsed value and returns
 * `{ ok: true, value }` or `{ ok: false, error }`, the error naming the field path and problem.
 *
 * Every string, array and media field is bounded, and a JSON string is length-checked before
 * `JSON.parse`, so a peer cannot make us allocate without limit (`message_fields.ts`). The media
 * messages (11.5, 11.6, 11.9, 11.11 and NAILA's answers) are in `media_messages.ts`; this module
 * re-exports them, so it is the one entry for every MQTT message.
 *
 * @example
 * ```ts
 * import { parseIceCandidate } from "@naila/shared/messages";
 * const r = parseIceCandidate('{"candidate":"","session_id":"s1","from":"device"}');
 * if (r.ok && r.value.from !== "gateway") {
 *   // a device's end-of-candidates mark
 * }
 * ```
 */
import { z } from "zod";
import type { TopicKind } from "./topics.ts";
import {
  confidence,
  id,
  MAX_CANDIDATE_CHARS,
  MAX_CONTROL_MESSAGE_CHARS,
  MAX_LIST_ITEMS,
  MAX_NAME_CHARS,
  MAX_SDP_CHARS,
  MAX_TEXT_CHARS,
  name,
  type ParseResult,
  parseWith,
  text,
  timestamp,
} from "./message_fields.ts";
import {
  type MediaAnswer,
  type MediaRequest,
  type MediaResponse,
  parseMediaAnswer,
  parseMediaRequest,
  parseMediaResponse,
  parseRecording,
  parseUpload,
  type Recording,
  type Upload,
} from "./media_messages.ts";

export {
  MAX_CANDIDATE_CHARS,
  MAX_CONTROL_MESSAGE_CHARS,
  MAX_LIST_ITEMS,
  MAX_MEDIA_BASE64_CHARS,
  MAX_MEDIA_BYTES,
  MAX_MEDIA_MESSAGE_CHARS,
  MAX_NAME_CHARS,
  MAX_SDP_CHARS,
  MAX_TEXT_CHARS,
  type ParseResult,
} from "./message_fields.ts";
export * from "./media_messages.ts";

// ---- spec 8.2 ---------------------------------------------------------------------------------

const DeviceStatusSchema = z.object({
  device_id: id,
  online: z.boolean(),
  capabilities: z.array(name).max(MAX_LIST_ITEMS).optional(),
  firmware_version: name.optional(),
  // Where the device is (NAILA's addition): "is anyone at the front door?" asks the cameras of
  // zone front_door, and alerts name it.
  zone: id.optional(),
  // The device cancels its own speaker echo (a browser's AEC, a phone): the gateway's echo
  // guard is off for it (gateway/README.md "Echo guard"). Absent means false.
  echo_cancellation: z.boolean().optional(),
  // Optional: a last-will "offline" payload is fixed at connect time and may omit it.
  timestamp: timestamp.optional(),
  // NAILA's connection epoch (docs/protocol.md): which MQTT connection of the device sent this.
  // A later connection has a larger epoch; the gateway ignores an offline status (a late last
  // will) whose epoch is older than its live session's.
  epoch: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});
/** Device status, retained on `naila/devices/{id}/status` (spec 8.2). */
export type DeviceStatus = z.infer<typeof DeviceStatusSchema>;

const SdpOfferSchema = z.object({
  type: z.literal("offer"),
  sdp: z.string().min(1).max(MAX_SDP_CHARS),
  session_id: id,
});
/** SDP offer, gateway → device (spec 8.2). */
export type SdpOffer = z.infer<typeof SdpOfferSchema>;

const SdpAnswerSchema = z.object({
  type: z.literal("answer"),
  sdp: z.string().min(1).max(MAX_SDP_CHARS),
  session_id: id,
});
/** SDP answer, device → gateway (spec 8.2). */
export type SdpAnswer = z.infer<typeof SdpAnswerSchema>;

const IceCandidateSchema = z.object({
  // "" or null is the end-of-candidates mark (RTCIceCandidateInit with an empty candidate).
  candidate: z.string().max(MAX_CANDIDATE_CHARS).nullable(),
  sdpMid: name.nullable().optional(),
  sdpMLineIndex: z.int().min(0).max(1024).nullable().optional(),
  usernameFragment: name.nullable().optional(),
  session_id: id,
  // One signaling/ice topic carries both directions: each side marks its own candidates and
  // ignores its own echoes.
  from: z.enum(["gateway", "device"]).optional(),
});
/** ICE candidate on `naila/devices/{id}/signaling/ice`, either direction (spec 8.2). */
export type IceCandidate = z.infer<typeof IceCandidateSchema>;

const AlertSchema = z.object({
  alert_type: id,
  zone: id,
  confidence: confidence,
  source_device: id,
  timestamp: timestamp,
  // NAILA's additions: what was detected, how many, the sentence to announce, and the stored
  // snapshot's id when storage is on (server/media/store.ts).
  label: name.optional(),
  count: z.int().min(1).max(MAX_LIST_ITEMS).optional(),
  description: text.optional(),
  media_id: z.int().min(1).optional(),
});
/** Alert on `naila/alerts/{zone}/{alert_type}` and `naila/alerts/all` (spec 8.2). */
export type Alert = z.infer<typeof AlertSchema>;

// ---- NAILA's own -------------------------------------------------------------------------------

const GatewayStatusSchema = z.looseObject({
  online: z.boolean(),
  timestamp: timestamp,
  gateway_id: id.optional(),
  version: name.optional(),
  sessions: z.int().min(0).optional(),
});
/** Gateway status, retained on `naila/gateway/status`; extra fields pass through. */
export type GatewayStatus = z.infer<typeof GatewayStatusSchema>;

/** Most devices one gateway's presence may claim: far above a gateway's device cap. */
export const MAX_CLAIMED_DEVICES = 1000;

const GatewayPresenceSchema = z.looseObject({
  online: z.boolean(),
  timestamp: timestamp,
  /** The gateway's id, as in its topic. */
  gateway: id,
  /** Devices whose session this gateway holds (docs/scaling.md "More than one gateway"). */
  devices: z.array(id).max(MAX_CLAIMED_DEVICES).optional(),
});
/**
 * One gateway's membership, retained on `naila/gateways/{gateway}/status` (online while it runs,
 * its last will says offline), with the devices it serves: how gateways on one broker share
 * devices out (docs/scaling.md).
 */
export type GatewayPresence = z.infer<typeof GatewayPresenceSchema>;

/** Parses a gateway presence. */
export function parseGatewayPresence(input: unknown): ParseResult<GatewayPresence> {
  return parseWith(GatewayPresenceSchema, input, MAX_CONTROL_MESSAGE_CHARS, "gateway presence");
}

const ServerLoadSchema = z.looseObject({
  /** Turns waiting for inference (not counting the running one). */
  queued_turns: z.int().min(0),
  /** Audio of the waiting turns, s. */
  queued_audio_s: z.number().min(0),
  /** Devices with a turn waiting or running. */
  active_devices: z.int().min(0),
  /** Estimated wait of a turn arriving now, ms. */
  wait_ms: z.number().min(0),
  /** Running average of one turn's inference time, ms (0 before the first turn). */
  turn_ms: z.number().min(0),
  /** Turns per minute the server can answer at that average; absent before the first turn. */
  capacity_turns_per_min: z.number().min(0).optional(),
});
/**
 * A server's load on its status (server/mod.ts publishes it at most once a second while it
 * changes), so a gateway can send a turn to the least loaded live server.
 */
export type ServerLoad = z.infer<typeof ServerLoadSchema>;

const ServerStatusSchema = z.looseObject({
  online: z.boolean(),
  timestamp: timestamp,
  version: name.optional(),
  pipeline: z.enum(["full", "echo"]).optional(),
  protocol: z.enum(["v1", "v2"]).optional(),
  load: ServerLoadSchema.optional(),
});
/** AI server status, retained on `naila/server/status`; extra fields pass through. */
export type ServerStatus = z.infer<typeof ServerStatusSchema>;

const GatewayMetricsSchema = z.looseObject({
  timestamp: timestamp,
  sessions: z.int().min(0),
  uptime_s: z.number().min(0).optional(),
  cpu_percent: z.number().min(0).optional(),
  memory_mb: z.number().min(0).optional(),
  frames_in: z.int().min(0).optional(),
  frames_out: z.int().min(0).optional(),
});
/** Gateway telemetry on `naila/gateway/metrics` (QoS 0); extra fields pass through. */
export type GatewayMetrics = z.infer<typeof GatewayMetricsSchema>;

const AuditEventSchema = z.looseObject({
  timestamp: timestamp,
  // What happened (spec 17.3): refused logins, ACL denials, oversized packets, replaced clients.
  // The audio socket adds: auth_required (a turn or audio before auth), auth_timeout (no auth in
  // time), address_refused (not in AUDIO_SOCKET_ALLOW), v1_refused (a v1 peer not allow-listed).
  event: z.enum([
    "auth_failed",
    "publish_denied",
    "subscribe_denied",
    "oversized",
    "replaced",
    "auth_required",
    "auth_timeout",
    "address_refused",
    "v1_refused",
  ]),
  // Who: the MQTT user name and client id as claimed (bounded, may be absent), and the address.
  username: z.string().max(MAX_NAME_CHARS).optional(),
  client_id: z.string().max(MAX_NAME_CHARS).optional(),
  address: z.string().max(MAX_NAME_CHARS).optional(),
  topic: z.string().max(MAX_TEXT_CHARS).optional(),
  bytes: z.int().min(0).optional(),
  detail: text.optional(),
  // Events of the same kind from the same source left out by the rate limit since the last one.
  suppressed: z.int().min(0).optional(),
});
/** Security event on `naila/server/audit` (spec 17.3), readable by the server role only. */
export type AuditEvent = z.infer<typeof AuditEventSchema>;

const eventBase = {
  timestamp: timestamp.optional(),
  session_id: id.optional(),
};
const DeviceEventSchema = z.discriminatedUnion("type", [
  // The user spoke over the reply: played_ms is how much of it they actually heard.
  z.looseObject({
    ...eventBase,
    type: z.literal("interrupted"),
    turn: id,
    played_ms: z.int().min(0),
  }),
  z.looseObject({ ...eventBase, type: z.literal("timeout"), turn: id, message: text.optional() }),
  z.looseObject({ ...eventBase, type: z.literal("error"), turn: id.optional(), message: text }),
  // A finished turn: what was heard, what was answered, and where the time went.
  z.looseObject({
    ...eventBase,
    type: z.literal("turn"),
    turn: id,
    played_ms: z.int().min(0).optional(),
    transcript: text.optional(),
    reply: text.optional(),
    latency_ms: z.record(z.string().max(MAX_NAME_CHARS), z.number().min(0)).optional(),
  }),
  // What the device's conversation is doing now, for displays (the browser page shows it).
  z.looseObject({
    ...eventBase,
    type: z.literal("state"),
    // `waiting`: the AI server queued the turn (docs/protocol.md "Waiting for inference").
    state: z.enum(["listening", "user_speaking", "thinking", "waiting", "replying"]),
    turn: id.optional(),
    /** With `waiting`: turns ahead of this one and the server's estimated wait, ms. */
    position: z.int().min(0).optional(),
    wait_ms: z.number().min(0).optional(),
  }),
]);
/**
 * Device event on `naila/devices/{id}/events`, discriminated by `type`.
 * To add a kind, add one variant to the union; extra fields pass through.
 */
export type DeviceEvent = z.infer<typeof DeviceEventSchema>;

const DeviceCommandSchema = z.looseObject({
  command: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, "expected a snake_case command name"),
  params: z.record(z.string().max(MAX_NAME_CHARS), z.unknown()).optional(),
  request_id: id.optional(),
});
/** Command on `naila/devices/{id}/command` and `naila/server/broadcast`. */
export type DeviceCommand = z.infer<typeof DeviceCommandSchema>;

/** Parses a device status (JSON text or value). */
export function parseDeviceStatus(input: unknown): ParseResult<DeviceStatus> {
  return parseWith(DeviceStatusSchema, input, MAX_CONTROL_MESSAGE_CHARS, "device status");
}
/** Parses an SDP offer. */
export function parseSdpOffer(input: unknown): ParseResult<SdpOffer> {
  return parseWith(SdpOfferSchema, input, MAX_CONTROL_MESSAGE_CHARS, "SDP offer");
}
/** Parses an SDP answer. */
export function parseSdpAnswer(input: unknown): ParseResult<SdpAnswer> {
  return parseWith(SdpAnswerSchema, input, MAX_CONTROL_MESSAGE_CHARS, "SDP answer");
}
/** Parses an ICE candidate; `candidate` "" or null is the end-of-candidates mark. */
export function parseIceCandidate(input: unknown): ParseResult<IceCandidate> {
  return parseWith(IceCandidateSchema, input, MAX_CONTROL_MESSAGE_CHARS, "ICE candidate");
}
/** Parses an alert. */
export function parseAlert(input: unknown): ParseResult<Alert> {
  return parseWith(AlertSchema, input, MAX_CONTROL_MESSAGE_CHARS, "alert");
}
/** Parses a gateway status. */
export function parseGatewayStatus(input: unknown): ParseResult<GatewayStatus> {
  return parseWith(GatewayStatusSchema, input, MAX_CONTROL_MESSAGE_CHARS, "gateway status");
}
/** Parses a server status. */
export function parseServerStatus(input: unknown): ParseResult<ServerStatus> {
  return parseWith(ServerStatusSchema, input, MAX_CONTROL_MESSAGE_CHARS, "server status");
}
/** Parses gateway metrics. */
export function parseGatewayMetrics(input: unknown): ParseResult<GatewayMetrics> {
  return parseWith(GatewayMetricsSchema, input, MAX_CONTROL_MESSAGE_CHARS, "gateway metrics");
}
/** Parses an audit event. */
export function parseAuditEvent(input: unknown): ParseResult<AuditEvent> {
  return parseWith(AuditEventSchema, input, MAX_CONTROL_MESSAGE_CHARS, "audit event");
}
/** Parses a device event. */
export function parseDeviceEvent(input: unknown): ParseResult<DeviceEvent> {
  return parseWith(DeviceEventSchema, input, MAX_CONTROL_MESSAGE_CHARS, "device event");
}
/** Parses a device command (also used for server broadcasts). */
export function parseDeviceCommand(input: unknown): ParseResult<DeviceCommand> {
  return parseWith(DeviceCommandSchema, input, MAX_CONTROL_MESSAGE_CHARS, "device command");
}

/** The message type each topic kind carries. */
export interface TopicMessages {
  gateway_status: GatewayStatus;
  gateway_metrics: GatewayMetrics;
  gateway_presence: GatewayPresence;
  server_status: ServerStatus;
  server_broadcast: DeviceCommand;
  server_audit: AuditEvent;
  alert_all: Alert;
  alert: Alert;
  device_status: DeviceStatus;
  device_command: DeviceCommand;
  device_offer: SdpOffer;
  device_answer: SdpAnswer;
  device_ice: IceCandidate;
  device_snapshot: MediaResponse;
  device_media_request: MediaRequest;
  device_events: DeviceEvent;
  device_recording: Recording;
  device_media_response: MediaAnswer;
  upload_image: Upload;
  upload_response: MediaAnswer;
}

const PARSERS: { [K in TopicKind]: (input: unknown) => ParseResult<TopicMessages[K]> } = {
  gateway_status: parseGatewayStatus,
  gateway_metrics: parseGatewayMetrics,
  gateway_presence: parseGatewayPresence,
  server_status: parseServerStatus,
  server_broadcast: parseDeviceCommand,
  server_audit: parseAuditEvent,
  alert_all: parseAlert,
  alert: parseAlert,
  device_status: parseDeviceStatus,
  device_command: parseDeviceCommand,
  device_offer: parseSdpOffer,
  device_answer: parseSdpAnswer,
  device_ice: parseIceCandidate,
  device_snapshot: parseMediaResponse,
  device_media_request: parseMediaRequest,
  device_events: parseDeviceEvent,
  device_recording: parseRecording,
  device_media_response: parseMediaAnswer,
  upload_image: parseUpload,
  upload_response: parseMediaAnswer,
};

/** Parses the payload of a topic of `kind` with that kind's schema. */
export function parseMessageFor<K extends TopicKind>(
  kind: K,
  input: unknown,
): ParseResult<TopicMessages[K]> {
  return PARSERS[kind](input);
}
