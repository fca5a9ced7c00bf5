/**
 * Media code that the gateway and the software device (device/peer.ts) both use; neither is
 * imported here:
 *
 * - `opus_codec.ts`: Opus 48 kHz mono 20 ms frames through the compiled libopus, driven directly;
 * - `webrtc.ts`: werift settings both ends use, and the RTP packetizing of Opus frames;
 * - `frame_clock.ts`: the one drift-free 20 ms clock (gateway playback, device microphone);
 * - `frame_filler.ts`: cuts samples arriving in pieces of any size into fixed-size frames;
 * - `concat.ts`: joins chunks that arrived one by one.
 */
export * from "./opus_codec.ts";
export * from "./webrtc.ts";
export * from "./frame_clock.ts";
export * from "./frame_filler.ts";
export * from "./concat.ts";
