/**
 * The server's MQTT connection, made in the background: the audio socket serves while the broker
 * is down or still starting (spec 4.1 "fail independently"), and everything MQTT does — the
 * retained online status, subscriptions, commands — starts once a connection is up. After the
 * first connection npm:mqtt reconnects and resubscribes by itself; the online status is
 * published again on every reconnect, since a restarted broker has lost its retained messages.
 *
 * @example
 * ```ts
 * const link = new MqttLink(config.mqtt, { clientId: "naila-server", will, online: () => status });
 * link.subscribe("naila/devices/+/events", (topic, payload) => {});
 * link.start(); // once the server is ready to be seen online
 * await link.publish({ kind: "device_command", device: "kitchen" }, { command: "stop" });
 * await link.close(offlineStatus);
 * ```
 */
import { delay } from "../shared/async.ts";
import type { MqttConfig } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import type { ServerStatus, TopicMessages } from "../shared/messages.ts";
import { connectMqtt, type NailaMqtt, type Will } from "../shared/mqtt.ts";
import type { Topic, TopicKind, TopicOf } from "../shared/topics.ts";

/** One connection attempt: short, so shutdown never waits long for a pending one. */
const ATTEMPT_TIMEOUT_MS = 2000;
/** Pause between attempts while the broker is unreachable. */
const RETRY_MS = 1000;

/** Options of {@link MqttLink}. */
export interface MqttLinkOptions {
  clientId: string;
  will: Will;
  /** The status to publish (retained) on every connect. */
  online: () => ServerStatus;
  log?: Logger;
}

type Handler = (topic: Topic, payload: string) => void;

/** A background MQTT connection with publish/subscribe that work before it is up. */
export class MqttLink {
  #config: MqttConfig;
  #options: MqttLinkOptions;
  #mqtt: NailaMqtt | undefined;
  #closed = false;
  #subscriptions: { filter: string | string[]; handler: Handler }[] = [];
  #connecting: Promise<void> | undefined;
  #connected: Promise<void>;
  #markConnected!: () => void;

  constructor(config: MqttConfig, options: MqttLinkOptions) {
    this.#config = config;
    this.#options = options;
    this.#connected = new Promise((resolve) => this.#markConnected = resolve);
  }

  /** Starts connecting (in the background, until it succeeds or {@link close}). */
  start(): void {
    if (this.#closed) return;
    this.#connecting ??= this.#connect();
  }

  /** True while a connection is up. */
  get connected(): boolean {
    return this.#mqtt?.client.connected ?? false;
  }

  /** Resolves once the first connection is up (never, if it never comes). */
  whenConnected(): Promise<void> {
    return this.#connected;
  }

  /**
   * Subscribes to one or more filters now or once connected. `handler` sees every NAILA message
   * (decoded once per handler, so give related filters one handler): check its kind.
   */
  subscribe(filter: string | string[], handler: Handler): void {
    this.#subscriptions.push({ filter, handler });
    if (this.#mqtt) this.#activate(this.#mqtt, { filter, handler });
  }

  /** Publishes if connected; otherwise logs and drops (commands are useless when late). */
  async publish<K extends TopicKind>(topic: TopicOf<K>, message: TopicMessages[K]): Promise<void> {
    if (!this.#mqtt || !this.connected) {
      this.#options.log?.warn("MQTT not connected: message dropped", { kind: topic.kind });
      return;
    }
    await this.#mqtt.publish(topic, message);
  }

  /**
   * Publishes the online status again (retained), e.g. when the load it carries changed; does
   * nothing while not connected (the status goes out on connect anyway). The caller bounds the
   * rate.
   */
  async republish(): Promise<void> {
    if (this.#closed || !this.#mqtt || !this.connected) return;
    await this.#mqtt.publish({ kind: "server_status" }, this.#options.online()).catch((error) =>
      this.#options.log?.warn("status not published", { error })
    );
  }

  /** Publishes `offline` (if connected) and disconnects; stops trying to connect. */
  async close(offline?: ServerStatus): Promise<void> {
    this.#closed = true;
    await this.#connecting;
    const mqtt = this.#mqtt;
    this.#mqtt = undefined;
    if (!mqtt) return;
    if (offline && mqtt.client.connected) {
      await mqtt.publish({ kind: "server_status" }, offline).catch(() => {});
    }
    await mqtt.close();
  }

  async #connect(): Promise<void> {
    const { host, port } = this.#config;
    let attempt = 0;
    while (!this.#closed) {
      try {
        const mqtt = await connectMqtt(this.#config, {
          clientId: this.#options.clientId,
          will: this.#options.will,
          connectTimeoutMs: ATTEMPT_TIMEOUT_MS,
          log: this.#options.log,
        });
        if (this.#closed) {
          await mqtt.close();
          return;
        }
        this.#mqtt = mqtt;
        break;
      } catch (error) {
        if (attempt++ === 0) {
          this.#options.log?.warn("MQTT broker unreachable, retrying in the background", {
            host,
            port,
            error: (error as Error).message,
          });
        }
        await delay(RETRY_MS);
      }
    }
    const mqtt = this.#mqtt;
    if (!mqtt) return;
    this.#options.log?.info("MQTT connected", { host, port, attempts: attempt + 1 });
    const announce = () =>
      mqtt.publish({ kind: "server_status" }, this.#options.online()).catch((error) =>
        this.#options.log?.warn("status not published", { error })
      );
    // npm:mqtt emits "connect" again after every reconnect.
    mqtt.client.on("connect", () => void announce());
    for (const subscription of this.#subscriptions) this.#activate(mqtt, subscription);
    await announce();
    this.#markConnected();
  }

  #activate(mqtt: NailaMqtt, subscription: { filter: string | string[]; handler: Handler }): void {
    mqtt.onMessage(subscription.handler);
    mqtt.subscribe(subscription.filter).catch((error) =>
      this.#options.log?.warn("subscribe failed", { filter: subscription.filter, error })
    );
  }
}
