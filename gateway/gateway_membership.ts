/**
 * Several gateways on one broker (issue 14, docs/scaling.md "More than one gateway"): each
 * gateway announces itself and the devices it serves on its own retained presence topic,
 * `naila/gateways/{gateway}/status`, reads everyone else's, and serves a device only when
 * {@link DeviceAssignment} names it the owner.
 *
 * - Its own MQTT connection (client id `naila-gateway-{id}`), whose last will marks the presence
 *   offline: a gateway that dies (killed, power cut) is seen gone by the others as soon as the
 *   broker notices, and they take its devices. A clean shutdown clears the presence instead.
 * - On start it publishes its presence, then waits {@link SETTLE_MS} so the retained presences
 *   of the gateways already running (and of one starting at the same moment) are known before it
 *   decides anything.
 * - A device it owns is claimed first (its presence republished with the device), and offered
 *   only {@link CLAIM_SETTLE_MS} later if it still owns it: two gateways that decided at the same
 *   moment from different views both see both claims by then, and the rendezvous winner alone
 *   offers. With no other gateway live the offer goes at once.
 * - A heartbeat republishes the presence every {@link HEARTBEAT_MS}; a member silent for the
 *   lease (device_assignment.ts) is dropped. Offline presences of dead gateways are cleared.
 *
 * @example
 * ```ts
 * const membership = await startMembership(mqttConfig, { id, log, open, close, serving });
 * membership.deviceOnline("kitchen"); // calls open("kitchen") if this gateway owns it
 * ```
 */
import type { MqttConfig } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { parseMessageFor } from "../shared/messages.ts";
import { connectMqtt, type NailaMqtt } from "../shared/mqtt.ts";
import { topicFilter, topicString } from "../shared/topics.ts";
import { DeviceAssignment, LEASE_MS } from "./device_assignment.ts";

/** Wait after subscribing for the retained presences of running gateways (ms): a round trip. */
export const SETTLE_MS = 500;
/** Wait between claiming a device and offering to it (ms): both racing claims cross by then. */
export const CLAIM_SETTLE_MS = 300;
/** Presence republished this often (ms); a third of the lease, so one lost beat costs nothing. */
export const HEARTBEAT_MS = LEASE_MS / 3;
/** Several claim changes within this long go out as one presence (ms). */
const PUBLISH_DEBOUNCE_MS = 50;
/** Random bytes of a generated gateway id. */
const ID_BYTES = 4;

/** What the membership does to the gateway's sessions. */
export interface MembershipActions {
  /** Open (offer) a session to `device`: this gateway owns it. */
  open(device: string): void;
  /** Close this gateway's session of `device`: another gateway owns it. */
  close(device: string): void;
  /** Whether this gateway holds a session of `device`. */
  serving(device: string): boolean;
}

/** Options of {@link startMembership}. */
export interface MembershipOptions extends MembershipActions {
  log: Logger;
  /** This gateway's id (a valid topic level); default `g` + random hex. */
  id?: string;
  settleMs?: number;
  claimSettleMs?: number;
}

/** A running membership; see the module doc. */
export interface Membership {
  readonly id: string;
  readonly assignment: DeviceAssignment;
  /**
   * Device `device` wants a session (it came online, or re-announced itself): if this gateway
   * owns it, a session is opened (replacing one it holds); if another gateway does, a session
   * this gateway still holds is closed.
   */
  deviceOnline(device: string): void;
  /** Device `device` went offline. */
  deviceOffline(device: string): void;
  /** This gateway's claims changed (a session opened or closed): republish soon. */
  claimsChanged(): void;
  /** Clears the presence and disconnects. */
  close(): Promise<void>;
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(ID_BYTES));
  return "g" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Connects, announces, settles; see the module doc. */
export async function startMembership(
  config: MqttConfig,
  options: MembershipOptions,
): Promise<Membership> {
  const { log } = options;
  const id = options.id ?? randomId();
  const claimSettleMs = options.claimSettleMs ?? CLAIM_SETTLE_MS;
  /** Devices claimed and waiting for the claim settle, with their timers. */
  const claiming = new Map<string, ReturnType<typeof setTimeout>>();
  const online = new Set<string>();
  const assignment = new DeviceAssignment(id, (device) => claimed(device));
  const topic = { kind: "gateway_presence", gateway: id } as const;
  const claimed = (device: string) => options.serving(device) || claiming.has(device);
  const presence = (isOnline: boolean) => ({
    online: isOnline,
    timestamp: new Date().toISOString(),
    gateway: id,
    ...(isOnline ? { devices: [...online].filter(claimed) } : {}),
  });
  const mqtt: NailaMqtt = await connectMqtt(config, {
    clientId: `naila-gateway-${id}`,
    log,
    will: { topic, message: presence(false) },
  });
  let closed = false;
  const publishNow = () => {
    if (closed) return;
    mqtt.publish(topic, presence(true)).catch((error) =>
      log.warn("gateway presence not published", { error: String(error) })
    );
  };
  let publishTimer: ReturnType<typeof setTimeout> | undefined;
  const publishSoon = () => {
    publishTimer ??= setTimeout(() => {
      publishTimer = undefined;
      publishNow();
    }, PUBLISH_DEBOUNCE_MS);
  };

  const take = (device: string) => {
    if (closed || claiming.has(device) || options.serving(device)) return;
    if (assignment.peers.length === 0) return options.open(device);
    claiming.set(
      device,
      setTimeout(() => {
        claiming.delete(device);
        if (closed || !online.has(device)) return publishSoon();
        if (assignment.owns(device)) options.open(device);
        else {log.info("device claimed by another gateway", {
            device,
            owner: assignment.owner(device),
          });}
        publishSoon();
      }, claimSettleMs),
    );
    publishNow();
  };
  /** After a membership change: take what is now ours, let go of what is not. */
  const rebalance = () => {
    for (const device of online) {
      if (assignment.owns(device)) take(device);
      else if (options.serving(device)) {
        log.info("device moves to another gateway", { device, owner: assignment.owner(device) });
        options.close(device);
      }
    }
    publishSoon();
  };

  mqtt.onMessage((received, payload) => {
    if (received.kind !== "gateway_presence" || received.gateway === id) return;
    const gateway = received.gateway;
    if (payload.length === 0) {
      if (assignment.memberDown(gateway)) rebalance();
      return;
    }
    const parsed = parseMessageFor("gateway_presence", payload);
    if (!parsed.ok || parsed.value.gateway !== gateway) {
      return void log.warn("invalid gateway presence dropped", {
        gateway,
        error: parsed.ok ? "names another gateway" : parsed.error,
      });
    }
    if (!parsed.value.online) {
      log.info("gateway offline", { gateway });
      assignment.memberDown(gateway);
      // The last will of a dead gateway: clear it so the broker forgets that id.
      mqtt.client.publishAsync(topicString(received), "", { qos: 1, retain: true })
        .catch(() => {});
      return rebalance();
    }
    const known = assignment.peers.includes(gateway);
    assignment.memberUp(gateway, parsed.value.devices ?? []);
    if (!known) log.info("gateway online", { gateway });
    rebalance();
  });
  await mqtt.subscribe(topicFilter("gateway_presence"));
  // Re-announce on every reconnect (a broker restart loses retained messages without persistence).
  mqtt.client.on("connect", () => {
    mqtt.subscribe(topicFilter("gateway_presence")).then(publishNow, () => {});
  });
  publishNow();
  await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? SETTLE_MS));
  const heartbeat = setInterval(() => {
    const gone = assignment.expire();
    if (gone.length > 0) {
      log.warn("gateway presence expired", { gateways: gone });
      rebalance();
    }
    publishNow();
  }, HEARTBEAT_MS);
  log.info("gateway membership ready", { gateway: id, peers: assignment.peers });

  return {
    id,
    assignment,
    deviceOnline(device) {
      online.add(device);
      if (!assignment.owns(device)) {
        if (options.serving(device)) options.close(device);
        return;
      }
      if (options.serving(device)) return options.open(device);
      take(device);
    },
    deviceOffline(device) {
      online.delete(device);
      const timer = claiming.get(device);
      if (timer !== undefined) clearTimeout(timer);
      claiming.delete(device);
      publishSoon();
    },
    claimsChanged: publishSoon,
    async close() {
      closed = true;
      clearInterval(heartbeat);
      clearTimeout(publishTimer);
      for (const timer of claiming.values()) clearTimeout(timer);
      claiming.clear();
      try {
        await mqtt.client.publishAsync(topicString(topic), "", { qos: 1, retain: true });
      } catch (error) {
        log.warn("gateway presence not cleared", { error: String(error) });
      }
      await mqtt.close();
    },
  };
}
