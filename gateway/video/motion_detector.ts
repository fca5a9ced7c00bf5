/**
 * Cheap motion detection on grey thumbnails, after Frigate's motion detector (downscaled grey
 * frame, blur, difference against a running-average background, a per-pixel threshold and a
 * minimum area): spec 10.2/10.3, "motion detection runs on the Pi (cheap)".
 *
 * Per frame, on a 160×120 thumbnail (gateway/video/luma_thumbnail.ts):
 * 1. 3×3 box blur (on top of the downscale's box average): codec noise is mostly gone.
 * 2. Gain normalization: the frame is scaled by background mean / frame mean, so a global
 *    brightness change (auto exposure, a cloud, a lamp dimming: ~8 %) is not a difference.
 * 3. A pixel changed when |normalized − background| > `pixelThreshold` (0..255 grey levels) and
 *    at least {@link MIN_CHANGED_NEIGHBOURS} of its 4 neighbours did too (isolated speckles of
 *    noise are dropped; an object is a blob).
 * 4. Motion when the changed fraction ≥ `minAreaFraction` (VideoConfig's motion threshold); the
 *    box bounds the changed pixels, in original-frame pixels.
 * 4b. Of the changed pixels, those that also differ from the previous analysed frame are fresh
 *    change (`freshFraction`): something moved just now, as opposed to a change the background
 *    has not absorbed yet (a parked car, or the ghost a person leaves after coming and going
 *    often enough to tint the background). Callers use it to tell new motion from lasting.
 * 5. The background adapts: `background += alpha × (frame − background)` per frame, so a parked
 *    car stops being motion after ~3/alpha frames. A change over `sceneChangeFraction` of the
 *    frame (lights switched, camera moved) is not motion: the background restarts from it.
 *
 * @example
 * ```ts
 * const motion = new MotionDetector();
 * const result = motion.detect({ data: thumbnail, width: 160, height: 120 }, { width: 640, height: 480 });
 * if (result.motion) forward(frame, result.box);
 * ```
 */

/** Tuning of {@link MotionDetector} (VideoConfig, docs/video.md). */
export interface MotionOptions {
  /** Grey-level difference (0..255) that marks a pixel changed. */
  pixelThreshold: number;
  /** Changed fraction of the frame (0..1) that is motion: VIDEO_MOTION_THRESHOLD. */
  minAreaFraction: number;
  /** Background adaptation weight per analysed frame (0..1). */
  backgroundAlpha: number;
  /** Changed fraction above which the whole scene changed: reset, not motion. */
  sceneChangeFraction: number;
}

/** Defaults, measured on real VP8 frames (gateway/video/motion_detector_test.ts, docs/video.md):
 * re-encoding, sensor noise and an 8 % brightness change leave 0 % changed at any threshold
 * ≥ 5; a 200×200 person pasted on a 640×480 scene changes ~12 %. */
export const DEFAULT_MOTION_OPTIONS: Readonly<MotionOptions> = Object.freeze({
  /** Frigate's default threshold is 30 on unnormalized frames; with gain normalization noise
   * and lighting stay at 0 changed pixels down to 5, so 15 keeps a 3× margin and still sees
   * low-contrast objects. */
  pixelThreshold: 15,
  /** 0.5 % of 160×120 = 96 pixels: a person at the far end of a room is a few hundred. */
  minAreaFraction: 0.005,
  /** Frigate's frame_alpha is 0.01 per frame at 5 fps: a still change is absorbed in ~1 min. */
  backgroundAlpha: 0.01,
  /** Frigate's lightning threshold: 80 % of the frame changing at once is the scene, not an
   * object. */
  sceneChangeFraction: 0.8,
});

/** A changed pixel needs this many changed 4-neighbours: a blob, not a speckle. */
export const MIN_CHANGED_NEIGHBOURS = 2;
/** Gain normalization is bounded: a frame 2× darker or brighter is a scene change, not lighting
 * drift to compensate. */
const MAX_GAIN = 2;
/** A near-black frame (mean below 1 grey level) has no meaningful gain. */
const MIN_MEAN = 1;

/** A grey thumbnail, row-major, no padding. */
export interface GreyImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** A rectangle in original-frame pixels. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** What one frame showed. */
export interface MotionResult {
  motion: boolean;
  /** Fraction of thumbnail pixels that changed (0..1). */
  changedFraction: number;
  /** Fraction of thumbnail pixels changed against the background and against the previous
   * analysed frame too (0..1; 0 after a reset). */
  freshFraction: number;
  /** Bounds of the changed pixels in original-frame pixels, when anything changed. */
  box?: Box;
  /** The background was (re)started from this frame: first frame, new size, or scene change. */
  reset: boolean;
}

/** One camera's motion state. */
export class MotionDetector {
  readonly options: Readonly<MotionOptions>;
  #width = 0;
  #height = 0;
  #background = new Float32Array(0);
  #backgroundMean = 0;
  #blurred = new Float32Array(0);
  /** The previous analysed frame, blurred, and its mean. */
  #previous = new Float32Array(0);
  #previousMean = 0;
  #rows = new Uint16Array(0);
  #changed = new Uint8Array(0);

  constructor(options: Partial<MotionOptions> = {}) {
    this.options = { ...DEFAULT_MOTION_OPTIONS, ...options };
    const { pixelThreshold, minAreaFraction, backgroundAlpha, sceneChangeFraction } = this.options;
    if (!(pixelThreshold > 0 && pixelThreshold < 255)) {
      throw new RangeError(`pixelThreshold ${pixelThreshold} is not in 0..255 (exclusive)`);
    }
    if (!(minAreaFraction > 0 && minAreaFraction <= 1)) {
      throw new RangeError(`minAreaFraction ${minAreaFraction} is not in (0, 1]`);
    }
    if (!(backgroundAlpha > 0 && backgroundAlpha <= 1)) {
      throw new RangeError(`backgroundAlpha ${backgroundAlpha} is not in (0, 1]`);
    }
    if (!(sceneChangeFraction > minAreaFraction && sceneChangeFraction <= 1)) {
      throw new RangeError(
        `sceneChangeFraction ${sceneChangeFraction} is not in (minAreaFraction, 1]`,
      );
    }
  }

  /** Forgets the background; the next frame starts it again. */
  reset(): void {
    this.#width = 0;
    this.#height = 0;
  }

  /**
   * Compares one thumbnail with the background and adapts the background. `frame` is the
   * original frame size the box is scaled to. Throws RangeError when `image.data` is shorter
   * than width × height.
   */
  detect(image: GreyImage, frame: { width: number; height: number }): MotionResult {
    const { width, height } = image;
    const n = width * height;
    if (!(width > 0 && height > 0) || image.data.length < n) {
      throw new RangeError(
        `grey image ${width}x${height} needs ${n} bytes, has ${image.data.length}`,
      );
    }
    if (width !== this.#width || height !== this.#height) this.#resize(width, height);
    const mean = this.#blur(image.data);
    if (this.#backgroundMean === 0) return this.#restart(mean);

    const blurred = this.#blurred;
    const background = this.#background;
    const changed = this.#changed;
    const threshold = this.options.pixelThreshold;
    const gain = this.#gain(mean);
    if (gain > MAX_GAIN || gain < 1 / MAX_GAIN) return this.#restart(mean);
    for (let i = 0; i < n; i++) {
      changed[i] = Math.abs(blurred[i] * gain - background[i]) > threshold ? 1 : 0;
    }
    const { count, box } = this.#blobs(width, height);
    const changedFraction = count / n;
    if (changedFraction > this.options.sceneChangeFraction) return this.#restart(mean);
    const freshFraction = this.#fresh(mean) / n;

    const alpha = this.options.backgroundAlpha;
    for (let i = 0; i < n; i++) background[i] += alpha * (blurred[i] - background[i]);
    this.#backgroundMean += alpha * (mean - this.#backgroundMean);
    return {
      motion: changedFraction >= this.options.minAreaFraction,
      changedFraction,
      freshFraction,
      box: box && scaleBox(box, width, height, frame),
      reset: false,
    };
  }

  /** Counts changed pixels that differ from the previous frame too (gain-normalized to it),
   * then keeps this frame as the previous one. */
  #fresh(mean: number): number {
    const blurred = this.#blurred;
    const previous = this.#previous;
    const changed = this.#changed;
    const threshold = this.options.pixelThreshold;
    const gain = mean < MIN_MEAN ? 1 : this.#previousMean / mean;
    let count = 0;
    for (let i = 0; i < blurred.length; i++) {
      if (changed[i] !== 0 && Math.abs(blurred[i] * gain - previous[i]) > threshold) count++;
    }
    this.#keepPrevious(mean);
    return count;
  }

  #keepPrevious(mean: number): void {
    this.#previous.set(this.#blurred);
    this.#previousMean = mean;
  }

  /**
   * Background mean / frame mean, estimated twice: over the whole frame, then over only the
   * pixels that frame-wide gain leaves unchanged, so a large bright or dark object entering
   * does not shift the whole frame's normalization (measured: without the second pass, a
   * 200×200 person pasted on 640×480 turned 23 % of a threshold-5 frame into "change").
   */
  #gain(mean: number): number {
    if (mean < MIN_MEAN) return 1;
    const first = this.#backgroundMean / mean;
    const blurred = this.#blurred;
    const background = this.#background;
    const threshold = this.options.pixelThreshold;
    let frameSum = 0;
    let backgroundSum = 0;
    for (let i = 0; i < blurred.length; i++) {
      const b = blurred[i];
      if (Math.abs(b * first - background[i]) <= threshold) {
        frameSum += b;
        backgroundSum += background[i];
      }
    }
    return frameSum < MIN_MEAN ? first : backgroundSum / frameSum;
  }

  #resize(width: number, height: number): void {
    this.#width = width;
    this.#height = height;
    this.#background = new Float32Array(width * height);
    this.#blurred = new Float32Array(width * height);
    this.#rows = new Uint16Array(width * height);
    this.#changed = new Uint8Array(width * height);
    this.#previous = new Float32Array(width * height);
    this.#backgroundMean = 0;
  }

  #restart(mean: number): MotionResult {
    this.#background.set(this.#blurred);
    this.#backgroundMean = Math.max(mean, Number.MIN_VALUE);
    this.#keepPrevious(mean);
    return { motion: false, changedFraction: 0, freshFraction: 0, reset: true };
  }

  /** 3×3 box blur of `data` into #blurred (edges clamp); returns the mean. */
  #blur(data: Uint8Array): number {
    const w = this.#width;
    const h = this.#height;
    const rows = this.#rows; // horizontal 3-sums
    for (let y = 0; y < h; y++) {
      const base = y * w;
      for (let x = 0; x < w; x++) {
        const left = x > 0 ? x - 1 : 0;
        const right = x < w - 1 ? x + 1 : w - 1;
        rows[base + x] = data[base + left] + data[base + x] + data[base + right];
      }
    }
    const out = this.#blurred;
    let total = 0;
    for (let y = 0; y < h; y++) {
      const up = (y > 0 ? y - 1 : 0) * w;
      const base = y * w;
      const down = (y < h - 1 ? y + 1 : h - 1) * w;
      for (let x = 0; x < w; x++) {
        const value = (rows[up + x] + rows[base + x] + rows[down + x]) / 9;
        out[base + x] = value;
        total += value;
      }
    }
    return total / (w * h);
  }

  /** Counts changed pixels with enough changed neighbours; their bounds in thumbnail pixels. */
  #blobs(w: number, h: number): { count: number; box?: Box } {
    const changed = this.#changed;
    let count = 0;
    let minX = w, minY = h, maxX = -1, maxY = -1;
    for (let y = 0; y < h; y++) {
      const base = y * w;
      for (let x = 0; x < w; x++) {
        const i = base + x;
        if (changed[i] === 0) continue;
        const neighbours = (x > 0 ? changed[i - 1] : 0) + (x < w - 1 ? changed[i + 1] : 0) +
          (y > 0 ? changed[i - w] : 0) + (y < h - 1 ? changed[i + w] : 0);
        if (neighbours < MIN_CHANGED_NEIGHBOURS) continue;
        count++;
        if (x < minX) minX = x;
        if (x > maxX) maxX = x;
        if (y < minY) minY = y;
        if (y > maxY) maxY = y;
      }
    }
    if (count === 0) return { count };
    return { count, box: { x: minX, y: minY, width: maxX - minX + 1, height: maxY - minY + 1 } };
  }
}

function scaleBox(
  box: Box,
  width: number,
  height: number,
  frame: { width: number; height: number },
): Box {
  const sx = frame.width / width;
  const sy = frame.height / height;
  const x = Math.floor(box.x * sx);
  const y = Math.floor(box.y * sy);
  return {
    x,
    y,
    width: Math.min(frame.width, Math.ceil((box.x + box.width) * sx)) - x,
    height: Math.min(frame.height, Math.ceil((box.y + box.height) * sy)) - y,
  };
}
