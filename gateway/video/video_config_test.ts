import assert from "node:assert/strict";
import { ConfigError } from "../../shared/config.ts";
import { loadVideoConfig } from "./video_config.ts";

Deno.test("defaults follow spec 14.1: 640x480, 15 fps, motion at 5 fps, 0.5 % area", () => {
  assert.deepEqual(loadVideoConfig({}), {
    width: 640,
    height: 480,
    fps: 15,
    maxWidth: 1920,
    maxHeight: 1080,
    motionFps: 5,
    frameSkip: 0,
    motionThreshold: 0.005,
    motionPixelThreshold: 15,
    forwardFps: 2,
  });
});

Deno.test("every variable is read", () => {
  const config = loadVideoConfig({
    VIDEO_WIDTH: "1280",
    VIDEO_HEIGHT: "720",
    VIDEO_FPS: "5",
    VIDEO_MAX_WIDTH: "1280",
    VIDEO_MAX_HEIGHT: "720",
    VIDEO_MOTION_FPS: "2",
    VIDEO_FRAME_SKIP: "1",
    VIDEO_MOTION_THRESHOLD: "1.5",
    VIDEO_MOTION_PIXEL_THRESHOLD: "25",
    VIDEO_FORWARD_FPS: "1",
  });
  assert.deepEqual(config, {
    width: 1280,
    height: 720,
    fps: 5,
    maxWidth: 1280,
    maxHeight: 720,
    motionFps: 2,
    frameSkip: 1,
    motionThreshold: 0.015,
    motionPixelThreshold: 25,
    forwardFps: 1,
  });
});

Deno.test("bad values name the variable and what is allowed", () => {
  const fails = (env: Record<string, string>, text: RegExp) =>
    assert.throws(
      () => loadVideoConfig(env),
      (e) => e instanceof ConfigError && text.test(e.message),
    );
  fails({ VIDEO_MOTION_THRESHOLD: "80" }, /VIDEO_MOTION_THRESHOLD="80".*at most 50/);
  fails({ VIDEO_MOTION_THRESHOLD: "-1" }, /VIDEO_MOTION_THRESHOLD/);
  fails({ VIDEO_FPS: "120" }, /VIDEO_FPS="120".*1\.\.30/);
  // A decode cap below the asked resolution would refuse every frame.
  fails({ VIDEO_MAX_WIDTH: "320" }, /VIDEO_MAX_WIDTH="320".*640\.\.4096/);
});
