/**
 * The NAILA gateway (spec 5): WebRTC device sessions over MQTT signaling, Opus, VAD, utterances,
 * playback and barge-in, and the TCP client of the AI server. `main.ts` runs it.
 *
 * Follow one utterance in order: `webrtc.ts` → `device_session.ts` → `packet_order.ts` →
 * `audio_input.ts` (`opus_codec.ts`, `vad.ts`, `utterance_segmenter.ts`) → `conversation.ts` →
 * `ai_client.ts`, and the reply back: `ai_client.ts` → `conversation.ts` → `playback.ts` →
 * `opus_codec.ts` → `webrtc.ts`.
 */
export { startGateway } from "./gateway.ts";
export type { Gateway, GatewayOptions } from "./gateway.ts";
export { AiClient } from "./ai_client.ts";
export { RESPONSE_TIMEOUT_MS } from "./ai_turn.ts";
export { DeviceSession } from "./device_session.ts";
export { SILERO_CONTEXT, SILERO_WINDOW, SileroSession } from "./vad.ts";
