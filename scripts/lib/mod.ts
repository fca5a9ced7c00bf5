/**
 * Development tools the demo, `deno task device`, the benchmarks and the tests share: launchers
 * for NAILA's own processes and for mosquitto, free loopback ports, real speech from espeak-ng,
 * clients of the server's audio socket, a recording relay of the AI link (ai_tap.ts) and a small
 * AI-server double for the gateway benchmark. Not part of
 * either process: gateway/, server/ and shared/ never import it.
 *
 * @example
 * ```ts
 * import { speak, startServerProcess } from "../scripts/lib/mod.ts";
 * const server = await startServerProcess({ PIPELINE: "echo" });
 * const audio = await speak("what time is it"); // Float32 samples and their rate
 * await server.stop();
 * ```
 */
export * from "./ai_server_double.ts";
export * from "./ai_tap.ts";
export * from "./audio_socket_clients.ts";
export * from "./gateway_process.ts";
export * from "./mosquitto.ts";
export * from "./naila_process.ts";
export * from "./ports.ts";
export * from "./server_process.ts";
export * from "./speech.ts";
export * from "./cli.ts";
