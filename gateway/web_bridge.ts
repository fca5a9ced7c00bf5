/**
 * The browser device page and its signaling bridge (spec 11.7's "web service", inside the
 * gateway process): browsers cannot speak MQTT here (Debian's mosquitto 2.0.11 opens no websockets
 * listener), so the page talks JSON over a WebSocket and this module relays it to the same MQTT
 * topics every other device uses. The gateway's session logic cannot tell a browser from an ESP32.
 *
 * Page → bridge: `{kind: "answer" | "ice", payload}`. Bridge → page: `{kind: "offer" | "ice" |
 * "event" | "media" | "error", payload}` ("media": an answer on the device's media/response, e.g.
 * a stored alert's image, docs/media.md). Everything is validated with the shared schemas; a bad message is
 * answered with an error to that page only.
 */

import { idProblem } from "../shared/ids.ts";
import type { Logger } from "../shared/log.ts";
import type { NailaMqtt } from "../shared/mqtt.ts";
import {
  MAX_CONTROL_MESSAGE_CHARS,
  parseDeviceEvent,
  parseIceCandidate,
  parseMediaAnswer,
  parseSdpAnswer,
  parseSdpOffer,
  type TopicMessages,
} from "../shared/messages.ts";
import { type TopicKind, type TopicOf, topicString } from "../shared/topics.ts";
import { BROWSER_DEVICE_PREFIX } from "../shared/mqtt_acl.ts";
import { createUploadHandler } from "./upload_bridge.ts";

/** Options for {@link serveDevicePage}. */
export interface WebBridgeOptions {
  port: number;
  hostname?: string;
  /** PEM certificate and key file paths: browsers allow the microphone off localhost only on HTTPS. */
  cert?: string;
  key?: string;
  /** The gateway's MQTT connection: QoS, retain and schemas come from shared/. */
  mqtt: NailaMqtt;
  log: Logger;
}

/** A running page server. */
export interface WebBridge {
  port: number;
  /** Devices whose page is connected right now. */
  devices(): string[];
  close(): Promise<void>;
}

const PAGE_URL = new URL("./web/device.html", import.meta.url);

/**
 * Browser device ids start with this, so a page can never take over (or mark offline) the id of a
 * hardware device: anyone on the LAN can open the page.
 */
export const BROWSER_ID_PREFIX = BROWSER_DEVICE_PREFIX; // the broker's ACL uses the same prefix

/** What a browser device announces about itself in its status. */
const BROWSER_CAPABILITIES = ["audio", "speaker", "browser"];

/**
 * Serves the device page on `/`, the signaling WebSocket on `/ws?device=ID` and photo uploads on
 * `/api/upload` (upload_bridge.ts).
 */
export async function serveDevicePage(options: WebBridgeOptions): Promise<WebBridge> {
  const { mqtt, log } = options;
  const page = await Deno.readFile(PAGE_URL);
  const sockets = new Map<string, WebSocket>();

  function publish<K extends TopicKind>(topic: TopicOf<K>, message: TopicMessages[K]) {
    mqtt.publish(topic, message).catch((error) =>
      log.warn("MQTT publish failed", { topic: topicString(topic), error: String(error) })
    );
  }

  // A page with its camera on (`&video=1`, optional `&zone=`) streams video (docs/video.md).
  const cameras = new Map<string, { zone?: string }>();
  function status(device: string, online: boolean) {
    const camera = cameras.get(device);
    publish({ kind: "device_status", device }, {
      device_id: device,
      online,
      capabilities: camera ? [...BROWSER_CAPABILITIES, "video"] : BROWSER_CAPABILITIES,
      ...(camera?.zone ? { zone: camera.zone } : {}),
      timestamp: new Date().toISOString(),
    });
  }

  const stopRelay = mqtt.onMessage((topic, text) => {
    if (!("device" in topic)) return;
    const socket = sockets.get(topic.device);
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const { kind } = topic;
    if (kind === "device_offer") {
      const offer = parseSdpOffer(text);
      if (offer.ok) socket.send(JSON.stringify({ kind: "offer", payload: offer.value }));
    } else if (kind === "device_ice") {
      const candidate = parseIceCandidate(text);
      // The topic carries both directions; the page only needs the gateway's candidates.
      if (candidate.ok && candidate.value.from !== "device") {
        socket.send(JSON.stringify({ kind: "ice", payload: candidate.value }));
      }
    } else if (kind === "device_events") {
      const event = parseDeviceEvent(text);
      if (event.ok) socket.send(JSON.stringify({ kind: "event", payload: event.value }));
    } else if (kind === "device_media_response") {
      // An answer about media for this device ("show me the last alert": with its image).
      const answer = parseMediaAnswer(text);
      if (answer.ok) socket.send(JSON.stringify({ kind: "media", payload: answer.value }));
    }
  });

  const deviceTopics = (device: string) =>
    (["device_offer", "device_ice", "device_events", "device_media_response"] as const).map((
      kind,
    ) => topicString({ kind, device }));

  function fromPage(device: string, socket: WebSocket, data: unknown) {
    const reject = (message: string) =>
      socket.send(JSON.stringify({ kind: "error", payload: { message } }));
    if (typeof data !== "string" || data.length > MAX_CONTROL_MESSAGE_CHARS) {
      return reject(`message must be JSON text of at most ${MAX_CONTROL_MESSAGE_CHARS} characters`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return reject("message is not valid JSON");
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      return reject(`message must be a JSON object {kind, payload}, got ${data.slice(0, 40)}`);
    }
    const message = parsed as { kind?: unknown; payload?: unknown };
    if (message.kind === "answer") {
      const answer = parseSdpAnswer(message.payload);
      if (!answer.ok) return reject(answer.error);
      publish({ kind: "device_answer", device }, answer.value);
    } else if (message.kind === "ice") {
      const candidate = parseIceCandidate(message.payload);
      if (!candidate.ok) return reject(candidate.error);
      publish({ kind: "device_ice", device }, { ...candidate.value, from: "device" });
    } else {
      reject(`kind ${JSON.stringify(message.kind)} is not one of answer|ice`);
    }
  }

  function openSocket(request: Request, device: string): Response {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onopen = () => {
      const previous = sockets.get(device);
      sockets.set(device, socket);
      previous?.close(4000, "replaced by a newer page for the same device");
      mqtt.subscribe(deviceTopics(device)).then(
        () => status(device, true),
        (error) => log.warn("MQTT subscribe failed", { device, error: String(error) }),
      );
      log.info("browser device connected", { device });
    };
    socket.onmessage = (event) => {
      try {
        fromPage(device, socket, event.data);
      } catch (error) {
        // One page's bad message must never reach the event loop: it would end every call.
        log.warn("browser message failed", { device, error: String(error) });
      }
    };
    socket.onclose = () => {
      if (sockets.get(device) !== socket) return;
      sockets.delete(device);
      mqtt.unsubscribe(deviceTopics(device)).catch(() => {});
      status(device, false);
      cameras.delete(device);
      log.info("browser device disconnected", { device });
    };
    socket.onerror = () => {};
    return response;
  }

  // "Send a photo" (spec 11.7): bridged to the AI server over MQTT, answered in the response.
  const upload = createUploadHandler({ mqtt, idPrefix: BROWSER_ID_PREFIX });
  const handler = (request: Request): Response | Promise<Response> => {
    const url = new URL(request.url);
    if (url.pathname === "/api/upload") return upload(request, url);
    if (url.pathname === "/" || url.pathname === "/device") {
      return new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    if (url.pathname === "/healthz") return new Response("ok\n");
    if (url.pathname === "/ws") {
      const device = url.searchParams.get("device");
      const problem = idProblem(device) ??
        (device!.startsWith(BROWSER_ID_PREFIX)
          ? undefined
          : `does not start with ${BROWSER_ID_PREFIX}`);
      if (problem) {
        return new Response(`device ${JSON.stringify(device)} ${problem}\n`, { status: 400 });
      }
      const zone = url.searchParams.get("zone") ?? undefined;
      const zoneProblem = zone === undefined ? undefined : idProblem(zone);
      if (zoneProblem) {
        return new Response(`zone ${JSON.stringify(zone)} ${zoneProblem}\n`, { status: 400 });
      }
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return new Response("expected a WebSocket upgrade\n", { status: 426 });
      }
      if (url.searchParams.get("video") === "1") cameras.set(device!, { zone });
      else cameras.delete(device!);
      return openSocket(request, device!);
    }
    return new Response("not found\n", { status: 404 });
  };

  const tls = options.cert && options.key
    ? { cert: await Deno.readTextFile(options.cert), key: await Deno.readTextFile(options.key) }
    : {};
  const server = Deno.serve({
    port: options.port,
    hostname: options.hostname ?? "0.0.0.0",
    onListen: () => {},
    ...tls,
  }, handler);
  const port = (server.addr as Deno.NetAddr).port;
  log.info("device page listening", { port, https: "cert" in tls });

  return {
    port,
    devices: () => [...sockets.keys()],
    async close() {
      stopRelay();
      for (const socket of sockets.values()) socket.close(1001, "gateway stopping");
      await server.shutdown();
    },
  };
}
