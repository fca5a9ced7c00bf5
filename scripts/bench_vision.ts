/**
 * Vision benchmark (issue 12): per detector, detection time per image p50/p95 and the process's
 * resident memory with the model loaded; OCR time and memory; and the server thread's event-loop
 * lag while a camera keeps the vision worker busy, beside the same without. Each model is
 * measured in a child process of its own so RSS is the model's, not the sum. Writes
 * bench/vision.json.
 *
 * Frames: a 1280×720 JPEG (the snapshot size, made from skimage's astronaut.png) and the
 * four skimage photos. YOLO is a YOLOv8n-shaped model with random weights
 * (scripts/lib/yolo_model.ts): its cost is a real YOLOv8n's, its detections are noise.
 *
 * `deno run -A scripts/bench_vision.ts [--runs N]`
 */
import { join } from "node:path";
import sharp from "sharp";
import { createAnalyzer } from "../server/vision/analyzer.ts";
import { createVision } from "../server/vision/mod.ts";
import { median, percentile, round } from "./bench_stats.ts";
import { randomYoloModel } from "./lib/yolo_model.ts";
import { ensureTestPhotos, type Photo, photoPath } from "./test_photos.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const DEFAULT_RUNS = 20;
/** Runs before measuring: the first allocate TF.js/onnxruntime buffers and JIT the WASM. */
const WARMUP_RUNS = 2;
/** The snapshot size. */
const SNAPSHOT: [number, number] = [1280, 720];
const PHOTOS: Photo[] = ["astronaut", "chelsea", "coffee", "motorcycle_left"];
/** The event-loop probe's period: a voice frame is 20 ms; 5 ms resolves a stall well below it. */
const TICK_MS = 5;
/** How long the lag probe watches each condition. */
const LAG_WINDOW_MS = 4000;

const MB = 1024 * 1024;
const rssMb = () => round(Deno.memoryUsage().rss / MB, 0);

async function frames(): Promise<Uint8Array[]> {
  await ensureTestPhotos(ROOT, true);
  const snapshot = await sharp(photoPath("astronaut"))
    .resize(SNAPSHOT[0], SNAPSHOT[1], { fit: "fill" }).jpeg({ quality: 85 }).toBuffer();
  const photos = await Promise.all(PHOTOS.map((name) => Deno.readFile(photoPath(name))));
  return [new Uint8Array(snapshot), ...photos];
}

/** Child mode: measure one model in this process and print one JSON row. */
async function measure(model: string, runs: number, yoloPath?: string): Promise<void> {
  const images = await frames();
  const rssBefore = rssMb();
  if (model === "ocr") {
    const analyzer = await createAnalyzer();
    const page = await Deno.readFile(photoPath("page"));
    const rssDetector = rssMb();
    const times: number[] = [];
    for (let i = 0; i < WARMUP_RUNS + runs; i++) {
      const { timing_ms } = await analyzer.analyze(page, { ocr: true });
      if (i >= WARMUP_RUNS) times.push(timing_ms.ocr ?? NaN);
    }
    console.log(JSON.stringify({
      model: "ocr (PaddleOCR v4, page.png)",
      ocr_p50_ms: median(times),
      ocr_p95_ms: percentile(times, 95),
      rss_ocr_mb: rssMb() - rssDetector,
    }));
    await analyzer.close();
    return;
  }
  const analyzer = await createAnalyzer(
    model === "yolo" ? { detector: "yolo", yoloModelPath: yoloPath } : {},
  );
  const rssLoaded = rssMb();
  const detect: number[] = [];
  const decode: number[] = [];
  for (let i = 0; i < WARMUP_RUNS + runs; i++) {
    const { timing_ms } = await analyzer.analyze(images[i % images.length]);
    if (i < WARMUP_RUNS) continue;
    detect.push(timing_ms.detect);
    decode.push(timing_ms.decode);
  }
  console.log(JSON.stringify({
    model: analyzer.detectorName,
    runs,
    detect_p50_ms: median(detect),
    detect_p95_ms: percentile(detect, 95),
    decode_letterbox_p50_ms: median(decode),
    rss_before_mb: rssBefore,
    rss_loaded_mb: rssLoaded,
    rss_after_runs_mb: rssMb(),
  }));
  await analyzer.close();
}

/** The server thread's timer lag (ms late per tick) over the lag window. */
async function eventLoopLag(whileRunning?: () => Promise<void>): Promise<number[]> {
  const lags: number[] = [];
  let expected = performance.now() + TICK_MS;
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - expected));
    expected = now + TICK_MS;
  }, TICK_MS);
  let stop = false;
  const load = (async () => {
    while (!stop && whileRunning) await whileRunning();
  })();
  await new Promise((resolve) => setTimeout(resolve, LAG_WINDOW_MS));
  stop = true;
  await load;
  clearInterval(timer);
  return lags;
}

async function child(args: string[]): Promise<Record<string, unknown>> {
  const { success, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--child", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`bench child ${args} failed: ${new TextDecoder().decode(stderr)}`);
  return JSON.parse(new TextDecoder().decode(stdout).trim().split("\n").at(-1)!);
}

if (import.meta.main) {
  const runsIndex = Deno.args.indexOf("--runs");
  const runs = runsIndex >= 0 ? Number(Deno.args[runsIndex + 1]) : DEFAULT_RUNS;
  if (Deno.args[0] === "--child") {
    await measure(Deno.args[1], runs, Deno.args[2]);
    Deno.exit(0);
  }
  const dir = await Deno.makeTempDir({ prefix: "naila-bench-vision-" });
  try {
    const yoloPath = join(dir, "yolov8n-random.onnx");
    await Deno.writeFile(yoloPath, randomYoloModel());
    const rows = [
      await child(["centernet", "", "--runs", String(runs)]),
      await child(["yolo", yoloPath, "--runs", String(runs)]),
      await child(["ocr", "", "--runs", String(Math.max(3, Math.floor(runs / 4)))]),
    ];
    const quiet = await eventLoopLag();
    const vision = await createVision();
    const [snapshot] = await frames();
    let analysed = 0;
    const busy = await eventLoopLag(async () => {
      await vision.analyze(snapshot, { source: "bench" });
      analysed++;
    });
    await vision.close();
    const lag = {
      model: "server event loop (5 ms timer)",
      idle_lag_p50_ms: round(median(quiet), 2),
      idle_lag_max_ms: round(Math.max(...quiet), 1),
      camera_lag_p50_ms: round(median(busy), 2),
      camera_lag_max_ms: round(Math.max(...busy), 1),
      frames_analysed_while_probing: analysed,
    };
    rows.push(lag);
    for (const row of rows) console.log(JSON.stringify(row));
    await Deno.mkdir(join(ROOT, "bench"), { recursive: true });
    await Deno.writeTextFile(
      join(ROOT, "bench", "vision.json"),
      JSON.stringify({ date: new Date().toISOString(), runs, rows }, null, 2) + "\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
