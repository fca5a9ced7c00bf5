/**
 * `deno task gateway`: the Pi gateway process. Reads the configuration from the environment
 * (shared/config.ts, plus the gateway's own variables in gateway/config.ts), starts the gateway
 * and the browser device page, and shuts down cleanly on SIGINT/SIGTERM (offline status
 * published, sessions closed).
 */
import { configFromEnv, loadOrExit } from "../shared/config.ts";
import { createLogger } from "../shared/log.ts";
import { stopOnSignals } from "../shared/shutdown.ts";
import { loadGatewayConfig } from "./config.ts";
import { startGateway } from "./gateway.ts";
import { serveDevicePage, type WebBridge } from "./web_bridge.ts";

// Both configurations before anything starts: a bad variable exits with code 2 here.
const config = configFromEnv();
const settings = loadOrExit(loadGatewayConfig);
const log = (component: string) => createLogger(component, { level: config.logLevel });

const starting = startGateway(config, {
  log,
  echoGuard: settings.echoGuard,
  sileroPath: settings.sileroPath,
  metricsIntervalMs: settings.metricsIntervalMs,
  responseTimeoutMs: settings.responseTimeoutMs,
  clientId: settings.mqttClientId,
  video: settings.video,
});
// GATEWAY_WEB=off turns the browser device page off (tests, headless installs).
let page: Promise<WebBridge | undefined> = Promise.resolve(undefined);
// Before the start finishes: "signaling ready" is logged inside it, and a supervisor may stop us
// the moment it reads that line.
stopOnSignals(async () => {
  const gateway = await starting;
  await (await page)?.close().catch(() => {});
  await gateway.close();
}, { log: log("gateway.main") });
const gateway = await starting;

if (settings.web.enabled) {
  page = serveDevicePage({
    port: settings.web.port,
    hostname: settings.web.host,
    ...settings.web.tls,
    mqtt: gateway.signaling.mqtt,
    log: log("gateway.web"),
  }).catch((error) => {
    log("gateway").warn("device page not started", {
      port: settings.web.port,
      error: String(error),
    });
    return undefined;
  });
}
