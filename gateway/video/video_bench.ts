/**
 * What one camera costs the gateway (issue 13 target: ≤ 3 % of one core per camera at 5 fps):
 * per-frame decode, thumbnail and motion times on real VP8 (libvpx-encoded by ffmpeg, 640×480,
 * 500 kbit/s to 1.5 Mbit/s like a browser), for a still noisy scene (a typical indoor camera)
 * and a panning one (every block changes: the decoder's worst case), then the whole pipeline's
 * CPU time per second of video at 5 and 15 fps. Medians of several rounds; nothing here is
 * asserted.
 *
 * Run: `deno run -A gateway/video/video_bench.ts`
 */

import process from "node:process";
import { CameraPipeline } from "./camera_pipeline.ts";
import { downscaleLuma, thumbnailSize } from "./luma_thumbnail.ts";
import { MotionDetector } from "./motion_detector.ts";
import { encodeVp8, ivfFrames, testPhoto } from "./testing.ts";
import { loadVideoConfig } from "./video_config.ts";
import { Vp8Packetizer } from "../../shared/video/vp8_packetizer.ts";
import { VpxDecoder } from "./vpx_decoder.ts";

const ROUNDS = 5;
const SECONDS = 6;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function stream(fps: number, filter: string, bitrate: string): Promise<Uint8Array[]> {
  const photo = await testPhoto("coffee.png");
  return ivfFrames(
    await encodeVp8({
      inputs: ["-loop", "1", "-framerate", String(fps), "-i", photo],
      filter: `[0:v]${filter}[out]`,
      frames: fps * SECONDS,
      fps,
      bitrate,
      keyframeInterval: fps * 10,
    }),
  );
}

function perFrame(frames: Uint8Array[]) {
  const decode: number[] = [];
  const thumb: number[] = [];
  const motion: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const decoder = new VpxDecoder();
    const detector = new MotionDetector();
    const out = new Uint8Array(160 * 120);
    let d = 0, t = 0, m = 0;
    for (const vp8 of frames) {
      const t0 = performance.now();
      const picture = decoder.decode(vp8)!;
      const t1 = performance.now();
      const size = thumbnailSize(picture.width, picture.height);
      downscaleLuma(picture.y, out, { ...size, rowStep: 2 });
      const t2 = performance.now();
      detector.detect({ data: out, ...size }, picture);
      const t3 = performance.now();
      d += t1 - t0;
      t += t2 - t1;
      m += t3 - t2;
    }
    decoder.close();
    decode.push(d / frames.length);
    thumb.push(t / frames.length);
    motion.push(m / frames.length);
  }
  return { decode: median(decode), thumbnail: median(thumb), motion: median(motion) };
}

/** CPU ms (user + system) the whole pipeline spends per second of video. */
function pipelineCpu(frames: Uint8Array[], fps: number): number {
  const results: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const packetizer = new Vp8Packetizer();
    const packets = frames.map((f, i) => packetizer.packetize(f, Math.round(i * 90_000 / fps)));
    let now = 0;
    const pipeline = new CameraPipeline(loadVideoConfig({}), {
      onKeyframeRequest: () => {},
      onMotionFrame: () => {},
    }, { now: () => now });
    const before = process.cpuUsage();
    for (const framePackets of packets) {
      for (const packet of framePackets) pipeline.push(packet);
      now += 1000 / fps;
    }
    const used = process.cpuUsage(before);
    pipeline.close();
    results.push((used.user + used.system) / 1000 / SECONDS);
  }
  return median(results);
}

if (import.meta.main) {
  const still = "scale=640:480,noise=alls=8:allf=t";
  const panning = "scale=800:600,crop=640:480:x='80+70*sin(t)':y='60+50*cos(t)'";
  const scenes: [string, string, string][] = [
    ["still + sensor noise, 500 kbit/s", still, "500k"],
    ["panning, 500 kbit/s", panning, "500k"],
    ["panning, 1.5 Mbit/s", panning, "1500k"],
  ];
  console.log("640x480 VP8; ms per frame (median of %d rounds)", ROUNDS);
  for (const [name, filter, bitrate] of scenes) {
    const frames5 = await stream(5, filter, bitrate);
    const frames15 = await stream(15, filter, bitrate);
    const costs = perFrame(frames15);
    const cpu5 = pipelineCpu(frames5, 5);
    const cpu15 = pipelineCpu(frames15, 15);
    console.log(
      `${name}: decode ${costs.decode.toFixed(2)} ms, thumbnail ${
        costs.thumbnail.toFixed(3)
      } ms, motion ${costs.motion.toFixed(3)} ms; pipeline CPU ${(cpu5 / 10).toFixed(2)} % ` +
        `of a core at 5 fps, ${(cpu15 / 10).toFixed(2)} % at 15 fps (motion at 5 fps)`,
    );
  }
}
