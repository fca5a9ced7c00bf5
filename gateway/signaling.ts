/**
 * The gateway's MQTT side (spec 4.3, 8, 9.2, 9.3):
 *
 * - connects with a last will that sets `naila/gateway/status` to offline (retained), then
 *   publishes online (retained);
 * - subscribes to device status, answers, ICE candidates and device commands (for the `announce`
 *   of a due timer, server/README.md);
 * - on every reconnect re-subscribes and re-publishes online (spec 9.3: a broker restart loses
 *   subscriptions and, without persistence, the retained status);
 * - validates every incoming message with the shared schemas: a malformed payload, a topic id
 *   that is not a valid level, a status naming another device, or our own ICE echo (`from:
 *   "gateway"`, docs/protocol.md) is logged and dropped, never thrown.
 *
 * @example
 * ```ts
 * const signaling = await startSignaling(config.mqtt, handlers, { log });
 * signaling.publishOffer("kitchen", { type: "offer", sdp, session_id: "s1" });
 * ```
 */
import type { MqttConfig } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import {
  type DeviceCommand,
  type DeviceEvent,
  type DeviceStatus,
  type GatewayMetrics,
  type IceCandidate,
  parseMessageFor,
  type SdpAnswer,
  type SdpOffer,
  type ServerStatus,
} from "../shared/messages.ts";
import { connectMqtt, type NailaMqtt, uniqueClientId } from "../shared/mqtt.ts";
import { parseTopic, type Topic, topicFilter } from "../shared/topics.ts";

/** What arrives from devices, already validated. */
export interface SignalingHandlers {
  /** `retained`: replayed by the broker on (re)subscribe rather than newly published. */
  status(device: string, status: DeviceStatus, delivery: { retained: boolean }): void;
  answer(device: string, answer: SdpAnswer): void;
  ice(device: string, candidate: IceCandidate): void;
  /** A command for the device (the server's `announce`, a device's own set_volume, ...). */
  command?(device: string, command: DeviceCommand): void;
  /** An AI server's status (its `load`, for placing turns; docs/scaling.md). */
  serverStatus?(status: ServerStatus): void;
}

/** The running MQTT side. */
export interface Signaling {
  readonly mqtt: NailaMqtt;
  publishOffer(device: string, offer: SdpOffer): void;
  publishIce(device: string, candidate: IceCandidate): void;
  publishEvent(device: string, event: DeviceEvent): void;
  publishMetrics(metrics: GatewayMetrics): void;
  /** Publishes offline (retained) and disconnects. */
  close(): Promise<void>;
}

/** Options of {@link startSignaling}. */
export interface SignalingOptions {
  log: Logger;
  /** MQTT client id; default unique per process (`naila-gateway-{host}-{random}`). */
  clientId?: string;
  /** Extra fields for the gateway status (sessions, version). */
  status?: () => Record<string, unknown>;
}

/** Topics the gateway subscribes to (spec 9.2). */
export const GATEWAY_SUBSCRIPTIONS = [
  topicFilter("device_status"),
  topicFilter("device_answer"),
  topicFilter("device_ice"),
  topicFilter("device_command"),
  topicFilter("server_status"),
];

function now(): string {
  return new Date().toISOString();
}

/** Connects, subscribes and routes messages to `handlers`; see the module doc. */
export async function startSignaling(
  config: MqttConfig,
  handlers: SignalingHandlers,
  options: SignalingOptions,
): Promise<Signaling> {
  const { log } = options;
  const mqtt = await connectMqtt(config, {
    clientId: options.clientId ?? uniqueClientId("gateway"),
    log,
    will: { topic: { kind: "gateway_status" }, message: { online: false, timestamp: now() } },
  });

  const publish = (what: string, run: () => Promise<void>) => {
    run().catch((error) => log.warn(`MQTT publish of ${what} failed`, { error: String(error) }));
  };
  const announce = async () => {
    await mqtt.subscribe(GATEWAY_SUBSCRIPTIONS);
    await mqtt.publish({ kind: "gateway_status" }, {
      online: true,
      timestamp: now(),
      ...(options.status?.() ?? {}),
    });
  };

  const serverStatus = (payload: string) => {
    if (!handlers.serverStatus || payload.length === 0) return;
    const parsed = parseMessageFor("server_status", payload);
    if (!parsed.ok) return void log.warn("invalid server status dropped", { error: parsed.error });
    try {
      handlers.serverStatus(parsed.value);
    } catch (error) {
      log.error("server status handler failed", { error });
    }
  };
  mqtt.onMessage((topic: Topic, payload: string, delivery) => {
    if (topic.kind === "server_status") return serverStatus(payload);
    if (!("device" in topic)) return;
    const device = topic.device;
    try {
      switch (topic.kind) {
        case "device_status": {
          if (payload.length === 0) return; // A cleared retained status.
          const parsed = parseMessageFor("device_status", payload);
          if (!parsed.ok) {
            return void log.warn("invalid device status dropped", { device, error: parsed.error });
          }
          if (parsed.value.device_id !== device) {
            return void log.warn("device status for another device dropped", {
              device,
              device_id: parsed.value.device_id,
            });
          }
          handlers.status(device, parsed.value, delivery);
          return;
        }
        case "device_answer": {
          const parsed = parseMessageFor("device_answer", payload);
          if (!parsed.ok) {
            return void log.warn("invalid SDP answer dropped", { device, error: parsed.error });
          }
          handlers.answer(device, parsed.value);
          return;
        }
        case "device_ice": {
          const parsed = parseMessageFor("device_ice", payload);
          if (!parsed.ok) {
            return void log.warn("invalid ICE candidate dropped", { device, error: parsed.error });
          }
          if (parsed.value.from === "gateway") return; // Our own candidate, echoed by the broker.
          handlers.ice(device, parsed.value);
          return;
        }
        case "device_command": {
          if (!handlers.command) return;
          const parsed = parseMessageFor("device_command", payload);
          if (!parsed.ok) {
            return void log.warn("invalid device command dropped", { device, error: parsed.error });
          }
          handlers.command(device, parsed.value);
          return;
        }
        default:
          return;
      }
    } catch (error) {
      log.error("signaling handler failed", { device, kind: topic.kind, error });
    }
  });
  // A topic whose device level is not a valid id never reaches onMessage (parseTopic refuses it).
  mqtt.client.on("message", (topic: string) => {
    const parsed = parseTopic(topic);
    if (!parsed.ok) log.warn("message on an invalid topic dropped", { error: parsed.error });
  });
  // connectMqtt resolved on the first connect: every later one is a reconnect.
  mqtt.client.on("connect", () => {
    log.info("MQTT reconnected: re-subscribing and re-announcing");
    announce().catch((error) => log.warn("re-announce failed", { error: String(error) }));
  });
  mqtt.client.on("offline", () => log.warn("MQTT broker unreachable, reconnecting"));
  await announce();
  log.info("signaling ready", { host: config.host, port: config.port });

  return {
    mqtt,
    publishOffer(device, offer) {
      publish("offer", () => mqtt.publish({ kind: "device_offer", device }, offer));
    },
    publishIce(device, candidate) {
      publish("ICE candidate", () => mqtt.publish({ kind: "device_ice", device }, candidate));
    },
    publishEvent(device, event) {
      publish("device event", () => mqtt.publish({ kind: "device_events", device }, event));
    },
    publishMetrics(metrics) {
      publish("metrics", () => mqtt.publish({ kind: "gateway_metrics" }, metrics));
    },
    async close() {
      try {
        await mqtt.publish({ kind: "gateway_status" }, { online: false, timestamp: now() });
      } catch (error) {
        log.warn("offline status not published", { error: String(error) });
      }
      await mqtt.close();
    },
  };
}
