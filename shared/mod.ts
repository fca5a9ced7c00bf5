/**
 * What the gateway and the AI server share, and nothing else (neither is imported here):
 *
 * - `frame_codec.ts`: the TCP wire protocol, v1 (spec 4.2) and streaming v2 — docs/protocol.md;
 * - `topics.ts`, `messages.ts`, `mqtt.ts`, `broker.ts`: the MQTT topic tree with its QoS and retain
 *   flags, the message schemas, the client and the embedded broker;
 * - `config.ts`: the environment variables of spec 14.2; `log.ts`: structured logs;
 * - `audio.ts`: PCM, resampling, WAV; `async.ts`: delay/deadline/retry; `ids.ts`: the id syntax;
 * - `shutdown.ts`: a clean exit on SIGINT/SIGTERM for both processes' main modules;
 * - `media/` (`@naila/shared/media`, not re-exported here): what the gateway and the software
 *   device share: the Opus codec, werift settings and RTP packetizing, the 20 ms frame clock.
 *
 * Import a module directly (`@naila/shared/frame_codec`) to load only what you use: `broker.ts`
 * pulls in aedes, which the gateway never needs.
 */
export * from "./frame_codec.ts";
export * from "./topics.ts";
export * from "./messages.ts";
export * from "./config.ts";
export * from "./log.ts";
export * from "./audio.ts";
export * from "./async.ts";
export * from "./ids.ts";
export { connectMqtt, type NailaMqtt } from "./mqtt.ts";
