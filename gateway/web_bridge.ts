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
 *
 * Who may use it (issue 10):
 * - A WebSocket must come from the page's own origin (or one of `origins`): another site open in
 *   the same browser cannot drive a call. A client that sends no Origin is not a browser.
 * - Each browser is paired once (shared/web_pairing.ts): `POST /pair {code, device?}` trades the
 *   gateway's pairing code for an id and a token; `/ws?device=ID&token=T` needs that id's token,
 *   so only the same browser can take its id over (a second tab: the first is closed with code
 *   {@link REPLACED_CLOSE_CODE} and does not reconnect).
 * - At most `maxSockets` sockets at once; a message is at most {@link MAX_MESSAGE_BYTES},
 *   refused from its frame header before it is buffered (npm:ws `maxPayload`, close 1009).
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Buffer } from "node:buffer";
import type { Duplex } from "node:stream";
// @ts-types="@types/ws"
import { WebSocket as WsSocket, WebSocketServer } from "ws";
import { concatBytes } from "../shared/audio.ts";
import { DEFAULT_MAX_SOCKETS } from "./config.ts";
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
import { BROWSER_ID_PREFIX, PairingError, type WebPairing } from "../shared/web_pairing.ts";

export { BROWSER_ID_PREFIX } from "../shared/web_pairing.ts";
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
  /** Paired browsers; undefined = no pairing required (GATEWAY_PAIRING=off, an explicit opt-out). */
  pairing?: WebPairing;
  /** Origins allowed besides the page's own, e.g. `https://naila.home:8443`. */
  origins?: readonly string[];
  /** Sockets open at once; default {@link DEFAULT_MAX_SOCKETS}. */
  maxSockets?: number;
}

/** A running page server. */
export interface WebBridge {
  port: number;
  /** Devices whose page is connected right now. */
  devices(): string[];
  close(): Promise<void>;
}

const PAGE_URL = new URL("./web/device.html", import.meta.url);

/** What a browser device announces about itself in its status. */
const BROWSER_CAPABILITIES = ["audio", "speaker", "browser"];
/** Largest WebSocket message: an SDP answer with candidates is a few KiB; 64 KiB is generous. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** Largest `POST /pair` body: a code and an id. */
const MAX_PAIR_BODY_BYTES = 1024;
/** Close code telling a page that a newer page took its device id: it must not reconnect. */
export const REPLACED_CLOSE_CODE = 4000;
/** Close code: the gateway is stopping. */
const GOING_AWAY = 1001;

/** The request body as a web stream, read only as fast as it is consumed. */
function bodyStream(request: IncomingMessage): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      request.pause();
      // After the reader gave up (a refusal), the stream is closed: late events are ignored.
      const safely = (act: () => void) => {
        try {
          act();
        } catch {
          // already closed or cancelled
        }
      };
      request.on("data", (chunk: Uint8Array) => {
        safely(() => controller.enqueue(new Uint8Array(chunk)));
        if ((controller.desiredSize ?? 0) <= 0) request.pause();
      });
      request.on("end", () => safely(() => controller.close()));
      request.on("error", (error: Error) => safely(() => controller.error(error)));
    },
    pull() {
      request.resume();
    },
  });
}

/** Whether `origin` may open a socket on a request to `host` (see the module doc). */
export function originAllowed(
  origin: string | undefined,
  host: string | undefined,
  secure: boolean,
  extra: readonly string[],
): boolean {
  if (origin === undefined) return true;
  if (host !== undefined && origin === `${secure ? "https" : "http"}://${host}`) return true;
  return extra.includes(origin);
}

/**
 * Serves the device page on `/`, pairing on `/pair`, the signaling WebSocket on `/ws` and photo
 * uploads on `/api/upload` (upload_bridge.ts; the same origin and token checks as the socket).
 */
export async function serveDevicePage(options: WebBridgeOptions): Promise<WebBridge> {
  const { mqtt, log, pairing } = options;
  const page = await Deno.readFile(PAGE_URL);
  const maxSockets = options.maxSockets ?? DEFAULT_MAX_SOCKETS;
  const origins = options.origins ?? [];
  const sockets = new Map<string, WsSocket>();
  /** Every socket open, with or without a device yet (the cap counts these). */
  const open = new Set<WsSocket>();
  const secure = Boolean(options.cert && options.key);
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });

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
      // The page asks getUserMedia for echoCancellation: the gateway needs no echo guard.
      echo_cancellation: true,
      timestamp: new Date().toISOString(),
    });
  }

  const toPage = (socket: WsSocket, kind: string, payload: unknown) => {
    if (socket.readyState === WsSocket.OPEN) socket.send(JSON.stringify({ kind, payload }));
  };

  const stopRelay = mqtt.onMessage((topic, text) => {
    if (!("device" in topic)) return;
    const socket = sockets.get(topic.device);
    if (!socket) return;
    const { kind } = topic;
    if (kind === "device_offer") {
      const offer = parseSdpOffer(text);
      if (offer.ok) toPage(socket, "offer", offer.value);
    } else if (kind === "device_ice") {
      const candidate = parseIceCandidate(text);
      // The topic carries both directions; the page only needs the gateway's candidates.
      if (candidate.ok && candidate.value.from !== "device") toPage(socket, "ice", candidate.value);
    } else if (kind === "device_events") {
      const event = parseDeviceEvent(text);
      if (event.ok) toPage(socket, "event", event.value);
    } else if (kind === "device_media_response") {
      // An answer about media for this device ("show me the last alert": with its image).
      const answer = parseMediaAnswer(text);
      if (answer.ok) toPage(socket, "media", answer.value);
    }
  });

  const deviceTopics = (device: string) =>
    (["device_offer", "device_ice", "device_events", "device_media_response"] as const).map((
      kind,
    ) => topicString({ kind, device }));

  function fromPage(device: string, socket: WsSocket, data: string) {
    const reject = (message: string) => toPage(socket, "error", { message });
    if (data.length > MAX_CONTROL_MESSAGE_CHARS) {
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

  function attach(socket: WsSocket, device: string): void {
    open.add(socket);
    const previous = sockets.get(device);
    sockets.set(device, socket);
    previous?.close(REPLACED_CLOSE_CODE, "replaced by a newer page for the same device");
    mqtt.subscribe(deviceTopics(device)).then(
      () => status(device, true),
      (error) => log.warn("MQTT subscribe failed", { device, error: String(error) }),
    );
    log.info("browser device connected", { device, replaced: previous !== undefined });
    socket.on("message", (data: unknown, isBinary: boolean) => {
      try {
        if (isBinary) {
          toPage(socket, "error", { message: "message must be JSON text, not binary" });
          return;
        }
        fromPage(device, socket, String(data));
      } catch (error) {
        // One page's bad message must never reach the event loop: it would end every call.
        log.warn("browser message failed", { device, error: String(error) });
      }
    });
    socket.on("error", (error: Error) => {
      // maxPayload: ws closes with 1009 before reading the payload.
      log.warn("browser socket refused a message", { device, error: error.message });
    });
    socket.on("close", () => {
      open.delete(socket);
      if (sockets.get(device) !== socket) return;
      sockets.delete(device);
      mqtt.unsubscribe(deviceTopics(device)).catch(() => {});
      status(device, false);
      cameras.delete(device);
      log.info("browser device disconnected", { device });
    });
  }

  /** Why a `/ws` request is refused (HTTP status and text), or undefined when it may upgrade. */
  function refusal(
    request: IncomingMessage,
    url: URL,
    socket = true,
  ): [number, string] | undefined {
    const device = url.searchParams.get("device");
    const problem = idProblem(device) ??
      (device!.startsWith(BROWSER_ID_PREFIX)
        ? undefined
        : `does not start with ${BROWSER_ID_PREFIX}`);
    if (problem) return [400, `device ${JSON.stringify(device)} ${problem}`];
    // A camera's zone (`&zone=`, docs/video.md) is an id like the device's.
    const zone = url.searchParams.get("zone");
    const zoneProblem = zone === null ? undefined : idProblem(zone);
    if (zoneProblem) return [400, `zone ${JSON.stringify(zone)} ${zoneProblem}`];
    const origin = request.headers.origin;
    if (!originAllowed(origin, request.headers.host, secure, origins)) {
      return [403, `origin ${origin} may not open the device page's socket (GATEWAY_WEB_ORIGINS)`];
    }
    if (pairing && !pairing.verify(device!, url.searchParams.get("token"))) {
      return [
        403,
        `device ${device} is not paired with this browser: open the gateway's pairing link`,
      ];
    }
    if (socket && open.size >= maxSockets) {
      return [503, `too many device pages open (${maxSockets})`];
    }
    return undefined;
  }

  function onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(request.url ?? "/", "http://page");
    const refused = url.pathname === "/ws" ? refusal(request, url) : [404, "not found"] as const;
    if (refused) {
      const [code, text] = refused;
      if (code === 403) log.warn("audit: browser socket refused", { reason: text });
      socket.end(
        `HTTP/1.1 ${code} ${code === 403 ? "Forbidden" : "Refused"}\r\n` +
          `content-type: text/plain\r\ncontent-length: ${
            new TextEncoder().encode(text + "\n").length
          }\r\n` +
          `connection: close\r\n\r\n${text}\n`,
      );
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws: WsSocket) => {
      const device = url.searchParams.get("device")!;
      // A page with its camera on streams video: announced in the device status.
      if (url.searchParams.get("video") === "1") {
        cameras.set(device, { zone: url.searchParams.get("zone") ?? undefined });
      } else cameras.delete(device);
      attach(ws, device);
    });
  }

  function reply(
    response: ServerResponse,
    status: number,
    body: string | Uint8Array,
    type: string,
  ) {
    response.writeHead(status, { "content-type": type });
    response.end(body);
  }

  function onPair(request: IncomingMessage, response: ServerResponse): void {
    const json = (status: number, value: unknown) =>
      reply(response, status, JSON.stringify(value), "application/json");
    if (!originAllowed(request.headers.origin, request.headers.host, secure, origins)) {
      return json(403, { error: "cross-origin pairing is not allowed" });
    }
    if (!pairing) return json(404, { error: "pairing is off (GATEWAY_PAIRING=off)" });
    const chunks: Uint8Array[] = [];
    let size = 0;
    request.on("data", (chunk: Uint8Array) => {
      size += chunk.length;
      if (size > MAX_PAIR_BODY_BYTES) {
        json(413, { error: `body over ${MAX_PAIR_BODY_BYTES} bytes` });
        request.destroy();
      } else chunks.push(chunk);
    });
    request.on("end", () => {
      if (size > MAX_PAIR_BODY_BYTES) return;
      let body: { code?: unknown; device?: unknown };
      try {
        body = JSON.parse(new TextDecoder().decode(concatBytes(chunks)));
      } catch {
        return json(400, { error: "body must be JSON {code, device?}" });
      }
      try {
        const paired = pairing.pair(
          String(body?.code ?? ""),
          typeof body?.device === "string" ? body.device : undefined,
        );
        log.info("browser paired", { device: paired.device });
        json(200, paired);
      } catch (error) {
        if (!(error instanceof PairingError)) throw error;
        log.warn("audit: pairing refused", { reason: error.code });
        json(error.code === "bad_code" ? 403 : 409, { error: error.message });
      }
    });
  }

  // "Send a photo" (spec 11.7): bridged to the AI server over MQTT, answered in the response.
  const upload = createUploadHandler({ mqtt, idPrefix: BROWSER_ID_PREFIX });

  /** `/api/upload`: the socket's origin and token checks, then upload_bridge.ts on a fetch Request. */
  async function onUpload(request: IncomingMessage, response: ServerResponse, url: URL) {
    const refused = refusal(request, url, false);
    if (refused) {
      // upload_bridge.ts's error shape, so the page reads every refusal the same way.
      const code = refused[0] === 400 ? "bad_request" : "forbidden";
      const body = JSON.stringify({ ok: false, error: { code, message: refused[1] } });
      return reply(response, refused[0], body, "application/json");
    }
    const headers = new Headers();
    for (const [name, value] of Object.entries(request.headers)) {
      if (typeof value === "string") headers.set(name, value);
    }
    const body = request.method === "POST" ? bodyStream(request) : null;
    const answer = await upload(
      new Request(url, { method: request.method, headers, body, duplex: "half" } as RequestInit),
      url,
    );
    // A refusal before the body was read (too large, wrong type): the rest is read and dropped,
    // never buffered, so the client can finish sending and read the answer.
    request.removeAllListeners("data");
    request.resume();
    response.writeHead(answer.status, Object.fromEntries(answer.headers));
    response.end(new Uint8Array(await answer.arrayBuffer()));
  }

  const onRequest = (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? "/", "http://page");
    if (url.pathname === "/api/upload") {
      onUpload(request, response, url).catch((error) => {
        log.warn("upload failed", { error: String(error) });
        if (!response.headersSent) reply(response, 500, "upload failed\n", "text/plain");
      });
      return;
    }
    if (url.pathname === "/" || url.pathname === "/device") {
      return reply(response, 200, page, "text/html; charset=utf-8");
    }
    if (url.pathname === "/healthz") return reply(response, 200, "ok\n", "text/plain");
    if (url.pathname === "/pair" && request.method === "POST") return onPair(request, response);
    if (url.pathname === "/ws") {
      const refused = refusal(request, url);
      if (refused && refused[0] === 400) {
        return reply(response, 400, refused[1] + "\n", "text/plain");
      }
      return reply(response, 426, "expected a WebSocket upgrade\n", "text/plain");
    }
    reply(response, 404, "not found\n", "text/plain");
  };

  const server = secure
    ? createHttpsServer({
      cert: await Deno.readTextFile(options.cert!),
      key: await Deno.readTextFile(options.key!),
      // WebSocket clients offer ALPN; without a match the TLS handshake is refused.
      ALPNProtocols: ["http/1.1"],
    }, onRequest)
    : createHttpServer(onRequest);
  server.on("upgrade", onUpgrade);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname ?? "0.0.0.0", () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  log.info("device page listening", { port, https: secure, pairing: pairing !== undefined });

  return {
    port,
    devices: () => [...sockets.keys()],
    async close() {
      stopRelay();
      for (const socket of open) socket.close(GOING_AWAY, "gateway stopping");
      for (const socket of open) socket.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      wss.close();
    },
  };
}
