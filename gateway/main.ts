/**
 * `deno task gateway`: the Pi gateway process. Reads the configuration from the environment
 * (shared/config.ts, plus the gateway's own variables in gateway/config.ts), starts the gateway
 * and the browser device page, and shuts down cleanly on SIGINT/SIGTERM (offline status
 * published, sessions closed).
 */
import { configFromEnv, loadOrExit } from "../shared/config.ts";
import { createLogger } from "../shared/log.ts";
import { loadGatewayConfig } from "./config.ts";
import { startGateway } from "./gateway.ts";
import { serveDevicePage, type WebBridge } from "./web_bridge.ts";

// Both configurations before anything starts: a bad variable exits with code 2 here.
const config = configFromEnv();
const settings = loadOrExit(loadGatewayConfig);
const log = (component: string) => createLogger(component, { level: config.logLevel });

const gateway = await startGateway(config, {
  log,
  echoGuard: settings.echoGuard,
  sileroPath: settings.sileroPath,
  metricsIntervalMs: settings.metricsIntervalMs,
  responseTimeoutMs: settings.responseTimeoutMs,
  clientId: settings.mqttClientId,
});

// GATEWAY_WEB=off turns the browser device page off (tests, headless installs).
let page: WebBridge | undefined;
if (settings.web.enabled) {
  try {
    page = await serveDevicePage({
      port: settings.web.port,
      hostname: settings.web.host,
      ...settings.web.tls,
      mqtt: gateway.signaling.mqtt,
      log: log("gateway.web"),
    });
  } catch (error) {
    log("gateway").warn("device page not started", {
      port: settings.web.port,
      error: String(error),
    });
  }
}

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await page?.close().catch(() => {});
  await gateway.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
