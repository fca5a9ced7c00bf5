/**
 * Runs the real gateway (`deno run -A gateway/main.ts`) as its own process for cross-process
 * tests and the benchmark, on loopback only (WEBRTC_HOST_ADDRESSES=127.0.0.1), with its JSON log
 * lines collected so a test can wait for one (scripts/lib/naila_process.ts).
 *
 * @example
 * ```ts
 * const gateway = await startGatewayProcess({ MQTT_HOST: "127.0.0.1", MQTT_PORT: "1884", AI_SERVER_PORT: "9999" });
 * await gateway.waitForLog((l) => l.msg === "signaling ready", 10_000);
 * await gateway.stop();
 * ```
 */
import { type LogLine, startNailaProcess } from "./naila_process.ts";

export type { LogLine };

/** A running gateway process. */
export interface GatewayProcess {
  pid: number;
  logs: LogLine[];
  /** Non-JSON stderr output (crashes, Deno errors). */
  otherOutput: string[];
  exited: boolean;
  waitForLog(match: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine>;
  /** SIGTERM, wait for exit (SIGKILL after 5 s); resolves with the exit code. */
  stop(): Promise<number>;
  /** SIGKILL without a clean shutdown (a crash). */
  kill(): Promise<void>;
}

const ROOT = new URL("../../", import.meta.url).pathname;
/** Startup: MQTT connect and announce; the first run also compiles the modules. */
const READY_TIMEOUT_MS = 20_000;

/** Silero v5 from `deno task models`, or the copy inside the npm package until that ran. */
export function sileroModelPath(): string | undefined {
  for (
    const path of [
      `${ROOT}models/silero_vad_v5.onnx`,
      `${ROOT}node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx`,
    ]
  ) {
    try {
      Deno.statSync(path);
      return path;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/**
 * The settings that attach a gateway to a server on this machine (a ServerProcess or a
 * LoopbackServer): its embedded broker and audio socket on 127.0.0.1, and its data directory,
 * where the gateway finds its MQTT login.
 */
export function gatewayEnvFor(
  server: { mqttPort: number; audioPort: number; dataDir: string },
): Record<string, string> {
  return {
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(server.mqttPort),
    NAILA_DATA_DIR: server.dataDir,
    AI_SERVER_HOST: "127.0.0.1",
    AI_SERVER_PORT: String(server.audioPort),
  };
}

/** Spawns the gateway with `env` on top of a loopback-only, quiet default environment. */
export async function startGatewayProcess(
  env: Record<string, string>,
  options: { waitReady?: boolean; denoFlags?: string[] } = {},
): Promise<GatewayProcess> {
  const model = sileroModelPath();
  const child = await startNailaProcess("gateway/main.ts", {
    WEBRTC_HOST_ADDRESSES: "127.0.0.1",
    LOG_LEVEL: "info",
    GATEWAY_WEB: "off",
    ...(model ? { AUDIO_VAD_MODEL: model } : {}),
    ...env,
  }, {
    ready: (options.waitReady ?? true) ? (l) => l.msg === "signaling ready" : undefined,
    readyTimeoutMs: READY_TIMEOUT_MS,
    denoFlags: options.denoFlags,
  });
  return {
    pid: child.pid,
    logs: child.logs,
    otherOutput: child.otherOutput,
    get exited() {
      return child.exited;
    },
    waitForLog: child.waitForLog,
    stop: async () => (await child.stop()).code,
    kill: async () => {
      await child.stop("SIGKILL");
    },
  };
}
