import assert from "node:assert/strict";
import sharp from "sharp";
import type { ErrorMessage, ImageMessage } from "../shared/frame_codec.ts";
import { Vp8Packetizer } from "../shared/video/vp8_packetizer.ts";
import { CameraHub } from "./camera_hub.ts";
import { CameraPipeline, loadVideoConfig } from "./video/mod.ts";
import { encodePhotoVp8, ivfFrames, testPhoto } from "./video/testing.ts";

/** What the hub sent; `up` false is a link down (or a server without `image`). */
function link(up = true) {
  const sent: (ImageMessage | ErrorMessage)[] = [];
  return { sent, sendCamera: (m: ImageMessage | ErrorMessage) => (sent.push(m), up) };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; !check(); i++) {
    if (i > 500) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("frame requests: a live camera's JPEG, or errors naming the request", async () => {
  const out = link();
  const hub = new CameraHub({ link: out });
  hub.request({ type: "frame_request", request: "g1", device: "hall", max_age_ms: 1000, ts: 1 });
  await until(() => out.sent.length === 1, "the no_video error");
  assert.deepEqual({ ...out.sent[0], ts: 0 }, {
    type: "error",
    request: "g1",
    code: "no_video",
    message: "device hall has no video track",
    ts: 0,
  });

  const camera = new CameraPipeline(loadVideoConfig({}), {
    onKeyframeRequest() {},
    onMotionFrame() {},
  });
  const remove = hub.add("hall", camera);
  try {
    const photo = await testPhoto("astronaut.png");
    const vp8 = ivfFrames(await encodePhotoVp8(photo, { width: 320, height: 240, frames: 2 }));
    const packetizer = new Vp8Packetizer();
    vp8.forEach((frame, i) => {
      for (const packet of packetizer.packetize(frame, i * 9000)) camera.push(packet);
    });
    hub.request({ type: "frame_request", request: "g2", device: "hall", max_age_ms: 1000, ts: 1 });
    await until(() => out.sent.length === 2, "the grabbed image");
    const grabbed = out.sent[1];
    assert.ok(grabbed.type === "image", JSON.stringify(grabbed));
    assert.equal(grabbed.reason, "grab");
    assert.equal(grabbed.request, "g2");
    assert.equal(grabbed.box, undefined);
    const meta = await sharp(grabbed.jpeg).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ["jpeg", 320, 240]);
    assert.equal(hub.stats.grabsAnswered, 1);
  } finally {
    remove();
    camera.close();
  }
  assert.deepEqual(hub.devices(), []);
});

Deno.test("motion frames: one encode in flight per camera, drops counted when the link is down", async () => {
  const out = link(false);
  const hub = new CameraHub({ link: out });
  const width = 32, height = 16;
  const frame = {
    width,
    height,
    i420: new Uint8Array(width * height * 1.5).fill(128),
    capturedAt: 5,
    rtpTimestamp: 0,
    box: { x: 30.4, y: -1, width: 10, height: 4.6 },
    changedFraction: 0.12345,
  };
  hub.motion("hall", frame);
  hub.motion("hall", frame); // still encoding the first: dropped
  await until(() => out.sent.length === 1, "the motion image");
  const sent = out.sent[0];
  assert.ok(sent.type === "image");
  assert.deepEqual(sent.box, [30, 0, 2, 5], "clamped inside the frame");
  assert.equal(sent.changed, 0.123);
  assert.equal(sent.capture_ts, 5);
  assert.equal(hub.stats.motionDropped, 2); // one busy, one not sent
  assert.equal(hub.stats.motionSent, 0);
});
