/**
 * werift settings and RTP framing shared by the gateway's sessions and the device peer
 * (device/peer.ts), so both ends of every test and benchmark are configured one way.
 *
 * - {@link peerConfig}: ICE servers from WEBRTC_ICE_SERVERS with werift's hidden public-STUN
 *   fallback disabled (`iceStunGatherTimeout: 0`, ENVIRONMENT.md), and, when host addresses are
 *   given (WEBRTC_HOST_ADDRESSES), ICE gathered on exactly those addresses: the OS interfaces
 *   are not enumerated and the sockets bind to the single address, so a loopback test never
 *   offers, or sends media to, the machine's LAN address.
 * - {@link OpusRtpWriter}: werift does RTP only; this stamps our Opus packets with consistent
 *   sequence numbers and 48 kHz timestamps, marking each talkspurt's first packet and letting
 *   the timestamp jump over silent gaps (nothing is sent while idle).
 * - {@link OpusRtpSender}: 20 ms frames out as RTP: Opus-encoded, stamped, handed to a transport
 *   (the gateway's reply to a device, the software device's microphone).
 *
 * @example
 * ```ts
 * const pc = new RTCPeerConnection(peerConfig({ iceServers: [], hostAddresses: ["127.0.0.1"] }));
 * const writer = new OpusRtpWriter();
 * sender.sendRtp(writer.packet(opusPacket, true));
 * ```
 */
import { isIP } from "node:net";
import { type RTCPeerConnectionConfig, RTCRtpCodecParameters, RtpHeader, RtpPacket } from "werift";
import type { IceServer } from "../config.ts";
import {
  isOpusPcmRate,
  OPUS_FRAME_MS,
  OPUS_FRAME_SAMPLES,
  OPUS_PCM_RATES,
  OPUS_RATE,
  OpusCodecError,
  OpusEncoder,
} from "./opus_codec.ts";
import { vp8Codec } from "../video/webrtc_video.ts";

/** RFC 7587: Opus is always announced as opus/48000/2, whatever is actually sent. */
const OPUS_SDP_CHANNELS = 2;
/** Dynamic payload type commonly used for Opus (Chrome's choice); werift rewrites as negotiated. */
const OPUS_PAYLOAD_TYPE = 111;
/** Mono, in-band FEC allowed, DTX allowed: what a voice device wants. */
const OPUS_FMTP = "minptime=10;useinbandfec=1;usedtx=1";
const UINT32 = 0x1_0000_0000;
const UINT16 = 0x1_0000;

/**
 * Without a configured STUN server werift queries stun.l.google.com: traffic leaving the house,
 * and, offline, a DNS lookup that hangs and keeps every closed session's ICE state alive (~70 KB
 * a session: 1,000 devices coming and going cost the gateway ~300 MB per round, never returned).
 * Pointing it at loopback's discard port makes the query fail locally and leaves nothing.
 */
export const NO_STUN_SERVER = "stun:127.0.0.1:9";

function hasStun(servers: IceServer[]): boolean {
  return servers.some((server) =>
    [server.urls].flat().some((url) => url.startsWith("stun:") || url.startsWith("stuns:"))
  );
}

/** The one audio codec both ends offer. */
export function opusCodec(): RTCRtpCodecParameters {
  return new RTCRtpCodecParameters({
    mimeType: "audio/opus",
    clockRate: OPUS_RATE,
    channels: OPUS_SDP_CHANNELS,
    payloadType: OPUS_PAYLOAD_TYPE,
    parameters: OPUS_FMTP,
  });
}

/** What {@link peerConfig} needs. */
export interface PeerSettings {
  iceServers: IceServer[];
  /** Gather only on these addresses; empty = every interface (production default). */
  hostAddresses: string[];
}

/** A werift RTCPeerConnection configuration; see the module doc. */
export function peerConfig(settings: PeerSettings): RTCPeerConnectionConfig {
  const config: RTCPeerConnectionConfig = {
    // VP8 is offered only where a video transceiver exists (a camera, docs/video.md).
    codecs: { audio: [opusCodec()], video: [vp8Codec()] },
    iceServers: hasStun(settings.iceServers)
      ? settings.iceServers
      : [...settings.iceServers, { urls: NO_STUN_SERVER }],
    // 0: no wait for (and no use of) werift's built-in public STUN server.
    iceStunGatherTimeout: 0,
    iceUseTcp: false,
  };
  const hosts = settings.hostAddresses;
  if (hosts.length > 0) {
    config.iceAdditionalHostAddresses = [...hosts];
    // Do not enumerate OS interfaces: only the listed addresses become candidates.
    config.iceUseIpv4 = false;
    config.iceUseIpv6 = false;
    const v4 = hosts.filter((h) => isIP(h) === 4);
    const v6 = hosts.filter((h) => isIP(h) === 6);
    const bind: { udp4?: string; udp6?: string } = {};
    if (v4.length === 1) bind.udp4 = v4[0];
    if (v6.length === 1) bind.udp6 = v6[0];
    if (bind.udp4 || bind.udp6) config.iceInterfaceAddresses = bind;
  }
  return config;
}

/** Stamps Opus payloads as one RTP stream; see the module doc. */
export class OpusRtpWriter {
  #sequence = Math.floor(Math.random() * UINT16);
  #timestamp = Math.floor(Math.random() * UINT32);
  #lastSentAt: number | undefined;
  #now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? (() => performance.now());
  }

  /**
   * The RTP packet for the next 20 ms frame. `first` marks a talkspurt start: the timestamp
   * then advances by the wall-clock time since the last packet, as a receiver's jitter buffer
   * expects after a silent gap.
   */
  packet(payload: Uint8Array, first: boolean): RtpPacket {
    const now = this.#now();
    if (this.#lastSentAt !== undefined) {
      let advance = OPUS_FRAME_SAMPLES;
      if (first) {
        const gap = Math.round(((now - this.#lastSentAt) * OPUS_RATE) / 1000);
        advance = Math.max(OPUS_FRAME_SAMPLES, gap - (gap % OPUS_FRAME_SAMPLES));
      }
      this.#timestamp = (this.#timestamp + advance) % UINT32;
      this.#sequence = (this.#sequence + 1) % UINT16;
    }
    this.#lastSentAt = now;
    const header = new RtpHeader({
      payloadType: OPUS_PAYLOAD_TYPE,
      sequenceNumber: this.#sequence,
      timestamp: this.#timestamp,
      marker: first,
    });
    // werift expects a Buffer; a view of the same bytes avoids a copy.
    const buffer = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    return new RtpPacket(header, buffer);
  }
}

/** Encodes 20 ms frames and sends them as one RTP stream; see the module doc. */
export class OpusRtpSender {
  /** One encoder per PCM rate seen, keyed by samples per 20 ms frame (usually just one). */
  #encoders = new Map<number, OpusEncoder>();
  #closed = false;
  #writer: OpusRtpWriter;
  #transport: (packet: RtpPacket) => void;

  /** `transport` sends each packet (e.g. werift's `sender.sendRtp`). */
  constructor(transport: (packet: RtpPacket) => void, options: { now?: () => number } = {}) {
    this.#transport = transport;
    this.#writer = new OpusRtpWriter(options);
  }

  /**
   * Encodes one 20 ms frame and sends it; `first` starts a talkspurt. The frame's length gives
   * its rate (960 samples: 48 kHz, 480: 24 kHz, 320: 16 kHz, 240: 12 kHz, 160: 8 kHz); libopus
   * takes each directly. Throws {@link OpusCodecError} for any other length.
   */
  sendFrame(frame: Float32Array, first: boolean): void {
    let encoder = this.#encoders.get(frame.length);
    if (!encoder) {
      if (this.#closed) throw new OpusCodecError("encoder", "closed", "RTP sender is closed");
      const rate = (frame.length * 1000) / OPUS_FRAME_MS;
      if (!isOpusPcmRate(rate)) {
        throw new OpusCodecError(
          "frame",
          frame.length,
          `frame has ${frame.length} samples, not 20 ms at an Opus rate (${OPUS_PCM_RATES} Hz)`,
        );
      }
      encoder = new OpusEncoder({ rate });
      this.#encoders.set(frame.length, encoder);
    }
    this.sendPayload(encoder.encode(frame), first);
  }

  /** Sends an already encoded Opus packet as the next RTP packet. */
  sendPayload(payload: Uint8Array, first: boolean): void {
    this.#transport(this.#writer.packet(payload, first));
  }

  /** Frees the encoders. */
  close(): void {
    this.#closed = true;
    for (const encoder of this.#encoders.values()) encoder.close();
    this.#encoders.clear();
  }
}
