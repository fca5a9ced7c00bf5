/**
 * `deno task server`: reads the configuration from the environment, starts the AI server and
 * stops it cleanly on SIGINT/SIGTERM (offline status published, sockets and memory closed).
 */
import { configFromEnv, loadOrExit } from "../shared/config.ts";
import { createLogger } from "../shared/log.ts";
import { loadServerConfig, startServer } from "./mod.ts";

/** Longest a clean shutdown may take before the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 5000;

const config = configFromEnv();
const serverConfig = loadOrExit(loadServerConfig);
const log = createLogger("server.main", { level: config.logLevel });

let server;
try {
  server = await startServer({ config, server: serverConfig });
} catch (error) {
  log.error("server failed to start", { error: (error as Error).message });
  Deno.exit(1);
}

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info("stopping", { signal });
  const timer = setTimeout(() => {
    log.warn("shutdown took too long, exiting", { timeout_ms: SHUTDOWN_TIMEOUT_MS });
    Deno.exit(1);
  }, SHUTDOWN_TIMEOUT_MS);
  await server.close();
  clearTimeout(timer);
  log.info("stopped");
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
