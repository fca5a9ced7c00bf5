import assert from "node:assert/strict";
import { CONFIG_EXIT_CODE, ConfigError } from "../shared/config.ts";
import { LAN_RANGES, parseRanges } from "../shared/ip_ranges.ts";
import {
  DEFAULT_MAX_CANDIDATES,
  DEFAULT_MAX_DEVICES,
  DEFAULT_MAX_SOCKETS,
  DEFAULT_SILERO_PATH,
  loadGatewayConfig,
  METRICS_INTERVAL_MS,
} from "./config.ts";
import { RESPONSE_TIMEOUT_MS } from "./ai_turn.ts";
import { loadVideoConfig } from "./video/video_config.ts";

/** Stand-ins for PEM files: the loader checks readability and the PEM label, not the key. */
const CERT_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY_PEM = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

async function withPemFiles(run: (cert: string, key: string) => void | Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "naila_gateway_config_" });
  try {
    await Deno.writeTextFile(`${dir}/cert.pem`, CERT_PEM);
    await Deno.writeTextFile(`${dir}/key.pem`, KEY_PEM);
    await run(`${dir}/cert.pem`, `${dir}/key.pem`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function rejects(env: Record<string, string>, pattern: RegExp): void {
  assert.throws(() => loadGatewayConfig(env), (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected ConfigError for ${JSON.stringify(env)}`);
    assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("loadGatewayConfig defaults", () => {
  assert.deepEqual(loadGatewayConfig({}), {
    web: {
      enabled: true,
      host: "0.0.0.0",
      port: 8080,
      pairing: true,
      origins: [],
      maxSockets: DEFAULT_MAX_SOCKETS,
    },
    echoGuard: "estimate",
    echoMarginDb: 6,
    stallHoldMs: 1000,
    turnMaxMs: 120_000,
    turnTaking: { graceMs: 800, continueMaxMs: 3000, incompleteMaxMs: 1200 },
    sileroPath: DEFAULT_SILERO_PATH,
    responseTimeoutMs: RESPONSE_TIMEOUT_MS,
    metricsIntervalMs: METRICS_INTERVAL_MS,
    mqttClientId: undefined, // a unique id per process (shared/mqtt.ts uniqueClientId)
    workers: 0,
    aiServer: { auth: true },
    maxDevices: DEFAULT_MAX_DEVICES,
    candidates: { allowed: [...LAN_RANGES], max: DEFAULT_MAX_CANDIDATES },
    video: loadVideoConfig({}),
  });
  assert.equal(RESPONSE_TIMEOUT_MS, 10_000);
  assert.equal(METRICS_INTERVAL_MS, 5000);
  assert.match(DEFAULT_SILERO_PATH, /\/models\/silero_vad_v5\.onnx$/);
  // Empty values count as unset, as in shared/config.ts.
  assert.deepEqual(
    loadGatewayConfig({ GATEWAY_ECHO_GUARD: "", GATEWAY_TLS_CERT: " ", GATEWAY_WEB: "" }),
    loadGatewayConfig({}),
  );
});

Deno.test("loadGatewayConfig reads every variable", async () => {
  await withPemFiles((cert, key) => {
    assert.deepEqual(
      loadGatewayConfig({
        GATEWAY_HTTP_HOST: "127.0.0.1",
        GATEWAY_HTTP_PORT: "8443",
        GATEWAY_TLS_CERT: cert,
        GATEWAY_TLS_KEY: key,
        GATEWAY_WEB: "OFF",
        GATEWAY_ECHO_GUARD: "half_duplex",
        GATEWAY_ECHO_MARGIN_DB: "10",
        AUDIO_STALL_HOLD_MS: "700",
        TURN_MAX_MS: "60000",
        TURN_GRACE_MS: "500",
        TURN_INCOMPLETE_MAX_MS: "1500",
        AUDIO_VAD_MODEL: "/opt/naila/silero.onnx",
        AI_SERVER_TIMEOUT_MS: "1500",
        GATEWAY_METRICS_INTERVAL_MS: "500",
        GATEWAY_MQTT_CLIENT_ID: "naila-gateway-2",
        GATEWAY_WORKERS: "2",
        GATEWAY_PAIRING: "off",
        GATEWAY_WEB_ORIGINS: "https://naila.home:8443",
        GATEWAY_WEB_MAX_SOCKETS: "4",
        GATEWAY_MAX_DEVICES: "3",
        WEBRTC_ALLOWED_CANDIDATE_RANGES: "192.168.1.0/24",
        WEBRTC_MAX_CANDIDATES: "8",
        AI_SERVER_SECRET: "s".repeat(40),
        AI_SERVER_AUTH: "on",
        AI_SERVER_TLS: "on",
        AI_SERVER_CA: cert,
        VIDEO_FPS: "5",
      }),
      {
        web: {
          enabled: false,
          host: "127.0.0.1",
          port: 8443,
          tls: { cert, key },
          pairing: false,
          origins: ["https://naila.home:8443"],
          maxSockets: 4,
        },
        echoGuard: "half_duplex",
        echoMarginDb: 10,
        stallHoldMs: 700,
        turnMaxMs: 60_000,
        turnTaking: { graceMs: 500, continueMaxMs: 3000, incompleteMaxMs: 1500 },
        sileroPath: "/opt/naila/silero.onnx",
        responseTimeoutMs: 1500,
        metricsIntervalMs: 500,
        mqttClientId: "naila-gateway-2",
        workers: 2,
        aiServer: { auth: true, secret: "s".repeat(40), tls: { caCerts: [CERT_PEM] } },
        maxDevices: 3,
        candidates: { allowed: parseRanges("192.168.1.0/24"), max: 8 },
        video: { ...loadVideoConfig({}), fps: 5 },
      },
    );
  });
});

Deno.test("loadGatewayConfig rejects bad values naming variable, value and what is allowed", () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [
      { GATEWAY_ECHO_GUARD: "loud" },
      /^GATEWAY_ECHO_GUARD="loud" is not allowed: expected estimate\|raise\|half_duplex\|off$/,
    ],
    [{ GATEWAY_WEB: "yes" }, /^GATEWAY_WEB="yes" .*expected on\|off$/],
    [{ GATEWAY_ECHO_MARGIN_DB: "41" }, /^GATEWAY_ECHO_MARGIN_DB="41" .*integer 0\.\.40$/],
    [{ AUDIO_STALL_HOLD_MS: "50" }, /^AUDIO_STALL_HOLD_MS="50" .*integer 100\.\.10000$/],
    [{ TURN_MAX_MS: "20000" }, /^TURN_MAX_MS="20000" .*integer 30000\.\.600000$/],
    [{ TURN_GRACE_MS: "20000" }, /^TURN_GRACE_MS="20000" .*integer 0\.\.10000$/],
    [{ GATEWAY_HTTP_HOST: "bad host" }, /^GATEWAY_HTTP_HOST="bad host" .*host name or IP/],
    [{ GATEWAY_HTTP_PORT: "80.5" }, /^GATEWAY_HTTP_PORT="80\.5" .*integer 1\.\.65535$/],
    [{ GATEWAY_HTTP_PORT: "70000" }, /^GATEWAY_HTTP_PORT="70000"/],
    [{ AI_SERVER_TIMEOUT_MS: "10s" }, /^AI_SERVER_TIMEOUT_MS="10s" .*integer 100\.\.600000$/],
    [{ AI_SERVER_TIMEOUT_MS: "50" }, /^AI_SERVER_TIMEOUT_MS="50"/],
    [
      { GATEWAY_METRICS_INTERVAL_MS: "0" },
      /^GATEWAY_METRICS_INTERVAL_MS="0" .*integer 100\.\.3600000$/,
    ],
    [
      { GATEWAY_MQTT_CLIENT_ID: "my gateway" },
      /^GATEWAY_MQTT_CLIENT_ID="my gateway" .*1 to 64 letters/,
    ],
    [{ GATEWAY_MQTT_CLIENT_ID: "g".repeat(65) }, /^GATEWAY_MQTT_CLIENT_ID=/],
  ];
  for (const [env, pattern] of cases) rejects(env, pattern);
});

Deno.test("loadGatewayConfig wants both TLS files or neither, readable PEM, at start", async () => {
  await withPemFiles((cert, key) => {
    rejects({ GATEWAY_TLS_CERT: cert }, /^GATEWAY_TLS_KEY="" .*when GATEWAY_TLS_CERT is set$/);
    rejects({ GATEWAY_TLS_KEY: key }, /^GATEWAY_TLS_CERT="" .*when GATEWAY_TLS_KEY is set$/);
    const missing = `${cert}.missing`;
    rejects(
      { GATEWAY_TLS_CERT: missing, GATEWAY_TLS_KEY: key },
      new RegExp(
        `^GATEWAY_TLS_CERT="${missing}" .*a readable PEM certificate file \\(NotFound\\)$`,
      ),
    );
    rejects(
      { GATEWAY_TLS_CERT: cert, GATEWAY_TLS_KEY: cert },
      /^GATEWAY_TLS_KEY=".*cert\.pem" .*a PEM file holding a private key$/,
    );
    rejects(
      { GATEWAY_TLS_CERT: key, GATEWAY_TLS_KEY: key },
      /^GATEWAY_TLS_CERT=".*key\.pem" .*a PEM file holding a certificate$/,
    );
  });
});

Deno.test("the gateway process prints one line and exits with code 2 on a bad variable", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./main.ts", import.meta.url).pathname],
    env: { GATEWAY_ECHO_GUARD: "loud", GATEWAY_WEB: "off" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, CONFIG_EXIT_CODE);
  assert.equal(new TextDecoder().decode(out.stdout), "");
  assert.equal(
    new TextDecoder().decode(out.stderr),
    'config: GATEWAY_ECHO_GUARD="loud" is not allowed: expected estimate|raise|half_duplex|off\n',
  );
});

Deno.test("loadGatewayConfig refuses a weak secret, a bad range and a bad origin by name", () => {
  rejects({ AI_SERVER_SECRET: "short" }, /AI_SERVER_SECRET.*32/);
  rejects({ AI_SERVER_SECRET_FILE: "/nonexistent/secret" }, /AI_SERVER_SECRET_FILE/);
  rejects({ WEBRTC_ALLOWED_CANDIDATE_RANGES: "lan" }, /WEBRTC_ALLOWED_CANDIDATE_RANGES/);
  rejects({ GATEWAY_WEB_ORIGINS: "evil" }, /GATEWAY_WEB_ORIGINS/);
  rejects({ GATEWAY_MAX_DEVICES: "0" }, /GATEWAY_MAX_DEVICES/);
});
