/**
 * The real AI server (`server/main.ts`, `PIPELINE=echo`: each reply is the utterance itself) as a
 * child process that a test can stop, kill or freeze and start again on the same loopback port
 * with the same audio-socket secret: what the gateway's AI-link tests run against. It accepts v1
 * gateways from 127.0.0.1 too (`AUDIO_SOCKET_ALLOW`), so one server serves both protocols.
 *
 * @example
 * ```ts
 * const server = await startEchoServer();
 * // a v2 client: { host: "127.0.0.1", port: server.port }, access: { secret: server.secret }
 * await server.stop(); // the server goes away ...
 * await server.start(); // ... and comes back on the same port
 * await server.close(); // stopped, its data directory removed
 * ```
 */
import { dirname } from "node:path";
import { audioSecretPath, ensureAudioSecret } from "../../shared/audio_auth.ts";
import { freePort } from "../../scripts/lib/ports.ts";
import { type ServerProcess, startServerProcess } from "../../scripts/lib/server_process.ts";

/** A real echo server; see the module doc. */
export interface EchoServer {
  /** Its audio socket's port, the same across restarts. */
  readonly port: number;
  /** The audio-socket secret a v2 gateway proves. */
  readonly secret: string;
  /** True while the process runs. */
  readonly running: boolean;
  /** Starts the process again (after {@link stop}); resolves once it is ready. */
  start(): Promise<void>;
  /** Ends the process with `signal` (default SIGTERM: a clean shutdown; SIGKILL: a crash). */
  stop(signal?: Deno.Signal): Promise<void>;
  /** SIGSTOP / SIGCONT: a hung server that still holds its connections, and its recovery. */
  freeze(): void;
  thaw(): void;
  /** Stops it if running and removes its data directory. */
  close(): Promise<void>;
}

/** Options of {@link startEchoServer}. */
export interface EchoServerOptions {
  /** Share this server's secret (the servers of one home share one, README "Security"). */
  secretOf?: EchoServer;
}

/** Starts a real echo server on a free loopback port; see the module doc. */
export async function startEchoServer(options: EchoServerOptions = {}): Promise<EchoServer> {
  const dataDir = await Deno.makeTempDir({ prefix: "naila_echo_" });
  let secret: string;
  if (options.secretOf) {
    await Deno.mkdir(dirname(audioSecretPath(dataDir)), { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(audioSecretPath(dataDir), options.secretOf.secret + "\n", {
      mode: 0o600,
    });
    secret = options.secretOf.secret;
  } else {
    secret = ensureAudioSecret(dataDir);
  }
  const port = await freePort();
  const env = {
    PIPELINE: "echo",
    AUDIO_SOCKET_PORT: String(port),
    AUDIO_SOCKET_ALLOW: "127.0.0.1",
  };
  let process: ServerProcess | undefined;
  const start = async () => {
    if (process) throw new Error(`echo server on port ${port} is already running`);
    process = await startServerProcess(env, { dataDir, removeDataDir: false });
  };
  const stop = async (signal?: Deno.Signal) => {
    const running = process;
    process = undefined;
    await running?.stop(signal);
  };
  const signal = (name: Deno.Signal) => {
    if (!process) throw new Error(`echo server on port ${port} is not running`);
    Deno.kill(process.pid, name);
  };
  try {
    await start();
  } catch (error) {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    throw error;
  }
  return {
    port,
    secret,
    get running() {
      return process !== undefined;
    },
    start,
    stop,
    freeze: () => signal("SIGSTOP"),
    thaw: () => signal("SIGCONT"),
    async close() {
      try {
        await stop("SIGKILL");
      } finally {
        await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      }
    },
  };
}
