import assert from "node:assert/strict";
import {
  encodeV2,
  FrameDecoder,
  type ImageMessage,
  type V2Message,
} from "../shared/frame_codec.ts";
import { CameraFrames, FrameRequestError, MAX_OUTSTANDING_REQUESTS } from "./camera_frames.ts";

const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xd9]);

function image(device: string, fields: Partial<ImageMessage> = {}): ImageMessage {
  return {
    type: "image",
    device,
    reason: "motion",
    capture_ts: 1,
    width: 640,
    height: 480,
    box: [0, 0, 10, 10],
    changed: 0.1,
    format: "jpeg",
    ts: 1,
    jpeg: JPEG,
    ...fields,
  };
}

/** What the server wrote to a gateway, through the real codec both ways. */
function wire() {
  const sent: V2Message[] = [];
  const decoder = new FrameDecoder();
  decoder.push(encodeV2({ type: "hello", version: 2, role: "server", capabilities: [], ts: 0 }));
  return {
    sent,
    send: (message: V2Message) => {
      for (const item of decoder.push(encodeV2(message))) {
        if (item.version === 2) sent.push(item.message);
      }
    },
  };
}

Deno.test("motion frames are analysed one at a time per device; at most 2 wait, newest kept", async () => {
  const analysed: string[] = [];
  const gates: (() => void)[] = [];
  const frames = new CameraFrames({
    analyse: (device, _jpeg, frame) => {
      analysed.push(`${device}@${frame.source}`);
      return new Promise<void>((resolve) => gates.push(resolve));
    },
  });
  const channel = frames.open("gw", wire().send);
  for (let i = 0; i < 5; i++) channel.receive(image("hall", { capture_ts: i }));
  channel.receive(image("porch"));
  assert.deepEqual(analysed, ["hall@webrtc_stream:hall", "porch@webrtc_stream:porch"]);
  assert.equal(frames.stats.received, 6);
  assert.equal(frames.stats.dropped, 2); // frames 1 and 2 replaced by 3 and 4
  while (gates.length > 0) {
    gates.shift()!();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert.equal(analysed.length, 4);
  assert.equal(frames.stats.analysed, 4);
});

Deno.test("a live grab sends frame_request and resolves with the matching image", async () => {
  const frames = new CameraFrames({ analyse: () => Promise.resolve() });
  const out = wire();
  const channel = frames.open("gw", out.send);
  const live = frames.liveFrame(["hall"]);
  assert.equal(out.sent.length, 1);
  const request = out.sent[0];
  assert.ok(request.type === "frame_request");
  assert.equal(request.device, "hall");
  // An image for another request, or of another device, answers nothing: an error names it.
  channel.receive(image("hall", { reason: "grab", request: "g99", box: undefined }));
  assert.ok(out.sent[1].type === "error" && out.sent[1].request === "g99");
  channel.receive(image("hall", { reason: "grab", request: request.request, box: undefined }));
  assert.deepEqual((await live)?.jpeg, JPEG);
});

Deno.test("a gateway error, a timeout or a closed connection fail that request only", async () => {
  const frames = new CameraFrames({ analyse: () => Promise.resolve(), grabTimeoutMs: 50 });
  const out = wire();
  const channel = frames.open("gw", out.send);
  const first = channel.request("hall");
  const request = out.sent[0];
  assert.ok(request.type === "frame_request");
  channel.receive({
    type: "error",
    request: request.request,
    code: "no_video",
    message: "device hall has no video track",
    ts: 1,
  });
  await assert.rejects(first, (e) => e instanceof FrameRequestError && e.code === "no_video");
  await assert.rejects(channel.request("hall"), (e: FrameRequestError) => e.code === "timeout");
  const waiting = Array.from({ length: MAX_OUTSTANDING_REQUESTS }, () => channel.request("hall"));
  await assert.rejects(channel.request("hall"), (e: FrameRequestError) => e.code === "busy");
  channel.close();
  for (const w of waiting) await assert.rejects(w, (e: FrameRequestError) => e.code === "closed");
  // No channel left: no live frame, and the caller falls back to a snapshot.
  assert.equal(await frames.liveFrame(["hall"]), undefined);
});
