/**
 * `deno task gateway`: the Pi gateway process. Reads the configuration from the environment
 * (shared/config.ts, plus the gateway's own variables in gateway/README.md), starts the gateway
 * and the browser device page, and shuts down cleanly on SIGINT/SIGTERM (offline status
 * published, sessions closed).
 */
import { configFromEnv } from "../shared/config.ts";
import { createLogger } from "../shared/log.ts";
import type { EchoGuard } from "./audio_input.ts";
import { startGateway } from "./gateway.ts";
import { serveDevicePage, type WebBridge } from "./web_bridge.ts";

const ECHO_GUARDS: readonly EchoGuard[] = ["raise", "half_duplex", "off"];

function optionalInt(name: string, min: number): number | undefined {
  const raw = Deno.env.get(name)?.trim();
  if (!raw) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    console.error(
      `config: ${name}=${JSON.stringify(raw)} is not allowed: expected an integer >= ${min}`,
    );
    Deno.exit(2);
  }
  return value;
}

const config = configFromEnv();
const log = (component: string) => createLogger(component, { level: config.logLevel });
const guard = (Deno.env.get("GATEWAY_ECHO_GUARD")?.trim() || "raise") as EchoGuard;
if (!ECHO_GUARDS.includes(guard)) {
  console.error(
    `config: GATEWAY_ECHO_GUARD=${JSON.stringify(guard)} is not allowed: expected ${
      ECHO_GUARDS.join("|")
    }`,
  );
  Deno.exit(2);
}
const webPage = (Deno.env.get("GATEWAY_WEB")?.trim() || "on") !== "off";

const gateway = await startGateway(config, {
  log,
  echoGuard: guard,
  sileroPath: Deno.env.get("AUDIO_VAD_MODEL")?.trim() || undefined,
  metricsIntervalMs: optionalInt("GATEWAY_METRICS_INTERVAL_MS", 100),
  responseTimeoutMs: optionalInt("AI_SERVER_TIMEOUT_MS", 100),
  clientId: Deno.env.get("GATEWAY_MQTT_CLIENT_ID")?.trim() || undefined,
});

// GATEWAY_WEB=off turns the browser device page off (tests, headless installs).
let page: WebBridge | undefined;
if (webPage) {
  try {
    page = await serveDevicePage({
      port: config.gateway.httpPort,
      mqtt: gateway.signaling.mqtt.client,
      log: log("gateway.web"),
    });
  } catch (error) {
    log("gateway").warn("device page not started", {
      port: config.gateway.httpPort,
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
