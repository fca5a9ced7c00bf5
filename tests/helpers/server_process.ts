/**
 * Runs the real AI server (`deno run -A server/main.ts`) as a child process on free loopback
 * ports with its own data directory, for cross-process tests and the benchmark.
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
import { freePort } from "./ports.ts";

/** Startup: Deno compiles the server's modules on first run; later runs take ~0.5 s. */
const START_TIMEOUT_MS = 30_000;

/** A running server process. */
export interface ServerProcess {
  audioPort: number;
  mqttPort: number;
  dataDir: string;
  /** Every stderr line so far (JSON log records). */
  lines: string[];
  /** Sends `signal` (default SIGTERM) and waits for the exit; returns its status. */
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
  const root = new URL("../../", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "server/main.ts"],
    cwd: root,
    env: {
      AUDIO_SOCKET_HOST: "127.0.0.1",
      AUDIO_SOCKET_PORT: String(await freePort()),
      MQTT_BIND_HOST: "127.0.0.1",
      MQTT_PORT: String(await freePort()),
      NAILA_DATA_DIR: dataDir,
      LOG_LEVEL: "info",
      ...env,
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let onLine: (() => void) | undefined;
  const reading = (async () => {
    let buffer = "";
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      buffer += text;
      let newline: number;
      while ((newline = buffer.indexOf("\n")) !== -1) {
        lines.push(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        onLine?.();
      }
    }
  })();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    onLine?.();
    return s;
  });
  const cleanup = async () => {
    await reading.catch(() => {});
    if (removeDataDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  };
  const ready = await new Promise<Record<string, unknown> | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), START_TIMEOUT_MS);
    onLine = () => {
      for (const line of lines) {
        try {
          const record = JSON.parse(line);
          if (record.msg === "server ready") {
            clearTimeout(timer);
            resolve(record.fields);
            return;
          }
        } catch {
          // Not a log record (e.g. a Deno warning).
        }
      }
      if (exited) {
        clearTimeout(timer);
        resolve(undefined);
      }
    };
  });
  onLine = undefined;
  if (ready === undefined) {
    if (!exited) child.kill("SIGKILL");
    await status;
    await cleanup();
    throw new Error(`server did not start:\n${lines.join("\n")}`);
  }
  return {
    audioPort: Number(String(ready.audio_socket).split(":").at(-1)),
    mqttPort: Number(ready.mqtt_port),
    dataDir,
    lines,
    async stop(signal: Deno.Signal = "SIGTERM") {
      if (!exited) child.kill(signal);
      const result = await status;
      await cleanup();
      return result;
    },
  };
}
