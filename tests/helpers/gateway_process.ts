/**
 * Runs the real gateway (`deno run -A gateway/main.ts`) as its own process for cross-process
 * tests and the benchmark, on loopback only (WEBRTC_HOST_ADDRESSES=127.0.0.1), with its JSON log
 * lines collected so a test can wait for one.
 *
 * @example
 * ```ts
 * const gateway = await startGatewayProcess({ MQTT_HOST: "127.0.0.1", MQTT_PORT: "1884", AI_SERVER_PORT: "9999" });
 * await gateway.waitForLog((l) => l.msg === "signaling ready", 10_000);
 * await gateway.stop();
 * ```
 */
import { delay } from "../../shared/async.ts";

/** One parsed log line of the gateway. */
export interface LogLine {
  level: string;
  component: string;
  msg: string;
  fields?: Record<string, unknown>;
}

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

const GATEWAY_MAIN = new URL("../../gateway/main.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;
/** How long a clean shutdown may take before SIGKILL. */
const STOP_TIMEOUT_MS = 5000;

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

/** Spawns the gateway with `env` on top of a loopback-only, quiet default environment. */
export async function startGatewayProcess(
  env: Record<string, string>,
  options: { waitReady?: boolean; denoFlags?: string[] } = {},
): Promise<GatewayProcess> {
  const model = sileroModelPath();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...(options.denoFlags ?? []), GATEWAY_MAIN],
    cwd: ROOT,
    env: {
      WEBRTC_HOST_ADDRESSES: "127.0.0.1",
      LOG_LEVEL: "info",
      GATEWAY_WEB: "off",
      ...(model ? { AUDIO_VAD_MODEL: model } : {}),
      ...env,
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const logs: LogLine[] = [];
  const otherOutput: string[] = [];
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const reading = (async () => {
    let rest = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const lines = rest.split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith("{")) {
          try {
            logs.push(JSON.parse(line));
            continue;
          } catch {
            // not one of ours
          }
        }
        if (line.trim()) otherOutput.push(line);
      }
    }
  })();
  const process: GatewayProcess = {
    pid: child.pid,
    logs,
    otherOutput,
    get exited() {
      return exited;
    },
    async waitForLog(match, timeoutMs) {
      const end = performance.now() + timeoutMs;
      while (performance.now() < end) {
        const found = logs.find(match);
        if (found) return found;
        if (exited) break;
        await delay(10);
      }
      throw new Error(
        `gateway: no matching log line within ${timeoutMs} ms${exited ? " (exited)" : ""}; ` +
          `last lines: ${JSON.stringify(logs.slice(-5))} ${otherOutput.slice(-5).join(" | ")}`,
      );
    },
    async stop() {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch {
          // gone
        }
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch {
            // gone
          }
        }, STOP_TIMEOUT_MS);
        await status;
        clearTimeout(timer);
      }
      await reading.catch(() => {});
      return (await status).code;
    },
    async kill() {
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch {
          // gone
        }
      }
      await status;
      await reading.catch(() => {});
    },
  };
  if (options.waitReady ?? true) {
    try {
      await process.waitForLog((l) => l.msg === "signaling ready", 20_000);
    } catch (error) {
      await process.kill();
      throw error;
    }
  }
  return process;
}
