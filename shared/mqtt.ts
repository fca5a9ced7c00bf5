/**
 * MQTT client for NAILA: npm:mqtt with our config (TLS, credentials), MQTT 3.1.1, automatic
 * reconnects, and a typed publish that takes QoS and retain from `topics.ts` and checks the
 * message against its schema from `messages.ts`, so callers never pick either by hand.
 *
 * @example
 * ```ts
 * import { connectMqtt } from "@naila/shared/mqtt";
 * import { loadConfig } from "@naila/shared/config";
 * const mqtt = await connectMqtt(loadConfig({}).mqtt, {
 *   clientId: "gateway",
 *   will: { topic: { kind: "gateway_status" }, message: { online: false, timestamp: new Date().toISOString() } },
 * });
 * await mqtt.publish({ kind: "gateway_status" }, { online: true, timestamp: new Date().toISOString() });
 * await mqtt.close();
 * ```
 */
import { connect, type IClientOptions, type MqttClient } from "mqtt";
import type { MqttConfig } from "./config.ts";
import type { Logger } from "./log.ts";
import { parseMessageFor, type TopicMessages } from "./messages.ts";
import {
  parseTopic,
  type Topic,
  TOPIC_DELIVERY,
  type TopicKind,
  type TopicOf,
  topicString,
} from "./topics.ts";

/** MQTT 3.1.1: the one version both mosquitto and the embedded aedes broker speak. */
export const MQTT_PROTOCOL_VERSION = 4;
/** Pause between reconnect attempts: quick enough that signaling resumes within a breath. */
export const RECONNECT_PERIOD_MS = 1000;
/** Default wait for the first connection before {@link connectMqtt} gives up. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Keepalive: the broker declares us gone (and sends the will) after 1.5 × this. */
export const KEEPALIVE_S = 10;

/** SUBACK return code of a refused filter (MQTT 3.1.1 section 3.9.3). */
const SUBACK_FAILURE = 128;
/** A connection the broker closes this soon after it opened counts as a quick drop. */
export const QUICK_DROP_MS = 3000;
/** Quick drops in a row that mean a client-id collision (or a refused publish), reported once. */
export const QUICK_DROPS_REPORTED = 3;
/** Host-name characters kept in a client id (MQTT ids are best kept short). */
const CLIENT_ID_HOST_CHARS = 24;

/**
 * A client id unique to this process instance: `naila-{role}-{host}-{random}`, e.g.
 * `naila-gateway-pi4-3f9c2a`. Two processes with one id kick each other off the broker (MQTT
 * 3.1.1 section 3.1.4: the server disconnects the older client), so no id is ever a constant.
 */
export function uniqueClientId(role: string): string {
  let host = "host";
  try {
    host = Deno.hostname().replace(/[^A-Za-z0-9_.-]/g, "").slice(0, CLIENT_ID_HOST_CHARS) || host;
  } catch {
    // no --allow-sys: keep "host"
  }
  const random = crypto.getRandomValues(new Uint8Array(3));
  const suffix = [...random].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `naila-${role}-${host}-${suffix}`;
}

/** Last-will message the broker publishes when we vanish without a clean disconnect. */
export interface Will<K extends TopicKind = TopicKind> {
  topic: TopicOf<K>;
  message: TopicMessages[K];
}

/** Options of {@link connectMqtt}. */
export interface ConnectMqttOptions {
  /** MQTT client id; a second connection with the same id kicks the first off the broker. */
  clientId: string;
  /** Sent by the broker on abrupt disconnect, typically `{ online: false }` status. */
  will?: Will;
  /** How long to wait for the first connection; default {@link CONNECT_TIMEOUT_MS}. */
  connectTimeoutMs?: number;
  /** Keepalive in seconds; default {@link KEEPALIVE_S}. */
  keepaliveS?: number;
  /** Where a suspected client-id collision is reported (once, at warn level). */
  log?: Logger;
}

/** A connected NAILA MQTT client. */
export interface NailaMqtt {
  /** The underlying npm:mqtt client, for anything not covered here. */
  readonly client: MqttClient;
  /** Publishes `message` on `topic` with the kind's QoS and retain flag, after validating it. */
  publish<K extends TopicKind>(topic: TopicOf<K>, message: TopicMessages[K]): Promise<void>;
  /** Subscribes to one or more filters (see `topicFilter`) at QoS 1; rejects, naming them, when the broker refuses any (ACL). */
  subscribe(filters: string | string[]): Promise<void>;
  /** Ends subscriptions made with {@link subscribe}. */
  unsubscribe(filters: string | string[]): Promise<void>;
  /**
   * Calls `handler` for each message on a topic of NAILA's tree, with the parsed topic and the
   * payload text, and whether the broker delivered it as a retained message (replayed on
   * subscribe, not newly published). Messages on other topics are ignored. Returns a function that
   * unsubscribes it.
   */
  onMessage(
    handler: (topic: Topic, payload: string, delivery: { retained: boolean }) => void,
  ): () => void;
  /** Disconnects cleanly (no will is sent). */
  close(): Promise<void>;
}

function encodeMessage<K extends TopicKind>(topic: TopicOf<K>, message: TopicMessages[K]): string {
  const checked = parseMessageFor(topic.kind, message);
  if (!checked.ok) {
    throw new TypeError(`refusing to publish on ${topicString(topic)}: ${checked.error}`);
  }
  return JSON.stringify(message);
}

/** Builds npm:mqtt options from our config; reads TLS files. Exported for tests and tools. */
export function mqttClientOptions(config: MqttConfig, options: ConnectMqttOptions): IClientOptions {
  const clientOptions: IClientOptions = {
    protocol: config.tls ? "mqtts" : "mqtt",
    host: config.host,
    port: config.port,
    clientId: options.clientId,
    protocolVersion: MQTT_PROTOCOL_VERSION,
    reconnectPeriod: RECONNECT_PERIOD_MS,
    connectTimeout: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
    keepalive: options.keepaliveS ?? KEEPALIVE_S,
    clean: true,
  };
  if (config.username !== undefined) clientOptions.username = config.username;
  if (config.password !== undefined) clientOptions.password = config.password;
  else if (config.passwordFile !== undefined) {
    clientOptions.password = Deno.readTextFileSync(config.passwordFile).trim();
  }
  if (config.tls) {
    clientOptions.rejectUnauthorized = true;
    if (config.tls.ca) clientOptions.ca = Deno.readTextFileSync(config.tls.ca);
    if (config.tls.cert) clientOptions.cert = Deno.readTextFileSync(config.tls.cert);
    if (config.tls.key) clientOptions.key = Deno.readTextFileSync(config.tls.key);
  }
  if (options.will) {
    const { topic, message } = options.will;
    const delivery = TOPIC_DELIVERY[topic.kind];
    clientOptions.will = {
      topic: topicString(topic),
      payload: encodeMessage(topic, message),
      qos: delivery.qos,
      retain: delivery.retain,
    };
  }
  return clientOptions;
}

/**
 * Reports, in plain words, a connection the broker keeps closing right after it opens: what two
 * processes sharing one client id look like from either side (each connect kicks the other off,
 * forever), and also what a packet over the broker's size limit looks like.
 */
function watchQuickDrops(client: MqttClient, config: MqttConfig, options: ConnectMqttOptions) {
  let connectedAt = performance.now();
  let drops = 0;
  let reported = false;
  client.on("connect", () => void (connectedAt = performance.now()));
  client.on("close", () => {
    if (client.disconnecting) return;
    drops = performance.now() - connectedAt < QUICK_DROP_MS ? drops + 1 : 0;
    if (drops < QUICK_DROPS_REPORTED || reported) return;
    reported = true;
    options.log?.warn(
      `the MQTT broker closed our connection ${drops} times within ${QUICK_DROP_MS} ms of ` +
        `connecting: another process probably uses client id "${options.clientId}" (a broker ` +
        "drops the older of two clients with one id), or it refuses what we send (a packet over " +
        "its size limit; see its audit log); give every process its own client id",
      { client_id: options.clientId, broker: `${config.host}:${config.port}` },
    );
  });
}

/**
 * Connects to the broker of `config` and resolves once connected, retrying every
 * {@link RECONNECT_PERIOD_MS} while the broker is unreachable. Rejects, naming host and port,
 * when the broker refuses us (credentials) or nothing connects within
 * `options.connectTimeoutMs`. Once connected, npm:mqtt reconnects by itself.
 */
export async function connectMqtt(
  config: MqttConfig,
  options: ConnectMqttOptions,
): Promise<NailaMqtt> {
  const client = connect(mqttClientOptions(config, options));
  const timeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  try {
    await new Promise<void>((resolve, reject) => {
      let lastError = "";
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `MQTT broker ${config.host}:${config.port} not reachable within ${timeoutMs} ms${
              lastError ? `: ${lastError}` : ""
            }`,
          ),
        );
      }, timeoutMs);
      const onConnect = () => {
        cleanup();
        resolve();
      };
      const onError = (err: Error & { code?: unknown }) => {
        // A broker that is still starting refuses the socket: keep retrying until the timeout.
        // A CONNACK refusal (numeric code: bad credentials, not authorized) will not heal.
        if (typeof err.code !== "number") {
          lastError = err.message;
          return;
        }
        cleanup();
        const hint = config.username === undefined
          ? " (no MQTT login given: set MQTT_USERNAME/MQTT_PASSWORD, printed by `deno task " +
            "devices add ID`, or NAILA_DATA_DIR to the server's data directory)"
          : "";
        reject(
          new Error(
            `MQTT broker ${config.host}:${config.port} refused the connection: ${err.message}${hint}`,
            { cause: err },
          ),
        );
      };
      const cleanup = () => {
        clearTimeout(timer);
        client.off("connect", onConnect);
        client.off("error", onError);
      };
      client.on("connect", onConnect);
      client.on("error", onError);
    });
  } catch (err) {
    await client.endAsync(true);
    throw err;
  }
  watchQuickDrops(client, config, options);
  return {
    client,
    async publish(topic, message) {
      const delivery = TOPIC_DELIVERY[topic.kind];
      await client.publishAsync(topicString(topic), encodeMessage(topic, message), {
        qos: delivery.qos,
        retain: delivery.retain,
      });
    },
    async subscribe(filters) {
      const list = Array.isArray(filters) ? filters : [filters];
      let codes: number[];
      try {
        codes = (await client.subscribeAsync(list, { qos: 1 })).map((g) => g.qos);
      } catch (error) {
        // npm:mqtt rejects a SUBACK with a failure code; name the filters it refused.
        const granted = (error as { packet?: { granted?: number[] } }).packet?.granted;
        if (!Array.isArray(granted)) throw error;
        codes = granted;
      }
      const refused = list.filter((_, i) => codes[i] === SUBACK_FAILURE);
      if (refused.length > 0) {
        throw new Error(
          `MQTT broker ${config.host}:${config.port} refused the subscription to ${
            refused.join(", ")
          } (not allowed for this login)`,
        );
      }
    },
    async unsubscribe(filters) {
      await client.unsubscribeAsync(filters);
    },
    onMessage(handler) {
      const decoder = new TextDecoder();
      const listener = (topic: string, payload: Uint8Array, packet: { retain?: boolean }) => {
        const parsed = parseTopic(topic);
        if (parsed.ok) {
          handler(parsed.value, decoder.decode(payload), { retained: packet.retain === true });
        }
      };
      client.on("message", listener);
      return () => void client.off("message", listener);
    },
    async close() {
      await client.endAsync();
    },
  };
}
