/**
 * Runs a real Debian mosquitto on a free loopback port for a test, with its own temporary
 * config (no persistence, anonymous clients, 127.0.0.1 only).
 *
 * @example
 * ```ts
 * import { startMosquitto } from "./mosquitto.ts";
 * const broker = await startMosquitto();
 * try {
 *   // connect to mqtt://127.0.0.1:${broker.port}
 * } finally {
 *   await broker.stop();
 * }
 * ```
 */
import { freePort } from "./ports.ts";

/** Debian's mosquitto binary. */
export const MOSQUITTO_PATH = "/usr/sbin/mosquitto";
/** How long mosquitto may take to accept connections (it starts in ~10 ms here). */
const START_TIMEOUT_MS = 5000;
/** Pause between connection attempts while waiting for it. */
const POLL_MS = 20;
/** Tries with a fresh port when another process grabbed ours between freePort and bind. */
const PORT_ATTEMPTS = 3;

/** A running mosquitto. */
export interface Mosquitto {
  port: number;
  /** Temporary directory holding its config; removed by {@link Mosquitto.stop}. */
  configDir: string;
  /** Kills the broker, waits for it to exit and removes its temporary directory. */
  stop(): Promise<void>;
}

async function acceptsConnections(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** Options of {@link startMosquitto}. */
export interface MosquittoOptions {
  /** Lines appended to the config (they win over the defaults above them), e.g. an ACL file. */
  config?: string[];
}

async function startOnce(port: number, options: MosquittoOptions): Promise<Mosquitto | string> {
  const dir = await Deno.makeTempDir({ prefix: "naila-mosquitto-" });
  const conf = `${dir}/mosquitto.conf`;
  await Deno.writeTextFile(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      "log_dest stderr",
      "log_type error",
      "log_type warning",
      ...options.config ?? [],
      "",
    ].join("\n"),
  );
  const child = new Deno.Command(MOSQUITTO_PATH, {
    args: ["-c", conf],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderrLines = "";
  const stderrText = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (stderrLines += chunk) }),
  );
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
      }
      await status;
      await stderrText.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    })();
    return stopping;
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) break;
    // Checked again after connecting: if another process holds the port, mosquitto exits.
    if (await acceptsConnections(port) && !exited) return { port, configDir: dir, stop };
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  await stop();
  return `mosquitto on port ${port} did not start within ${START_TIMEOUT_MS} ms: ${stderrLines.trim()}`;
}

/** Starts mosquitto on a free 127.0.0.1 port and waits until it accepts connections. */
export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  let lastError = "";
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const result = await startOnce(await freePort(), options);
    if (typeof result !== "string") return result;
    lastError = result;
  }
  throw new Error(lastError);
}
