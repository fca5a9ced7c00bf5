/**
 * A NAILA device in software: a werift peer that signals through MQTT exactly like a hardware
 * device (spec 9.1), speaks recorded or synthesized speech as Opus RTP paced in real time, and
 * records the gateway's reply audio with arrival times. Used by the gateway tests, the
 * benchmark, and (later) `deno task device` and the demo.
 *
 * - `connect()`: MQTT connect (last will: offline), subscribe to its offer/ICE/events, publish
 *   status `online: true` (retained), answer the gateway's offer, trickle ICE marked
 *   `from: "device"` (or put every candidate in the answer with `trickle: false`), resolve once
 *   the WebRTC connection is up.
 * - The "microphone" (`microphone.ts`) runs on its own drift-free 20 ms clock from connect to
 *   close. `speak()` queues speech on it; between utterances it sends encoded silence
 *   (`idle: "silence"`, like an open mic) or nothing (`idle: "none"`, like DTX).
 * - Every reply packet is decoded; talkspurts (marker bit or a gap) become {@link Reply} entries.
 * - Test conditions of issue 9: `echo` plays the reply back into the mic (a speaker without echo
 *   cancellation: gain and delay), {@link DevicePeer.holdPackets} stalls the mic's packets and
 *   then delivers them all at once (a Wi-Fi stall, nothing lost), `echoCancellation` announces
 *   a device that cancels its own echo.
 *
 * @example
 * ```ts
 * const device = new DevicePeer({ id: "kitchen", mqtt: { host: "127.0.0.1", port }, hostAddresses: ["127.0.0.1"] });
 * await device.connect();
 * await device.speak(samples, 22050);
 * const reply = await device.nextReply(5000);
 * await device.close();
 * ```
 */
import { RTCPeerConnection, type RTCRtpTransceiver } from "werift";
import { delay } from "../shared/async.ts";
import type { MqttConfig } from "../shared/config.ts";
import { createLogger, type Logger } from "../shared/log.ts";
import {
  type DeviceEvent,
  parseDeviceEvent,
  parseIceCandidate,
  parseSdpOffer,
} from "../shared/messages.ts";
import { connectMqtt, type NailaMqtt } from "../shared/mqtt.ts";
import { topicFilter } from "../shared/topics.ts";
import { concatChunks, OpusDecoder, peerConfig } from "../shared/media/mod.ts";
import type { IceServer } from "../shared/config.ts";
import type { SpeakerEchoOptions } from "./speaker_echo.ts";
import { Microphone, type Spoken } from "./microphone.ts";
import type { Ivf } from "../shared/video/ivf.ts";
import { IvfVideoSender } from "./video_sender.ts";

/** A reply talkspurt ends when no packet came for this long. */
const REPLY_GAP_MS = 200;
/** How long connect() waits for the offer and the connection. */
const CONNECT_TIMEOUT_MS = 15_000;

export type { Spoken } from "./microphone.ts";

/** Options of {@link DevicePeer}. */
export interface DevicePeerOptions {
  id: string;
  /** Broker address; the rest of MqttConfig (credentials, TLS) is optional. */
  mqtt: Pick<MqttConfig, "host" | "port"> & Partial<MqttConfig>;
  /** Addresses to gather ICE candidates on, e.g. ["127.0.0.1"] in tests. */
  hostAddresses?: string[];
  iceServers?: IceServer[];
  /** Trickle ICE candidates (default) or put them all into the answer. */
  trickle?: boolean;
  /** What the mic sends between utterances: encoded silence (default) or nothing. */
  idle?: "silence" | "none";
  /**
   * RMS of white noise the idle mic picks up (a room is never digitally silent); 0 = digital
   * silence. A few noise packets are encoded once and cycled, so many peers stay cheap.
   */
  idleNoise?: number;
  /** Drop this fraction of outgoing packets (0..1), for loss tests and the benchmark. */
  loss?: number;
  /** Decode reply packets (default true; the benchmark may turn it off to save its own CPU). */
  decode?: boolean;
  /**
   * A speaker without echo cancellation: the reply received is mixed back into the mic
   * `gainDb` (≤ 0) quieter and `delayMs` late (needs `decode`). Its mic then always sends
   * (speech, echo or idle noise) while echo is pending.
   */
  echo?: SpeakerEchoOptions;
  /** Announce `echo_cancellation: true` in the status (the gateway then skips its echo guard). */
  echoCancellation?: boolean;
  /** A camera (docs/video.md): stream this IVF's VP8 frames, looped; status says "video". */
  video?: { ivf: Ivf; fps?: number; onFrame?: (index: number) => void };
  /** The zone announced in the status (docs/media.md), e.g. "hallway". */
  zone?: string;
  log?: Logger;
}

/** One talkspurt of reply audio. */
export interface Reply {
  /** performance.now() of the first packet. */
  startedAt: number;
  /** Arrival time (performance.now()) of every packet. */
  arrivals: number[];
  /** RTP sequence numbers as received. */
  sequences: number[];
  /** Decoded 48 kHz samples (empty when decoding is off). */
  samples(): Float32Array;
}

class ReplyRecording implements Reply {
  startedAt: number;
  lastAt: number;
  arrivals: number[] = [];
  sequences: number[] = [];
  #chunks: Float32Array[] = [];
  constructor(at: number) {
    this.startedAt = at;
    this.lastAt = at;
  }
  add(at: number, sequence: number, samples: Float32Array | undefined) {
    this.arrivals.push(at);
    this.sequences.push(sequence);
    this.lastAt = at;
    if (samples) this.#chunks.push(samples.slice());
  }
  samples(): Float32Array {
    return concatChunks(this.#chunks);
  }
}

/** See the module doc. */
export class DevicePeer extends EventTarget {
  readonly id: string;
  /** Reply talkspurts, oldest first. */
  readonly replies: Reply[] = [];
  /** Events the gateway published on `naila/devices/{id}/events`. */
  readonly events: DeviceEvent[] = [];
  #o: DevicePeerOptions;
  #log: Logger;
  #mqtt: NailaMqtt | undefined;
  /** Connection epoch carried in every status of this connection (0 before connecting). */
  #epoch = 0;
  #pc: RTCPeerConnection | undefined;
  #transceiver: RTCRtpTransceiver | undefined;
  #camera: { transceiver: RTCRtpTransceiver; sender: IvfVideoSender } | undefined;
  #sessionId: string | undefined;
  #chain: Promise<void> = Promise.resolve();
  #decoder = new OpusDecoder();
  #mic: Microphone;
  #current: ReplyRecording | undefined;
  #replyCursor = 0;
  /** Set by announce(): the current connection is about to be replaced by a new offer. */
  #awaitingOffer = false;
  #closed = false;

  constructor(options: DevicePeerOptions) {
    super();
    this.id = options.id;
    this.#o = options;
    this.#mic = new Microphone({
      idle: options.idle,
      idleNoise: options.idleNoise,
      loss: options.loss,
      echo: options.echo,
      send: (packet) => this.#transceiver?.sender.sendRtp(packet).catch(() => {}),
    });
    this.#log = options.log ?? createLogger(`device.${options.id}`, { level: "warn" });
  }

  /** Packets sent (speech and silence) and dropped by the `loss` option. */
  get packetsSent(): number {
    return this.#mic.packetsSent;
  }

  get packetsDropped(): number {
    return this.#mic.packetsDropped;
  }

  /** Fraction of outgoing packets dropped (0..1); starts as `options.loss`, may be changed. */
  get loss(): number {
    return this.#mic.loss;
  }

  set loss(fraction: number) {
    this.#mic.loss = fraction;
  }

  /**
   * A Wi-Fi stall: the mic's packets of the next `ms` are held, then all sent at once, in order
   * (nothing lost). Resolves when they have been sent.
   */
  holdPackets(ms: number): Promise<void> {
    return this.#mic.holdPackets(ms);
  }

  /** The session id of the gateway's current offer. */
  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  /** WebRTC connection state. */
  get connectionState(): string {
    return this.#pc?.connectionState ?? "new";
  }

  /** Connects MQTT, announces itself, resolves once the gateway's session is connected. */
  async connect(options: { timeoutMs?: number } = {}): Promise<void> {
    const { id } = this.#o;
    const config: MqttConfig = { embedded: false, ...this.#o.mqtt };
    // Connection epoch (docs/protocol.md): a later connection of this device has a larger one,
    // so the gateway can tell this connection's last will from a newer session's status.
    this.#epoch = Math.max(Date.now(), this.#epoch + 1);
    this.#mqtt = await connectMqtt(config, {
      clientId: `naila-device-${id}-${crypto.randomUUID().slice(0, 8)}`,
      will: {
        topic: { kind: "device_status", device: id },
        message: { device_id: id, online: false, epoch: this.#epoch },
      },
    });
    this.#mqtt.onMessage((topic, payload) => {
      if (!("device" in topic) || topic.device !== id) return;
      this.#chain = this.#chain.then(() => this.#onSignal(topic.kind, payload)).catch((error) =>
        this.#log.warn("signaling message failed", { error: String(error) })
      );
    });
    await this.#mqtt.subscribe([
      topicFilter("device_offer", { device: id }),
      topicFilter("device_ice", { device: id }),
      topicFilter("device_events", { device: id }),
    ]);
    await this.announce();
    await this.waitConnected(options.timeoutMs ?? CONNECT_TIMEOUT_MS);
  }

  /** Publishes status `online: true` (again): the gateway answers with a new session. */
  async announce(): Promise<void> {
    this.#awaitingOffer = true;
    await this.#mqtt!.publish({ kind: "device_status", device: this.id }, {
      device_id: this.id,
      online: true,
      ...(this.#o.echoCancellation ? { echo_cancellation: true } : {}),
      capabilities: this.#o.video ? ["audio", "speaker", "video"] : ["audio", "speaker"],
      ...(this.#o.zone ? { zone: this.#o.zone } : {}),
      timestamp: new Date().toISOString(),
      epoch: this.#epoch,
    });
  }

  /**
   * Waits until a session is connected: after {@link announce}, a new one; otherwise the
   * current one (which may be a new offer the gateway made by itself, e.g. after a restart).
   */
  async waitConnected(timeoutMs = CONNECT_TIMEOUT_MS): Promise<void> {
    const end = performance.now() + timeoutMs;
    while (this.#awaitingOffer || this.#pc?.connectionState !== "connected") {
      if (performance.now() > end || this.#closed) {
        throw new Error(`device ${this.id}: no WebRTC connection within ${timeoutMs} ms`);
      }
      await delay(10);
    }
  }

  /**
   * Speaks `samples` at `rate` through the mic clock; resolves after its last packet was sent.
   * Utterances queue behind each other.
   */
  speak(samples: Float32Array, rate: number): Promise<Spoken> {
    return this.#mic.speak(samples, rate);
  }

  /** All reply audio received so far, concatenated (48 kHz). */
  receivedAudio(): Float32Array {
    return concatChunks(this.replies.map((r) => r.samples()));
  }

  /**
   * Resolves with reply `index` once it has ended (no packet for 200 ms). By default the first
   * reply not yet returned by this method, so `speak()` then `nextReply()` cannot miss a reply
   * that started before the call.
   */
  async nextReply(timeoutMs: number, index = this.#replyCursor): Promise<Reply> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const reply = this.replies[index] as ReplyRecording | undefined;
      if (reply && performance.now() - reply.lastAt > REPLY_GAP_MS) {
        this.#replyCursor = index + 1;
        return reply;
      }
      await delay(20);
    }
    throw new Error(`device ${this.id}: no reply #${index} within ${timeoutMs} ms`);
  }

  /** Resolves with the first event (already received or coming) matching `match`. */
  async waitForEvent(
    match: (event: DeviceEvent) => boolean,
    timeoutMs: number,
  ): Promise<DeviceEvent> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const found = this.events.find(match);
      if (found) return found;
      await delay(20);
    }
    throw new Error(`device ${this.id}: no matching event within ${timeoutMs} ms`);
  }

  /** Publishes offline, closes the peer connection and MQTT. */
  async close(options: { announceOffline?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#mic.stop();
    this.#camera?.sender.stop();
    await this.#pc?.close().catch(() => {});
    if (this.#mqtt) {
      if (options.announceOffline ?? true) {
        await this.#mqtt.publish({ kind: "device_status", device: this.id }, {
          device_id: this.id,
          online: false,
          timestamp: new Date().toISOString(),
          epoch: this.#epoch,
        }).catch(() => {});
      }
      await this.#mqtt.close().catch(() => {});
    }
    this.#mic.close();
    this.#decoder.close();
  }

  async #onSignal(kind: string, payload: string): Promise<void> {
    if (this.#closed) return;
    if (kind === "device_offer") {
      const offer = parseSdpOffer(payload);
      if (!offer.ok) return this.#log.warn("bad offer", { error: offer.error });
      if (offer.value.session_id === this.#sessionId) return; // A re-sent offer we answered.
      await this.#answer(offer.value.session_id, offer.value.sdp);
    } else if (kind === "device_ice") {
      const candidate = parseIceCandidate(payload);
      if (!candidate.ok || candidate.value.from !== "gateway") return;
      if (candidate.value.session_id !== this.#sessionId || !candidate.value.candidate) return;
      await this.#pc?.addIceCandidate({
        candidate: candidate.value.candidate,
        sdpMid: candidate.value.sdpMid ?? undefined,
        sdpMLineIndex: candidate.value.sdpMLineIndex ?? undefined,
      });
    } else if (kind === "device_events") {
      const event = parseDeviceEvent(payload);
      if (event.ok) {
        this.events.push(event.value);
        this.dispatchEvent(new CustomEvent("event", { detail: event.value }));
      }
    }
  }

  async #answer(sessionId: string, sdp: string): Promise<void> {
    this.#camera?.sender.stop();
    this.#camera = undefined;
    await this.#pc?.close().catch(() => {});
    this.#sessionId = sessionId;
    this.#awaitingOffer = false;
    this.#mic.newTalkspurt();
    const pc = new RTCPeerConnection(peerConfig({
      iceServers: this.#o.iceServers ?? [],
      hostAddresses: this.#o.hostAddresses ?? [],
    }));
    this.#pc = pc;
    const trickle = this.#o.trickle ?? true;
    pc.onIceCandidate.subscribe((candidate) => {
      if (!trickle || !candidate || this.#pc !== pc) return;
      const init = candidate.toJSON();
      this.#mqtt!.publish({ kind: "device_ice", device: this.id }, {
        candidate: init.candidate,
        sdpMid: init.sdpMid ?? null,
        sdpMLineIndex: init.sdpMLineIndex ?? null,
        session_id: sessionId,
        from: "device",
      }).catch(() => {});
    });
    pc.connectionStateChange.subscribe((state) => {
      if (this.#pc !== pc) return;
      this.dispatchEvent(new CustomEvent("connection", { detail: state }));
    });
    pc.onTransceiverAdded.subscribe((transceiver) => this.#attach(transceiver));
    await pc.setRemoteDescription({ type: "offer", sdp });
    for (const transceiver of pc.getTransceivers()) this.#attach(transceiver);
    await pc.setLocalDescription(await pc.createAnswer());
    if (!trickle && pc.iceGatheringState !== "complete") {
      await new Promise<void>((resolve) => {
        const { unSubscribe } = pc.iceGatheringStateChange.subscribe((state) => {
          if (state === "complete") {
            unSubscribe();
            resolve();
          }
        });
      });
    }
    await this.#mqtt!.publish({ kind: "device_answer", device: this.id }, {
      type: "answer",
      sdp: pc.localDescription!.sdp,
      session_id: sessionId,
    });
  }

  #attach(transceiver: RTCRtpTransceiver): void {
    if (transceiver.kind === "video") return this.#attachVideo(transceiver);
    if (this.#transceiver === transceiver || transceiver.kind !== "audio") return;
    this.#transceiver = transceiver;
    transceiver.setDirection("sendrecv");
    transceiver.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) =>
        this.#receive(rtp.header.sequenceNumber, rtp.header.marker, rtp.payload)
      );
    });
    this.#mic.start();
  }

  /** The gateway's video m-line: the IVF camera sends on it (once per connection). */
  #attachVideo(transceiver: RTCRtpTransceiver): void {
    if (!this.#o.video || this.#camera?.transceiver === transceiver) return;
    this.#camera?.sender.stop();
    const { ivf, ...options } = this.#o.video;
    const sender = new IvfVideoSender(transceiver, ivf, options);
    this.#camera = { transceiver, sender };
    sender.start();
  }

  /** The software camera, when streaming. */
  get camera(): IvfVideoSender | undefined {
    return this.#camera?.sender;
  }

  #receive(sequence: number, marker: boolean, payload: Uint8Array): void {
    const now = performance.now();
    let reply = this.#current;
    if (!reply || marker || now - reply.lastAt > REPLY_GAP_MS) {
      reply = new ReplyRecording(now);
      this.#current = reply;
      this.replies.push(reply);
      this.dispatchEvent(new CustomEvent("reply", { detail: reply }));
    }
    let samples: Float32Array | undefined;
    if (this.#o.decode ?? true) {
      try {
        samples = this.#decoder.decode(payload);
      } catch {
        samples = this.#decoder.conceal();
      }
    }
    reply.add(now, sequence, samples);
    if (samples) this.#mic.heard(samples, now);
  }
}
