/**
 * Embedded MQTT broker (npm:aedes over `node:net`, or `node:tls` with a certificate), used when
 * MQTT_HOST is unset so a single machine runs NAILA without installing mosquitto. Speaks MQTT
 * 3.1.1 only (clients must use protocolVersion 4) and keeps retained messages in memory.
 *
 * Secure by default (spec 17.2): logins are checked against the users of a data directory
 * (`credentials.ts`), every publish and subscribe against the access table of `mqtt_acl.ts`, and
 * every packet's size against its topic's limit before aedes buffers it (`mqtt_packet_guard.ts`).
 * Refusals are audit events (`audit.ts`), published on `naila/server/audit`. Anonymous clients
 * get in only with `allowAnonymous: true` (MQTT_ALLOW_ANONYMOUS), and then may do anything.
 *
 * @example
 * ```ts
 * import { startEmbeddedBroker } from "@naila/shared/broker";
 * const broker = await startEmbeddedBroker({ host: "127.0.0.1", port: 0, dataDir: "./data" });
 * console.log(broker.port); // the port the OS picked
 * await broker.close();
 * ```
 */
import { Aedes, type Client } from "aedes";
import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { AuditLog } from "./audit.ts";
import { MqttUserDirectory } from "./credentials.ts";
import { createLogger, type Logger } from "./log.ts";
import type { AuditEvent } from "./messages.ts";
import {
  MAX_CONTROL_PACKET_BYTES,
  MAX_MEDIA_PACKET_BYTES,
  mayPublish,
  maySubscribe,
  type MqttIdentity,
  packetLimitFor,
} from "./mqtt_acl.ts";
import { type MalformedPacket, type OversizedPacket, PacketGuard } from "./mqtt_packet_guard.ts";
import { TOPIC_DELIVERY, topicString } from "./topics.ts";

/** Options of {@link startEmbeddedBroker}. */
export interface EmbeddedBrokerOptions {
  /** Address to listen on; default "127.0.0.1" (loopback: nothing leaves the machine). */
  host?: string;
  /** Port to listen on; 0 lets the OS pick one. Default 1883 (spec 14.2 MQTT_PORT). */
  port?: number;
  /** Data directory whose `secrets/mqtt_users.json` holds the users allowed in. */
  dataDir?: string;
  /** Let clients in without a login, with every right (explicit opt-out of security). */
  allowAnonymous?: boolean;
  /** PEM certificate chain and key: listen with TLS instead of plain TCP. */
  tls?: { cert: string; key: string };
  /** Where audit and broker lines go; default a `broker` logger. */
  log?: Logger;
}

/** A running embedded broker. */
export interface EmbeddedBroker {
  /** Port actually listened on. */
  port: number;
  host: string;
  /** True when the listener speaks TLS. */
  tls: boolean;
  /** Stops listening, disconnects every client and closes the broker. */
  close(): Promise<void>;
}

/** Where a refused publish goes: outside NAILA's tree, so no filter anyone may use matches it. */
const DENIED_TOPIC = "$naila/denied";
/** CONNACK return code 2 (MQTT 3.1.1 section 3.2.2.3): identifier rejected. */
const IDENTIFIER_REJECTED = 2;
/** CONNACK return code 4 (MQTT 3.1.1 section 3.2.2.3): bad user name or password. */
const BAD_LOGIN = 4;
/** CONNACK return code 5: not authorized. */
const NOT_AUTHORIZED = 5;

/** The peer's IP address (no port: the audit rate limit counts per address across reconnects). */
function address(socket: Socket | undefined): string | undefined {
  return socket?.remoteAddress;
}

/**
 * Deno's node:net `read()` without a size returns only part of what is buffered (seen: 64,485
 * of 130,021 bytes) and then emits no further 'readable' for the rest; aedes reads once per
 * 'readable', so a connection that sent more than ~150 KB at once stalled until its next bytes.
 * Reading the whole buffer fixes it; every chunk also passes `guard` first.
 */
function readWholeBuffer(
  socket: Socket,
  guard: PacketGuard,
  refuse: (problem: OversizedPacket | MalformedPacket) => void,
) {
  const read = socket.read.bind(socket);
  socket.read = (size?: number) => {
    const whole = size === undefined || size === null || Number.isNaN(size);
    const chunk = read(whole && socket.readableLength > 0 ? socket.readableLength : size);
    if (chunk === null || socket.destroyed) return chunk;
    const problem = guard.feed(chunk);
    if (problem === undefined) return chunk;
    refuse(problem);
    socket.destroy();
    return null;
  };
}

/** Starts an aedes broker listening on `options.host:options.port`. */
export async function startEmbeddedBroker(
  options: EmbeddedBrokerOptions = {},
): Promise<EmbeddedBroker> {
  const host = options.host ?? "127.0.0.1";
  if (options.dataDir === undefined && !options.allowAnonymous) {
    throw new TypeError(
      "embedded MQTT broker needs a data directory with its users (dataDir) or allowAnonymous: true",
    );
  }
  const log = options.log ?? createLogger("broker");
  const users = options.dataDir === undefined ? undefined : new MqttUserDirectory(options.dataDir);
  const identities = new WeakMap<Client, MqttIdentity>();
  const sockets = new Set<Socket>();
  const audit = new AuditLog({
    log,
    publish: (event: AuditEvent) => {
      const topic = { kind: "server_audit" } as const;
      aedes.publish({
        cmd: "publish",
        topic: topicString(topic),
        payload: JSON.stringify(event),
        qos: TOPIC_DELIVERY.server_audit.qos,
        retain: false,
        dup: false,
      }, () => {});
    },
  });
  const who = (client: Client | null) => ({
    username: client ? identities.get(client)?.user : undefined,
    client_id: client?.id?.slice(0, 128),
    address: address(client?.conn as Socket | undefined),
  });
  const aedes: Aedes = await Aedes.createBroker({
    authenticate: (client, username, password, done) => {
      const claimed = {
        username: username?.slice(0, 128),
        client_id: client.id?.slice(0, 128),
        address: address(client.conn as Socket),
      };
      const identity = users?.verify(username, password);
      const anonymous = username === undefined && options.allowAnonymous === true;
      if (identity === undefined && !anonymous) {
        audit.record({
          event: "auth_failed",
          ...claimed,
          detail: username === undefined ? "no user name (anonymous)" : "bad user name or password",
        });
        const error = Object.assign(new Error("bad user name or password"), {
          returnCode: username === undefined ? NOT_AUTHORIZED : BAD_LOGIN,
        });
        return done(error, false);
      }
      const previous = (aedes as unknown as { clients: Record<string, Client> }).clients[client.id];
      const owner = previous === undefined ? undefined : identities.get(previous)?.user;
      if (previous !== undefined && owner !== identity?.user) {
        // Only the same login may take a client id over: a device cannot knock the gateway off
        // by connecting with its id (MQTT 3.1.1 section 3.1.4 would close the older client).
        audit.record({
          event: "replaced",
          ...claimed,
          detail: `refused: client id ${client.id} belongs to another login's live connection`,
        });
        const error = Object.assign(new Error("client id in use by another login"), {
          returnCode: IDENTIFIER_REJECTED,
        });
        return done(error, false);
      }
      if (identity) identities.set(client, identity);
      if (previous !== undefined) {
        audit.record({
          event: "replaced",
          ...claimed,
          detail: `client id ${client.id} was already connected from ${
            address(previous.conn as Socket) ?? "?"
          }: the older connection is closed (two processes must not share a client id)`,
        });
      }
      done(null, true);
    },
    authorizePublish: (client, packet, done) => {
      const identity = client ? identities.get(client) : undefined;
      if (client === null || identity === undefined) return done(null); // broker or anonymous
      const why = mayPublish(identity, packet.topic);
      if (why === undefined) return done(null);
      audit.record({ event: "publish_denied", ...who(client), topic: packet.topic, detail: why });
      // Dropped the way Mosquitto drops it: acknowledged, never delivered or retained. Closing
      // the connection instead would make the client resend the QoS 1 message on every
      // reconnect, forever. Nobody may subscribe to the sink topic.
      packet.topic = DENIED_TOPIC;
      packet.retain = false;
      done(null);
    },
    authorizeSubscribe: (client, subscription, done) => {
      const identity = identities.get(client);
      if (identity === undefined) return done(null, subscription);
      const why = maySubscribe(identity, subscription.topic);
      if (why === undefined) return done(null, subscription);
      audit.record({
        event: "subscribe_denied",
        ...who(client),
        topic: subscription.topic,
        detail: why,
      });
      done(null, null); // SUBACK 0x80 for this filter; the connection stays
    },
  });
  const handle = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const guard = new PacketGuard(
      (topic) => topic === undefined ? MAX_CONTROL_PACKET_BYTES : packetLimitFor(topic),
      MAX_MEDIA_PACKET_BYTES,
    );
    let client: Client | null = null;
    readWholeBuffer(socket, guard, (problem) => {
      if ("malformed" in problem) {
        audit.record({
          event: "oversized",
          ...who(client),
          address: address(socket),
          detail: `malformed MQTT packet (${problem.malformed}): connection closed`,
        });
        return;
      }
      audit.record({
        event: "oversized",
        ...who(client),
        address: address(socket),
        topic: problem.topic?.slice(0, 4096),
        bytes: problem.bytes,
        detail:
          `packet of ${problem.bytes} bytes over the ${problem.limit}-byte limit: connection closed`,
      });
    });
    client = aedes.handle(socket);
  };
  const server: Server = options.tls
    ? createTlsServer({ cert: options.tls.cert, key: options.tls.key }, handle)
    : createServer(handle);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 1883, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw new Error(
      `embedded MQTT broker cannot listen on ${host}:${options.port ?? 1883}: ${
        (err as Error).message
      }`,
      { cause: err },
    );
  }
  const listening = server.address();
  const port = typeof listening === "object" && listening !== null ? listening.port : options.port!;
  let closing: Promise<void> | undefined;
  return {
    port,
    host,
    tls: options.tls !== undefined,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        await stopped;
      })();
      return closing;
    },
  };
}
