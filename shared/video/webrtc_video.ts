/**
 * The werift side of a camera track: the VP8 codec the gateway offers (RFC 7741, 90 kHz, with
 * NACK, PLI and REMB feedback so it can ask for retransmissions and keyframes) and the mapping
 * of werift's RTP packets onto {@link RtpVideoPacket}.
 */

import { type RTCRtpCodecParameters, type RtpPacket, useVP8 } from "werift";
import type { RtpVideoPacket } from "./vp8_payload.ts";

/** Dynamic payload type 96: Chrome's usual VP8 number; werift follows what is negotiated. */
const VP8_PAYLOAD_TYPE = 96;

/** The video codec a gateway peer offers: VP8 only (every browser sends it). */
export function vp8Codec(): RTCRtpCodecParameters {
  return useVP8({ payloadType: VP8_PAYLOAD_TYPE });
}

/** The fields the depacketizer reads, from a werift packet (no copy). */
export function rtpVideoPacket(rtp: RtpPacket): RtpVideoPacket {
  return {
    sequenceNumber: rtp.header.sequenceNumber,
    timestamp: rtp.header.timestamp,
    marker: rtp.header.marker,
    payload: rtp.payload,
  };
}
