import assert from "node:assert/strict";
import { ConfigError } from "../shared/config.ts";
import { loadServerConfig } from "./config.ts";
import { loadMediaConfig } from "./media/config.ts";

Deno.test("loadServerConfig has working defaults and no LLM unless LLM_URL is set", () => {
  assert.deepEqual(loadServerConfig({}), {
    mqttBindHost: "0.0.0.0",
    sttModelDir: "models/whisper-tiny.en",
    stt: { maxTokens: 128, threads: 2 },
    ttsVoice: "en-us",
    ttsEngine: "auto",
    queue: {
      maxWaiting: 256,
      maxQueuedAudioMs: 600_000,
      maxWaitMs: 20_000,
      maxBufferedBytes: 64 * 1024 * 1024,
    },
    sttBatch: 8,
    queueNoticeMs: 1500,
    media: loadMediaConfig({}),
    audioSocket: { auth: true, allow: [] },
  });
});

Deno.test("loadServerConfig reads the audio socket's access settings", () => {
  const config = loadServerConfig({
    AUDIO_SOCKET_AUTH: "off",
    AUDIO_SOCKET_ALLOW: "192.168.1.10, 10.0.0.0/8",
    AUDIO_SOCKET_TLS_CERT: "c.pem",
    AUDIO_SOCKET_TLS_KEY: "k.pem",
  });
  assert.equal(config.audioSocket.auth, false);
  assert.deepEqual(config.audioSocket.allow.map((r) => r.text), ["192.168.1.10", "10.0.0.0/8"]);
  assert.deepEqual(config.audioSocket.tls, { cert: "c.pem", key: "k.pem" });
  assert.throws(() => loadServerConfig({ AUDIO_SOCKET_ALLOW: "lan" }), /AUDIO_SOCKET_ALLOW/);
  assert.throws(() => loadServerConfig({ AUDIO_SOCKET_TLS_CERT: "c.pem" }), /AUDIO_SOCKET_TLS_KEY/);
  assert.throws(() => loadServerConfig({ AUDIO_SOCKET_AUTH: "maybe" }), /AUDIO_SOCKET_AUTH/);
});

Deno.test("loadServerConfig reads the LLM settings", () => {
  const config = loadServerConfig({
    LLM_URL: "http://127.0.0.1:8080/v1",
    LLM_MODEL: "llama3.2",
    LLM_API_KEY: "k",
    LLM_TIMEOUT_MS: "5000",
  });
  assert.deepEqual(config.llm, {
    url: "http://127.0.0.1:8080/v1",
    model: "llama3.2",
    apiKey: "k",
    timeoutMs: 5000,
  });
});

Deno.test("loadServerConfig reads the Whisper options", () => {
  assert.deepEqual(
    loadServerConfig({ STT_ENCODER_FRAMES: "fit", STT_MAX_TOKENS: "32", STT_THREADS: "1" }).stt,
    { encoderFrames: "fit", maxTokens: 32, threads: 1 },
  );
  assert.equal(loadServerConfig({ STT_ENCODER_FRAMES: "1000" }).stt.encoderFrames, 1000);
  assert.throws(() => loadServerConfig({ STT_ENCODER_FRAMES: "all" }), /STT_ENCODER_FRAMES/);
});

Deno.test("loadServerConfig reads the queue limits", () => {
  const config = loadServerConfig({
    INFERENCE_QUEUE_SIZE: "10",
    QUEUE_MAX_AUDIO_S: "30",
    QUEUE_MAX_WAIT_MS: "5000",
    QUEUE_MAX_BYTES: "1000000",
    QUEUE_NOTICE_MS: "800",
  });
  assert.deepEqual(config.queue, {
    maxWaiting: 10,
    maxQueuedAudioMs: 30_000,
    maxWaitMs: 5000,
    maxBufferedBytes: 1_000_000,
  });
  assert.equal(config.queueNoticeMs, 800);
});

Deno.test("loadServerConfig names the variable and value it refuses", () => {
  assert.throws(() => loadServerConfig({ LLM_URL: "localhost:8080" }), (e: ConfigError) => {
    assert.equal(e.variable, "LLM_URL");
    assert.equal(e.value, "localhost:8080");
    return true;
  });
  assert.throws(
    () => loadServerConfig({ INFERENCE_QUEUE_SIZE: "-1" }),
    /INFERENCE_QUEUE_SIZE="-1" is not allowed: expected an integer 0..4096/,
  );
  assert.throws(() => loadServerConfig({ QUEUE_MAX_WAIT_MS: "soon" }), /QUEUE_MAX_WAIT_MS/);
  assert.throws(() => loadServerConfig({ QUEUE_MAX_BYTES: "-5" }), /QUEUE_MAX_BYTES/);
  assert.throws(() => loadServerConfig({ TTS_VOICE: "en us; rm" }), ConfigError);
});
