import assert from "node:assert/strict";
import { ConfigError } from "../../shared/config.ts";
import { MAX_MEDIA_BYTES } from "../../shared/messages.ts";
import { loadMediaConfig, MEDIA_FORMATS } from "./config.ts";

Deno.test("loadMediaConfig: defaults keep no media (spec 17.3) and alert on a person anywhere", () => {
  const config = loadMediaConfig({});
  assert.equal(config.storage, "none");
  assert.equal(config.maxUploadBytes, MAX_MEDIA_BYTES);
  assert.deepEqual(config.formats, [...MEDIA_FORMATS]);
  assert.equal(config.snapshotTimeoutMs, 5000);
  assert.equal(config.cameraPollMs, 0, "no camera is watched unless asked");
  assert.deepEqual(config.alertRules, [{ zone: "*", label: "person" }]);
  assert.equal(config.alertCooldownMs, 60_000);
  assert.equal(config.retentionBytes, 500 * 1024 * 1024);
});

Deno.test("loadMediaConfig reads every variable", () => {
  const config = loadMediaConfig({
    MEDIA_MAX_UPLOAD_BYTES: "1000000",
    MEDIA_FORMATS: "jpeg, png,wav",
    MEDIA_SNAPSHOT_TIMEOUT_MS: "750",
    MEDIA_CAMERA_POLL_MS: "2000",
    MEDIA_DEVICE_ZONES: "front_cam=front_door,hub=kitchen",
    ALERT_RULES: "front_door:person,*:dog",
    ALERT_COOLDOWN_MS: "0",
    ALERT_MIN_CONFIDENCE: "0.7",
    MEDIA_STORAGE: "alerts",
    MEDIA_RETENTION_DAYS: "2",
    MEDIA_RETENTION_MB: "3",
  });
  assert.equal(config.maxUploadBytes, 1_000_000);
  assert.deepEqual(config.formats, ["jpeg", "png", "wav"]);
  assert.equal(config.snapshotTimeoutMs, 750);
  assert.equal(config.cameraPollMs, 2000);
  assert.deepEqual(config.deviceZones, { front_cam: "front_door", hub: "kitchen" });
  assert.deepEqual(config.alertRules, [
    { zone: "front_door", label: "person" },
    { zone: "*", label: "dog" },
  ]);
  assert.equal(config.alertMinConfidence, 0.7);
  assert.equal(config.storage, "alerts");
  assert.equal(config.retentionDays, 2);
  assert.equal(config.retentionBytes, 3 * 1024 * 1024);
  assert.deepEqual(loadMediaConfig({ ALERT_RULES: "none" }).alertRules, []);
});

Deno.test("loadMediaConfig refuses bad values, naming the variable and what is allowed", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [
      { MEDIA_MAX_UPLOAD_BYTES: String(MAX_MEDIA_BYTES + 1) },
      /MEDIA_MAX_UPLOAD_BYTES.*integer 1\.\./,
    ],
    [{ MEDIA_FORMATS: "jpeg,gif" }, /MEDIA_FORMATS="jpeg,gif".*gif is unknown/],
    [{ MEDIA_SNAPSHOT_TIMEOUT_MS: "soon" }, /MEDIA_SNAPSHOT_TIMEOUT_MS="soon"/],
    [{ MEDIA_DEVICE_ZONES: "cam:front" }, /MEDIA_DEVICE_ZONES.*device=zone/],
    [{ ALERT_RULES: "front_door" }, /ALERT_RULES="front_door".*zone:label/],
    [{ ALERT_MIN_CONFIDENCE: "2" }, /ALERT_MIN_CONFIDENCE="2".*0\.\.1/],
    [{ MEDIA_STORAGE: "all" }, /MEDIA_STORAGE="all".*none\|alerts/],
  ];
  for (const [env, message] of cases) {
    assert.throws(() => loadMediaConfig(env), (error: Error) => {
      assert.ok(error instanceof ConfigError, Object.keys(env)[0]);
      assert.match(error.message, message);
      return true;
    });
  }
});
