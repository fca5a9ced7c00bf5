/**
 * The NAILA gateway (spec 5): WebRTC device sessions over MQTT signaling, Opus, VAD, utterances,
 * playback and barge-in, and the TCP client of the AI server. `main.ts` runs it.
 *
 * One utterance, RTP in to RTP out: eleven files, each one step. Helpers a step calls and that
 * return are in brackets; ↩ marks the four moves back.
 *
 *  1. `device_session.ts`: werift hands it the RTP packet (jitter); it wired the parts below.
 *  2. `audio_receiver.ts`: the media clock [`jitter_estimator.ts`], sequence order with an
 *     adaptive window [`packet_order.ts`], losses marked, silence only for gaps and stalls.
 *  3. `audio_input.ts`: Opus decode or concealment at the utterance rate
 *     [`shared/media/opus_codec.ts`, the system libopus], 20 ms frames,
 *     idle gate [`idle_gate.ts`], VAD [`vad.ts`] with the echo guard [`echo_guard.ts`,
 *     `echo_path.ts`].
 *  4. `utterance_segmenter.ts`: utterance start, audio, pause, end, straight to
 *  5. `conversation.ts`: one turn per utterance [opened by `ai_servers.ts`], barge-in, events
 *     [`conversation_events.ts`].
 *  6. `ai_turn.ts`: the turn's audio, pause, end.
 *  7. `ai_protocol.ts`: written as v2 messages (or one v1 frame) to the turn's link,
 *  8. `ai_servers.ts`: which passes them on to the turn's server while it is there,
 *  9. `ai_connection.ts`: the bounded write queue, TCP. The reply: read, decoded,
 *     ↩ 1 `ai_protocol.ts` routes it, ↩ 2 `ai_servers.ts` finds its turn by id,
 *     ↩ 3 `ai_turn.ts` hands it to its handlers, ↩ 4 `conversation.ts` queues its audio in
 * 10. `playback.ts`: the device's queue at the reply's rate, one frame per tick of the 20 ms clock
 *     [`shared/media/frame_clock.ts`], to
 * 11. `shared/media/webrtc.ts`: `OpusRtpSender`, Opus encode [`opus_codec.ts`], RTP stamping,
 *     werift's sender: RTP out.
 *
 * Around the path: `gateway.ts` (a session per device) with `ai_link.ts` (the AI server link it
 * makes), `answer_gate.ts` (what a device's answer and ICE candidates must pass) and
 * `gateway_metrics.ts` (`naila/gateway/metrics`), `signaling.ts` (MQTT offer, answer, ICE),
 * `outage_hold.ts` (turns wait for a restarting AI server), `config.ts`,
 * `web_bridge.ts` (the browser device page). Scaling out (docs/scaling.md): several AI
 * servers in `AI_SERVER_HOST` (`ai_servers.ts` places each turn on the least loaded, with
 * failover; `ai_server_link.ts` keeps one server's link and load), `gateway_membership.ts` and
 * `device_assignment.ts` (several gateways share the devices), `session_workers.ts`,
 * `session_worker.ts` and `session_messages.ts` (sessions on every core).
 */
export { startGateway } from "./gateway.ts";
export type { Gateway, GatewayOptions } from "./gateway.ts";
export { AiServers } from "./ai_servers.ts";
export { RESPONSE_TIMEOUT_MS } from "./ai_turn.ts";
export { DeviceSession } from "./device_session.ts";
export { SILERO_CONTEXT, SILERO_WINDOW, SileroSession } from "./vad.ts";
