/**
 * Who may publish and read which MQTT topic (spec 17.2 "ACLs per device"), derived from the topic
 * table of `topics.ts` so the two cannot drift: {@link TOPIC_ACCESS} names, per topic kind, the
 * roles that write and read it. The embedded broker enforces it with {@link mayPublish} and
 * {@link maySubscribe}; {@link mosquittoAcl} writes the same rules as a Mosquitto `acl_file`.
 *
 * Roles: `server` and `gateway` (one user each, any number of processes), and one user per
 * device whose user name is its device id. Browser devices (`web_` ids) reach MQTT through the
 * gateway's bridge, so the gateway may act for them, and only for them.
 *
 * Packet size limits live here too ({@link packetLimitFor}): 1 MiB on control topics, more only on
 * the topics that carry media.
 *
 * @example
 * ```ts
 * import { mayPublish } from "@naila/shared/mqtt_acl";
 * mayPublish({ role: "device", user: "kitchen" }, "naila/devices/hall/signaling/answer");
 * // "device kitchen may not publish on naila/devices/hall/signaling/answer"
 * ```
 */
import { MAX_MEDIA_MESSAGE_CHARS } from "./messages.ts";
import { parseTopic, TOPIC_DELIVERY, topicFilter, type TopicKind } from "./topics.ts";

/** The roles of NAILA's MQTT users. */
export type Role = "server" | "gateway" | "device";

/** An authenticated MQTT user: its role and user name (a device's user name is its id). */
export interface MqttIdentity {
  role: Role;
  user: string;
}

/**
 * Who a rule grants: a role for every id, `own_device` for a device on its own topics only,
 * `any_device` for every device (broadcasts), `gateway_web` for the gateway acting for browser
 * devices (ids starting with {@link BROWSER_DEVICE_PREFIX}) through its bridge.
 */
export type Grantee = "server" | "gateway" | "gateway_web" | "own_device" | "any_device";

/** Id prefix of browser devices, whose MQTT traffic the gateway's bridge carries. */
export const BROWSER_DEVICE_PREFIX = "web_";

/** Control messages are at most ~80 KiB (messages.ts); 1 MiB leaves room and bounds memory. */
export const MAX_CONTROL_PACKET_BYTES = 1024 * 1024;
/** Media topics carry up to {@link MAX_MEDIA_MESSAGE_CHARS} of JSON; 64 KiB for the header. */
export const MAX_MEDIA_PACKET_BYTES = MAX_MEDIA_MESSAGE_CHARS + 64 * 1024;

/** Readers and writers of one topic kind. */
export interface TopicAccess {
  write: readonly Grantee[];
  read: readonly Grantee[];
  /** Largest MQTT packet allowed on this topic, in bytes. */
  maxPacketBytes: number;
}

const control = (write: Grantee[], read: Grantee[]): TopicAccess => ({
  write,
  read,
  maxPacketBytes: MAX_CONTROL_PACKET_BYTES,
});
const media = (write: Grantee[], read: Grantee[]): TopicAccess => ({
  write,
  read,
  maxPacketBytes: MAX_MEDIA_PACKET_BYTES,
});

/**
 * The access table: exactly what each role needs (gateway/signaling.ts, gateway/web_bridge.ts,
 * server/mod.ts, device/peer.ts) and nothing more.
 */
export const TOPIC_ACCESS: Readonly<Record<TopicKind, TopicAccess>> = Object.freeze({
  gateway_status: control(["gateway"], ["gateway", "server"]),
  gateway_metrics: control(["gateway"], ["server"]),
  gateway_presence: control(["gateway"], ["gateway", "server"]),
  server_status: control(["server"], ["gateway", "server"]),
  server_broadcast: control(["server"], ["gateway", "any_device"]),
  server_audit: control(["server"], ["server"]),
  alert_all: control(["server"], ["gateway", "server", "any_device"]),
  alert: control(["server"], ["gateway", "server", "any_device"]),
  device_status: control(["own_device", "gateway_web"], ["gateway", "server"]),
  device_command: control(["server"], ["gateway", "own_device"]),
  device_offer: control(["gateway"], ["own_device", "gateway_web"]),
  device_answer: control(["own_device", "gateway_web"], ["gateway"]),
  device_ice: control(["own_device", "gateway"], ["own_device", "gateway"]),
  device_snapshot: media(["own_device", "gateway_web"], ["gateway", "server"]),
  device_media_request: control(["server"], ["own_device", "gateway_web"]),
  device_events: control(["gateway"], ["own_device", "gateway", "server"]),
  device_recording: media(["own_device", "gateway_web"], ["server"]),
  // Answers may carry a stored alert image; the gateway's page shows them to web_ devices.
  device_media_response: media(["server"], ["own_device", "gateway"]),
  upload_image: media(["gateway", "any_device"], ["server"]),
  // Session ids are random per upload: whoever posted it (the page's bridge, a device) reads it.
  upload_response: control(["server"], ["gateway", "any_device"]),
});

const KINDS = Object.keys(TOPIC_DELIVERY) as TopicKind[];

/** Level index of the device id in `naila/devices/{device}/...`. */
const DEVICE_LEVEL = 2;

function grants(grantees: readonly Grantee[], who: MqttIdentity, device: string | undefined) {
  return grantees.some((grantee) => {
    switch (grantee) {
      case "server":
      case "gateway":
        return who.role === grantee;
      case "gateway_web":
        return who.role === "gateway" && device !== undefined &&
          device.startsWith(BROWSER_DEVICE_PREFIX);
      case "own_device":
        return who.role === "device" && device === who.user;
      case "any_device":
        return who.role === "device";
    }
  });
}

function describe(who: MqttIdentity): string {
  return who.role === "device" ? `device ${who.user}` : `${who.role} (${who.user})`;
}

/**
 * Whether `who` may publish on `topic`: undefined when allowed, else the reason in plain words.
 * Topics outside NAILA's tree are refused for everyone.
 */
export function mayPublish(who: MqttIdentity, topic: string): string | undefined {
  const parsed = parseTopic(topic);
  if (!parsed.ok) return `${describe(who)} may not publish outside NAILA's topics: ${parsed.error}`;
  const device = "device" in parsed.value ? parsed.value.device : undefined;
  if (grants(TOPIC_ACCESS[parsed.value.kind].write, who, device)) return undefined;
  return `${describe(who)} may not publish on ${topic}`;
}

/**
 * Whether `who` may subscribe to `filter`: undefined when allowed, else the reason. A filter is
 * allowed when every topic it can match is readable, so it must lie inside one kind's filter
 * (`#` never does); a `+` in the device level needs a grant for every device.
 */
export function maySubscribe(who: MqttIdentity, filter: string): string | undefined {
  const levels = filter.split("/");
  if (!levels.includes("#")) {
    for (const kind of KINDS) {
      const pattern = topicFilter(kind).split("/");
      if (pattern.length !== levels.length) continue;
      const inside = pattern.every((level, i) =>
        level === "+" || (levels[i] === level && levels[i] !== "+")
      );
      if (!inside) continue;
      const device = kind.startsWith("device_") && levels[DEVICE_LEVEL] !== "+"
        ? levels[DEVICE_LEVEL]
        : undefined;
      const allDevices = kind.startsWith("device_") && device === undefined;
      const readers = TOPIC_ACCESS[kind].read.filter((g) =>
        !allDevices || g === "server" || g === "gateway"
      );
      if (grants(readers, who, device)) return undefined;
    }
  }
  return `${describe(who)} may not subscribe to ${filter}`;
}

/** Largest MQTT packet allowed for a PUBLISH on `topic` (control limit for unknown topics). */
export function packetLimitFor(topic: string): number {
  const parsed = parseTopic(topic);
  return parsed.ok ? TOPIC_ACCESS[parsed.value.kind].maxPacketBytes : MAX_CONTROL_PACKET_BYTES;
}

/** User names of the two service roles; device ids may not take them. */
export const ROLE_USERS: Readonly<Record<Exclude<Role, "device">, string>> = Object.freeze({
  server: "naila-server",
  gateway: "naila-gateway",
});

function mosquittoPattern(kind: TopicKind, grantee: Grantee): string {
  const filter = topicFilter(kind).split("/");
  if (grantee === "own_device" && kind.startsWith("device_")) filter[DEVICE_LEVEL] = "%u";
  return filter.join("/");
}

/**
 * The access table as a Mosquitto `acl_file` (mosquitto.conf(5)): `user` blocks for the server
 * and gateway, `pattern` lines (`%u` = user name = device id) for devices. Mosquitto cannot match
 * an id prefix, so there the gateway's browser-device grants cover every device id (the embedded
 * broker keeps them to `web_` ids).
 */
export function mosquittoAcl(): string {
  const lines = [
    "# NAILA MQTT access control, generated from shared/mqtt_acl.ts (deno task devices mosquitto).",
    "# Do not edit: regenerate after changing the topic table.",
    "",
  ];
  for (const role of ["server", "gateway"] as const) {
    lines.push(`user ${ROLE_USERS[role]}`);
    for (const kind of KINDS) {
      for (const access of ["read", "write"] as const) {
        const mine = TOPIC_ACCESS[kind][access].some((g) =>
          g === role || (role === "gateway" && g === "gateway_web")
        );
        if (mine) lines.push(`topic ${access} ${topicFilter(kind)}`);
      }
    }
    lines.push("");
  }
  lines.push("# Every device user (its user name is its device id): its own topics only.");
  for (const kind of KINDS) {
    for (const access of ["read", "write"] as const) {
      for (const grantee of TOPIC_ACCESS[kind][access]) {
        if (grantee === "own_device" || grantee === "any_device") {
          lines.push(`pattern ${access} ${mosquittoPattern(kind, grantee)}`);
        }
      }
    }
  }
  lines.push("");
  return lines.join("\n");
}
