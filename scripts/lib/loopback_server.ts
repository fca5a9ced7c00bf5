/**
 * The AI server started in this process (server/mod.ts `startServer`) on free loopback ports,
 * with a temporary data directory of its own: what the benchmarks and in-process tests need when
 * they want the real server without a child process (server_process.ts starts one as a child).
 * `env` is read as `server/main.ts` reads the environment: shared and server settings alike.
 *
 * @example
 * ```ts
 * const server = await startLoopbackServer({ PIPELINE: "echo" });
 * // connect to 127.0.0.1:server.audioPort, mqtt://127.0.0.1:server.mqttPort
 * await server.close(); // also removes server.dataDir
 * ```
 */
import { loadConfig } from "../../shared/config.ts";
import { loadServerConfig, type RunningServer, startServer } from "../../server/mod.ts";
import type { StartServerOptions } from "../../server/mod.ts";
import type { MqttLogin } from "../../shared/credentials.ts";
import { type LoginFor, loopbackServerEnv, serverLogin } from "./server_process.ts";

/** A server of {@link startLoopbackServer}: `close()` also removes its data directory. */
export interface LoopbackServer extends RunningServer {
  dataDir: string;
  /** MQTT login of a role or device for this server's embedded broker (see `serverLogin`). */
  login(who: LoginFor): MqttLogin;
}

/**
 * Starts the server with `env` over loopback defaults (free ports on 127.0.0.1, a new
 * `naila_loopback_*` data directory, LOG_LEVEL error). `options` passes engines through to
 * `startServer` (a scripted STT, a shared vision). Rejects as `startServer` does, with the data
 * directory removed.
 */
export async function startLoopbackServer(
  env: Record<string, string> = {},
  options: Omit<StartServerOptions, "config" | "server"> = {},
): Promise<LoopbackServer> {
  const dataDir = await Deno.makeTempDir({ prefix: "naila_loopback_" });
  const removeDataDir = () => Deno.remove(dataDir, { recursive: true }).catch(() => {});
  const settings = { ...await loopbackServerEnv(dataDir), LOG_LEVEL: "error", ...env };
  let server: RunningServer;
  try {
    server = await startServer({
      ...options,
      config: loadConfig(settings),
      server: loadServerConfig(settings),
    });
  } catch (error) {
    await removeDataDir();
    throw error;
  }
  return {
    ...server,
    dataDir,
    login: (who) => serverLogin(dataDir, who),
    async close() {
      try {
        await server.close();
      } finally {
        await removeDataDir();
      }
    },
  };
}
