import assert from "node:assert/strict";
import { CONFIG_EXIT_CODE, ConfigError, loadConfig } from "./config.ts";

function rejects(env: Record<string, string>, pattern: RegExp): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected ConfigError for ${JSON.stringify(env)}`);
  assert.match(caught.message, pattern);
  return caught;
}

Deno.test("loadConfig defaults (spec 14.2)", () => {
  assert.deepEqual(loadConfig({}), {
    mqtt: { embedded: true, host: "127.0.0.1", port: 1883 },
    aiServer: {
      host: "127.0.0.1",
      port: 9999,
      protocol: "v2",
      servers: [{ host: "127.0.0.1", port: 9999 }],
    },
    webrtc: { iceServers: [], hostAddresses: [] },
    audio: { vadMode: "auto", vadThreshold: 500, silenceFrames: 15, sampleRate: 48000 },
    socket: { host: "0.0.0.0", port: 9999 },
    pipeline: "full",
    logLevel: "info",
    dataDir: "./data",
  });
  // Empty values count as unset.
  assert.deepEqual(loadConfig({ MQTT_HOST: "", MQTT_PORT: " ", LOG_LEVEL: "" }), loadConfig({}));
});

Deno.test("loadConfig reads every variable", () => {
  const config = loadConfig({
    MQTT_HOST: "main-server.local",
    MQTT_PORT: "8883",
    MQTT_USERNAME: "gateway",
    MQTT_PASSWORD: "secret",
    MQTT_CA: "/etc/naila/ca.pem",
    MQTT_CERT: "/etc/naila/cert.pem",
    MQTT_KEY: "/etc/naila/key.pem",
    AI_SERVER_HOST: "10.0.0.5",
    AI_SERVER_PORT: "7000",
    AI_SERVER_PROTOCOL: "v1",
    WEBRTC_ICE_SERVERS: '["stun:10.0.0.1:3478",{"urls":["turn:10.0.0.1"],"username":"u",' +
      '"credential":"c"}]',
    WEBRTC_HOST_ADDRESSES: "127.0.0.1, ::1",
    AUDIO_VAD_MODE: "Energy",
    AUDIO_VAD_THRESHOLD: "800",
    AUDIO_SILENCE_FRAMES: "25",
    AUDIO_SAMPLE_RATE: "16000",
    LOG_LEVEL: "DEBUG",
    AUDIO_SOCKET_HOST: "127.0.0.1",
    AUDIO_SOCKET_PORT: "9000",
    PIPELINE: "echo",
    NAILA_DATA_DIR: "/var/lib/naila",
  });
  assert.deepEqual(config, {
    mqtt: {
      embedded: false,
      host: "main-server.local",
      port: 8883,
      username: "gateway",
      password: "secret",
      tls: { ca: "/etc/naila/ca.pem", cert: "/etc/naila/cert.pem", key: "/etc/naila/key.pem" },
    },
    aiServer: {
      host: "10.0.0.5",
      port: 7000,
      protocol: "v1",
      servers: [{ host: "10.0.0.5", port: 7000 }],
    },
    webrtc: {
      iceServers: [
        { urls: "stun:10.0.0.1:3478" },
        { urls: ["turn:10.0.0.1"], username: "u", credential: "c" },
      ],
      hostAddresses: ["127.0.0.1", "::1"],
    },
    audio: { vadMode: "energy", vadThreshold: 800, silenceFrames: 25, sampleRate: 16000 },
    socket: { host: "127.0.0.1", port: 9000 },
    pipeline: "echo",
    logLevel: "debug",
    dataDir: "/var/lib/naila",
  });
});

Deno.test("loadConfig MQTT TLS rules", async (t) => {
  const host = { MQTT_HOST: "broker.lan" };
  await t.step("TLS turns on with MQTT_CA or MQTT_TLS=true, off by default", () => {
    assert.equal(loadConfig(host).mqtt.tls, undefined);
    assert.deepEqual(loadConfig({ ...host, MQTT_CA: "/ca.pem" }).mqtt.tls, { ca: "/ca.pem" });
    assert.deepEqual(loadConfig({ ...host, MQTT_TLS: "true" }).mqtt.tls, {});
    assert.equal(loadConfig({ ...host, MQTT_TLS: "false" }).mqtt.tls, undefined);
  });
  await t.step("contradictions and half pairs are rejected", () => {
    rejects({ ...host, MQTT_TLS: "yes" }, /MQTT_TLS="yes" .*expected true\|false/);
    rejects({ ...host, MQTT_TLS: "false", MQTT_CA: "/ca.pem" }, /MQTT_TLS="false"/);
    rejects({ ...host, MQTT_CERT: "/c.pem" }, /MQTT_KEY=.*when MQTT_CERT is set/);
    rejects({ ...host, MQTT_KEY: "/k.pem" }, /MQTT_CERT=.*when MQTT_KEY is set/);
    rejects({ ...host, MQTT_PASSWORD: "secret" }, /MQTT_USERNAME=.*when MQTT_PASSWORD is set/);
  });
  await t.step("the embedded broker may use TLS; anonymous access is an explicit opt-out", () => {
    assert.deepEqual(loadConfig({ MQTT_TLS: "true" }).mqtt.tls, {});
    assert.equal(loadConfig({}).mqtt.allowAnonymous, undefined);
    assert.equal(loadConfig({ MQTT_ALLOW_ANONYMOUS: "true" }).mqtt.allowAnonymous, true);
    rejects({ MQTT_ALLOW_ANONYMOUS: "maybe" }, /MQTT_ALLOW_ANONYMOUS="maybe"/);
    assert.equal(
      loadConfig({ MQTT_USERNAME: "u", MQTT_PASSWORD_FILE: "/run/pw" }).mqtt.passwordFile,
      "/run/pw",
    );
    rejects({ MQTT_PASSWORD_FILE: "/run/pw" }, /MQTT_USERNAME=.*MQTT_PASSWORD_FILE/);
    rejects({ MQTT_USERNAME: "u", MQTT_PASSWORD: "p", MQTT_PASSWORD_FILE: "/f" }, /FILE/);
  });
  await t.step("the password never appears in an error", () => {
    const err = rejects({ ...host, MQTT_PASSWORD: "hunter2" }, /MQTT_USERNAME/);
    assert.ok(!err.message.includes("hunter2"));
  });
});

Deno.test("loadConfig rejects bad values naming variable, value and what is allowed", () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ MQTT_PORT: "12abc" }, /^MQTT_PORT="12abc" is not allowed: expected an integer 1\.\.65535$/],
    [{ MQTT_PORT: "0" }, /MQTT_PORT="0" .*1\.\.65535/],
    [{ MQTT_PORT: "65536" }, /MQTT_PORT="65536"/],
    [{ MQTT_PORT: "-1" }, /MQTT_PORT="-1"/],
    [{ MQTT_PORT: "1e3" }, /MQTT_PORT="1e3"/],
    [{ MQTT_HOST: "bad host" }, /MQTT_HOST="bad host" .*host name or IP/],
    [{ AI_SERVER_HOST: "a/b" }, /AI_SERVER_HOST="a\/b"/],
    [{ AI_SERVER_PORT: "99999" }, /AI_SERVER_PORT="99999"/],
    [{ AI_SERVER_PROTOCOL: "v3" }, /AI_SERVER_PROTOCOL="v3" .*expected v1\|v2/],
    [{ WEBRTC_ICE_SERVERS: "stun:x" }, /WEBRTC_ICE_SERVERS="stun:x" .*JSON array/],
    [{ WEBRTC_ICE_SERVERS: '{"urls":"stun:x"}' }, /WEBRTC_ICE_SERVERS=/],
    [{ WEBRTC_ICE_SERVERS: '["http://x"]' }, /WEBRTC_ICE_SERVERS=/],
    [{ WEBRTC_ICE_SERVERS: '[{"urls":[]}]' }, /WEBRTC_ICE_SERVERS=/],
    [{ WEBRTC_ICE_SERVERS: '[{"urls":"turn:x","username":1}]' }, /WEBRTC_ICE_SERVERS=/],
    [{ WEBRTC_HOST_ADDRESSES: "127.0.0.1,eth0" }, /WEBRTC_HOST_ADDRESSES=.*"eth0" is not one/],
    [{ AUDIO_VAD_MODE: "webrtc" }, /AUDIO_VAD_MODE="webrtc" .*expected auto\|energy\|silero/],
    [{ AUDIO_VAD_THRESHOLD: "0.5" }, /AUDIO_VAD_THRESHOLD="0\.5" .*integer 0\.\.32767/],
    [{ AUDIO_VAD_THRESHOLD: "40000" }, /AUDIO_VAD_THRESHOLD="40000"/],
    [{ AUDIO_SILENCE_FRAMES: "0" }, /AUDIO_SILENCE_FRAMES="0" .*integer 1\.\.1000/],
    [{ AUDIO_SAMPLE_RATE: "44100" }, /AUDIO_SAMPLE_RATE="44100" .*8000\|16000\|24000\|48000/],
    [{ LOG_LEVEL: "TRACE" }, /LOG_LEVEL="TRACE" .*expected debug\|info\|warn\|error/],
    [{ AUDIO_SOCKET_HOST: "0.0.0.0 " + "x" }, /AUDIO_SOCKET_HOST=/],
    [{ AUDIO_SOCKET_PORT: "port" }, /AUDIO_SOCKET_PORT="port"/],
    [{ PIPELINE: "FULL" }, /PIPELINE="FULL" .*expected full\|echo/],
  ];
  for (const [env, pattern] of cases) rejects(env, pattern);
});

Deno.test("configFromEnv prints one line and exits with code 2", async () => {
  const script = `import { configFromEnv } from ${
    JSON.stringify(new URL("./config.ts", import.meta.url).href)
  };
configFromEnv();
console.log("unreachable");`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    env: { MQTT_PORT: "12abc" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, CONFIG_EXIT_CODE);
  assert.equal(new TextDecoder().decode(out.stdout), "");
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(
    stderr,
    'config: MQTT_PORT="12abc" is not allowed: expected an integer 1..65535\n',
  );
});

Deno.test("AI_SERVER_HOST lists servers as host[:port], the port defaulting to AI_SERVER_PORT", () => {
  const config = loadConfig({
    AI_SERVER_HOST: "10.0.0.5:7001, ai-2.local,[::1]:7003,::2",
    AI_SERVER_PORT: "7000",
  });
  assert.deepEqual(config.aiServer.servers, [
    { host: "10.0.0.5", port: 7001 },
    { host: "ai-2.local", port: 7000 },
    { host: "::1", port: 7003 },
    { host: "::2", port: 7000 },
  ]);
  assert.equal(config.aiServer.host, "10.0.0.5");
  assert.equal(config.aiServer.port, 7001);
});

Deno.test("AI_SERVER_HOST refuses an empty entry, a bad host and a bad port, naming them", () => {
  assert.throws(
    () => loadConfig({ AI_SERVER_HOST: "a,,b" }),
    /AI_SERVER_HOST="a,,b".*host\[:port\]/,
  );
  assert.throws(() => loadConfig({ AI_SERVER_HOST: "a,b/c" }), /AI_SERVER_HOST="b\/c"/);
  assert.throws(() => loadConfig({ AI_SERVER_HOST: "a:99999" }), /AI_SERVER_PORT="99999"/);
});
