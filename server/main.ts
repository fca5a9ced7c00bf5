/**
 * `deno task server`: reads the configuration from the environment, starts the AI server and
 * stops it cleanly on SIGINT/SIGTERM (offline status published, sockets and memory closed).
 */
import { configFromEnv, loadOrExit } from "../shared/config.ts";
import { createLogger } from "../shared/log.ts";
import { stopOnSignals } from "../shared/shutdown.ts";
import { loadServerConfig, startServer } from "./mod.ts";

const config = configFromEnv();
const serverConfig = loadOrExit(loadServerConfig);
const log = createLogger("server.main", { level: config.logLevel });

const starting = startServer({ config, server: serverConfig });
// Before the start finishes: "server ready" is logged inside it, and a supervisor may stop us
// the moment it reads that line.
stopOnSignals(async () => await (await starting).close(), { log });
try {
  await starting;
} catch (error) {
  log.error("server failed to start", { error: (error as Error).message });
  Deno.exit(1);
}
