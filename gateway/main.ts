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
import { isLoopbackHost } from "../shared/ip_ranges.ts";
import { WebPairing } from "../shared/web_pairing.ts";

// Both configurations before anything starts: a bad variable exits with code 2 here.
const config = configFromEnv();
const settings = loadOrExit(loadGatewayConfig);
const log = (component: string) => createLogger(component, { level: config.logLevel });

const starting = startGateway(config, {
  log,
  echoGuard: settings.echoGuard,
  echoMarginDb: settings.echoMarginDb,
  stallHoldMs: settings.stallHoldMs,
  turnMaxMs: settings.turnMaxMs,
  turnTaking: settings.turnTaking,
  sileroPath: settings.sileroPath,
  metricsIntervalMs: settings.metricsIntervalMs,
  responseTimeoutMs: settings.responseTimeoutMs,
  clientId: settings.mqttClientId,
  workers: settings.workers,
  aiServer: settings.aiServer,
  maxDevices: settings.maxDevices,
  candidates: settings.candidates,
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
  const webLog = log("gateway.web");
  const pairing = settings.web.pairing ? WebPairing.open(config.dataDir) : undefined;
  page = serveDevicePage({
    port: settings.web.port,
    hostname: settings.web.host,
    ...settings.web.tls,
    mqtt: gateway.signaling.mqtt,
    log: webLog,
    pairing,
    origins: settings.web.origins,
    maxSockets: settings.web.maxSockets,
  }).then((bridge) => {
    const scheme = settings.web.tls ? "https" : "http";
    // A wildcard bind is reached by this machine's name.
    const wildcard = settings.web.host === "0.0.0.0" || settings.web.host === "::";
    const host = wildcard ? Deno.hostname() : settings.web.host;
    if (pairing) {
      // Printed once at start: the link a user opens once per browser to pair it.
      webLog.info("device page pairing link (open once per browser)", {
        link: pairing.link(`${scheme}://${host}:${bridge.port}`),
      });
    } else if (!isLoopbackHost(settings.web.host)) {
      webLog.warn(
        `device page on ${settings.web.host} lets any browser in without pairing (GATEWAY_PAIRING=off)`,
      );
    }
    return bridge;
  }).catch((error) => {
    log("gateway").warn("device page not started", {
      port: settings.web.port,
      error: String(error),
    });
    return undefined;
  });
}
