/**
 * Camera frames over several AI servers (gateway/ai_servers.ts, docs/video.md): a frame request's
 * answer goes back to the server that asked, a motion frame to one server only. Real audio
 * sockets with their camera channels (server/camera_frames.ts), real codec, loopback TCP.
 */
import assert from "node:assert/strict";
import { delay } from "../shared/async.ts";
import type { ImageMessage } from "../shared/frame_codec.ts";
import { createLogger } from "../shared/log.ts";
import { AiServers } from "../gateway/ai_servers.ts";
import { ScriptedPipeline, withServer } from "../server/audio_socket_testing.ts";
import { CameraFrames } from "../server/camera_frames.ts";

const log = createLogger("test.ai_servers_camera", { level: "error" });
/** SOI, EOI: nothing on either side looks inside the JPEG. */
const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xd9]);

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; !check(); i++) {
    if (i > 2000) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

function image(fields: Partial<ImageMessage>): ImageMessage {
  return {
    type: "image",
    device: "hall",
    reason: "motion",
    capture_ts: Date.now(),
    width: 640,
    height: 480,
    format: "jpeg",
    ts: Date.now(),
    jpeg: JPEG,
    ...fields,
  };
}

Deno.test("AiServers: a grab answers the server that asked; a motion frame reaches one server", async () => {
  const analysed: string[] = [];
  const cameras = ["a", "b"].map((name) =>
    new CameraFrames({
      analyse: (device) => Promise.resolve(void analysed.push(`${name}:${device}`)),
      log,
    })
  );
  await withServer(new ScriptedPipeline(), (a) =>
    withServer(new ScriptedPipeline(), async (b) => {
      const servers = new AiServers({
        servers: [{ host: "127.0.0.1", port: a.port }, { host: "127.0.0.1", port: b.port }],
        protocol: "v2",
        log,
      });
      const requests: string[] = [];
      servers.onFrameRequest((request) => {
        requests.push(request.request);
        servers.sendCamera(
          image({ device: request.device, reason: "grab", request: request.request }),
        );
      });
      try {
        // Nothing is sent before a server is live.
        assert.equal(servers.sendCamera(image({})), false);
        servers.start();
        await until(() => servers.servers.every((s) => s.live), "both servers live");
        assert.ok(servers.serverCan("image"));
        // Server b asks: its own request is answered, over its own connection.
        const grabbed = await cameras[1].liveFrame(["hall"]);
        assert.deepEqual(grabbed?.jpeg, JPEG);
        assert.equal(requests.length, 1);
        // A motion frame goes to one server (the first live one), so one alert, not two.
        assert.equal(servers.sendCamera(image({ box: [0, 0, 10, 10], changed: 0.1 })), true);
        await until(() => analysed.length === 1, "the motion frame analysed");
        await delay(100);
        assert.deepEqual(analysed, ["a:hall"]);
      } finally {
        servers.close();
      }
    }, { cameras: cameras[1] }), { cameras: cameras[0] });
});
