/**
 * Runs the real AI server (`deno run -A server/main.ts`) as a child process on free loopback
 * ports with its own data directory, for cross-process tests and the benchmark
 * (scripts/lib/naila_process.ts). Its embedded broker takes only the logins of that data
 * directory: a gateway started with `NAILA_DATA_DIR: server.dataDir` finds its own, and a test's
 * MQTT client uses `server.login(...)`.
 *
 * @example
 * ```ts
 * const server = await startServerProcess({ PIPELINE: "echo" });
 * try {
 *   // connect to 127.0.0.1:server.audioPort, mqtt://127.0.0.1:server.mqttPort
 * } finally {
 *   await server.stop();
 * }
 * ```
 */
import { readAudioSecret } from "../../shared/audio_auth.ts";
import { addDevice, type MqttLogin, storedLogin } from "../../shared/credentials.ts";
import { startNailaProcess } from "./naila_process.ts";
import { freePort } from "./ports.ts";

/** Who an MQTT login is for: a role of the server's data dir, or a device (spec 8.3 roles). */
export type LoginFor = "server" | "gateway" | { device: string };

/**
 * The MQTT login of `who` from a server's data directory `dataDir`; a device is added on first
 * use, as `deno task devices add` does. What a client of that server's embedded broker needs.
 * @throws {Error} the data directory has no login of that role (the server never started there).
 */
export function serverLogin(dataDir: string, who: LoginFor): MqttLogin {
  if (typeof who === "object") return addDevice(dataDir, who.device);
  const login = storedLogin(dataDir, { role: who });
  if (!login) throw new Error(`no ${who} login in ${dataDir}`);
  return login;
}

/**
 * The settings that keep a server on this machine: its audio socket and embedded broker on free
 * ports of 127.0.0.1 (never another interface), its data in `dataDir`.
 */
export async function loopbackServerEnv(dataDir: string): Promise<Record<string, string>> {
  return {
    AUDIO_SOCKET_HOST: "127.0.0.1",
    AUDIO_SOCKET_PORT: String(await freePort()),
    MQTT_BIND_HOST: "127.0.0.1",
    MQTT_PORT: String(await freePort()),
    NAILA_DATA_DIR: dataDir,
  };
}

/** Startup: Deno compiles the server's modules on first run; later runs take ~0.5 s. */
const START_TIMEOUT_MS = 30_000;

/** A running server process. */
export interface ServerProcess {
  pid: number;
  audioPort: number;
  mqttPort: number;
  dataDir: string;
  /** The audio-socket secret the server made in its data dir (v2 clients authenticate with it). */
  secret: string | undefined;
  /** Every stderr line so far (JSON log records). */
  lines: string[];
  /**
   * MQTT login of a role from the server's data dir, or of device `device` (added on first use,
   * as `deno task devices add` does): what a client of its embedded broker needs.
   */
  login(who: LoginFor): MqttLogin;
  /** Sends `signal` (default SIGTERM; SIGKILL after 5 s) and waits for the exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** Options of {@link startServerProcess}. */
export interface ServerProcessOptions {
  /** Reuse a data directory (to test restarts); otherwise a new temporary one. */
  dataDir?: string;
  /** Remove the data directory on stop (default: only when this helper created it). */
  removeDataDir?: boolean;
}

/** Starts the server and waits for its "server ready" log line. */
export async function startServerProcess(
  env: Record<string, string>,
  options: ServerProcessOptions = {},
): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "naila_server_" });
  const removeDataDir = options.removeDataDir ?? options.dataDir === undefined;
  const cleanup = async () => {
    if (removeDataDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  };
  let child;
  try {
    child = await startNailaProcess("server/main.ts", {
      ...await loopbackServerEnv(dataDir),
      LOG_LEVEL: "info",
      ...env,
    }, { ready: (l) => l.msg === "server ready", readyTimeoutMs: START_TIMEOUT_MS });
  } catch (error) {
    await cleanup();
    throw new Error(`server did not start: ${(error as Error).message}`);
  }
  const ready = child.logs.find((l) => l.msg === "server ready")!.fields ?? {};
  return {
    pid: child.pid,
    audioPort: Number(String(ready.audio_socket).split(":").at(-1)),
    mqttPort: Number(ready.mqtt_port),
    dataDir,
    get secret() {
      return readAudioSecret(dataDir);
    },
    lines: child.lines,
    login: (who) => serverLogin(dataDir, who),
    async stop(signal?: Deno.Signal) {
      const status = await child.stop(signal);
      await cleanup();
      return status;
    },
  };
}
