/**
 * The idle gate of a device's audio input (audio_input.ts, gateway/README.md "Costs and
 * budgets"): while nobody speaks, a 20 ms frame below {@link IDLE_GATE_RMS} or within 6 dB of the
 * room's noise floor ({@link NoiseFloor}) skips resampling and the VAD model and counts as
 * silence. Whether anybody speaks is the caller's to say; this module only judges the level.
 *
 * @example
 * ```ts
 * const gate = new IdleGate();
 * if (gate.quiet(frame48k) && vadState === "quiet") skipTheVad();
 * ```
 */
import { rms } from "../shared/audio.ts";
import { OPUS_FRAME_MS } from "../shared/media/opus_codec.ts";

/**
 * Idle gate: while nobody speaks, a 20 ms frame quieter than this RMS (-46 dBFS, far below
 * speech at a few metres, around -30..-20 dBFS) skips resampling and the VAD model entirely and
 * counts as silence. This is what makes a listening device in a quiet room almost free.
 */
export const IDLE_GATE_RMS = 0.005;
/**
 * The gate also follows the room: a frame less than 6 dB above its noise floor (the quietest
 * frames of the last {@link NOISE_FLOOR_SECONDS}) is gated too, so a fan or a fridge above
 * -46 dBFS does not keep Silero running on every window. Speech is 10-30 dB above a room's noise.
 */
export const NOISE_GATE_RATIO = 2;
/** Minimum statistics over 2 s: longer than any word, so a pause in speech always falls in it. */
export const NOISE_FLOOR_SECONDS = 2;
/** The floor is taken as the minimum of 200 ms blocks (10 frames), ten of them for 2 s. */
const NOISE_FLOOR_BLOCK_FRAMES = 10;
/** Until a stream has this many frames (1 s) of history its floor is unknown: no adaptive gate. */
const NOISE_FLOOR_MIN_FRAMES = 50;

/**
 * A room's noise floor by minimum statistics: the lowest frame RMS of the last
 * {@link NOISE_FLOOR_SECONDS}, in O(1) per frame (blocks of frames, each keeping its minimum).
 */
export class NoiseFloor {
  #blocks = new Float64Array(
    (NOISE_FLOOR_SECONDS * 1000) / OPUS_FRAME_MS / NOISE_FLOOR_BLOCK_FRAMES,
  ).fill(Infinity);
  #index = 0;
  #current = Infinity;
  #inBlock = 0;
  #frames = 0;

  /** Adds one frame's RMS; returns the floor, or 0 while there is under a second of history. */
  update(rms: number): number {
    this.#frames++;
    if (rms < this.#current) this.#current = rms;
    if (++this.#inBlock === NOISE_FLOOR_BLOCK_FRAMES) {
      this.#blocks[this.#index] = this.#current;
      this.#index = (this.#index + 1) % this.#blocks.length;
      this.#current = Infinity;
      this.#inBlock = 0;
    }
    if (this.#frames < NOISE_FLOOR_MIN_FRAMES) return 0;
    let floor = this.#current;
    for (const block of this.#blocks) if (block < floor) floor = block;
    return floor;
  }
}

/** See the module doc: the level half of the idle gate, with the room's noise floor. */
export class IdleGate {
  #floor = new NoiseFloor();

  /**
   * Adds the frame's RMS to the noise floor (every frame, quiet or not); true when it is below
   * {@link IDLE_GATE_RMS} or less than {@link NOISE_GATE_RATIO} × the floor.
   */
  quiet(frame: Float32Array): boolean {
    const level = rms(frame);
    const floor = this.#floor.update(level);
    return level < Math.max(IDLE_GATE_RMS, floor * NOISE_GATE_RATIO);
  }
}
