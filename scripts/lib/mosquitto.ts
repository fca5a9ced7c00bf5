/**
 * Runs a real Debian mosquitto on a free loopback port for a test, with its own temporary
 * config (no persistence, 127.0.0.1 only): by default anonymous clients with every right (a
 * plain broker for tests of other things), or with `secure`, NAILA's generated password file,
 * ACL, packet limit and optionally TLS (shared/mosquitto_files.ts), as an install runs it.
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
import { writeMosquittoFiles } from "../../shared/mosquitto_files.ts";
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
  /** Process id of the broker (to read its memory use). */
  pid: number;
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
  /** Run with NAILA's generated security files for the users of `dataDir`; TLS when `tls`. */
  secure?: { dataDir: string; tls?: boolean };
}

async function startOnce(port: number, options: MosquittoOptions): Promise<Mosquitto | string> {
  const dir = await Deno.makeTempDir({ prefix: "naila-mosquitto-" });
  const conf = `${dir}/mosquitto.conf`;
  const logging = ["persistence false", "log_dest stderr", "log_type error", "log_type warning"];
  if (options.secure) {
    const files = await writeMosquittoFiles(options.secure.dataDir, dir, {
      port,
      bindHost: "127.0.0.1",
      tls: options.secure.tls,
    });
    // Started as root, mosquitto drops to the "mosquitto" user, which cannot read the owner-only
    // files; an install gives them to that user (README "Security"), a test keeps its own user.
    const user = Deno.uid() === 0 ? ["user root"] : [];
    await Deno.writeTextFile(conf, [...logging, ...user].join("\n") + "\n", { append: true });
    if (files.config !== conf) throw new Error(`unexpected config path ${files.config}`);
  } else {
    await Deno.writeTextFile(
      conf,
      [`listener ${port} 127.0.0.1`, "allow_anonymous true", ...logging, ""].join("\n"),
    );
  }
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
    if (await acceptsConnections(port) && !exited) {
      return { port, pid: child.pid, configDir: dir, stop };
    }
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
