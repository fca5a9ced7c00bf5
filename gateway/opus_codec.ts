/**
 * Opus for the WebRTC audio track (spec 5.5): 48 kHz mono, 20 ms frames, ~32 kbps, through
 * npm:opusscript (WASM libopus). werift carries RTP only, so encoding, decoding and packet-loss
 * concealment are ours.
 *
 * opusscript wants the int16 samples as *bytes* (a Uint8Array view): an Int16Array silently
 * produces garbage (ENVIRONMENT.md). Both classes keep one preallocated PCM buffer, so the
 * per-frame path allocates only what opusscript itself returns.
 *
 * @example
 * ```ts
 * const encoder = new OpusEncoder();
 * const decoder = new OpusDecoder();
 * const packet = encoder.encode(new Float32Array(OPUS_FRAME_SAMPLES));
 * const samples = decoder.decode(packet); // 960 floats, a view valid until the next call
 * ```
 */
import OpusScript from "opusscript";
import { float32ToPcm, pcmToFloat32 } from "../shared/audio.ts";

/** Opus in WebRTC always runs its RTP clock at 48 kHz (RFC 7587). */
export const OPUS_RATE = 48000;
/** 20 ms frames: the WebRTC default ptime and the spec's frame_size (5.5). */
export const OPUS_FRAME_MS = 20;
/** Samples in one 20 ms frame at 48 kHz. */
export const OPUS_FRAME_SAMPLES = (OPUS_RATE * OPUS_FRAME_MS) / 1000;
/** Spec 5.5: 32 kbps is transparent for speech and cheap on WiFi. */
export const OPUS_BITRATE = 32000;
/** Longest frame libopus decodes (120 ms at 48 kHz); opusscript's PLC gives 60 ms per call. */
const MAX_DECODED_SAMPLES = 5760;
/** opusscript's CTL numbers (opus_defines.h). */
const OPUS_SET_COMPLEXITY = 4010;
/** Complexity 5 of 10: half the encode cost of 10 with no audible difference for speech. */
const ENCODER_COMPLEXITY = 5;

/** A problem with an Opus packet or frame, naming the field and value. */
export class OpusCodecError extends Error {
  override name = "OpusCodecError";
  constructor(readonly field: string, readonly value: unknown, message: string) {
    super(message);
  }
}

/** Encodes 20 ms mono 48 kHz frames to Opus packets. */
export class OpusEncoder {
  #opus: OpusScript;
  #pcm = new Uint8Array(OPUS_FRAME_SAMPLES * 2);

  constructor(options: { bitrate?: number } = {}) {
    // AUDIO (CELT) rather than VOIP (SILK/hybrid): at 32 kbps it is ~2.5× cheaper to encode
    // here (0.07 vs 0.17 ms per frame at complexity 5) and keeps the waveform closer.
    this.#opus = new OpusScript(OPUS_RATE, 1, OpusScript.Application.AUDIO);
    this.#opus.setBitrate(options.bitrate ?? OPUS_BITRATE);
    this.#opus.encoderCTL(OPUS_SET_COMPLEXITY, ENCODER_COMPLEXITY);
  }

  /** Encodes exactly {@link OPUS_FRAME_SAMPLES} samples; returns a new packet. */
  encode(frame: Float32Array): Uint8Array {
    if (frame.length !== OPUS_FRAME_SAMPLES) {
      throw new OpusCodecError(
        "frame",
        frame.length,
        `frame has ${frame.length} samples, expected ${OPUS_FRAME_SAMPLES} (20 ms at 48 kHz)`,
      );
    }
    float32ToPcm(frame, this.#pcm);
    // deno-lint-ignore no-explicit-any
    return this.#opus.encode(this.#pcm as any, OPUS_FRAME_SAMPLES);
  }

  /** Frees the WASM encoder. */
  close(): void {
    this.#opus.delete();
  }
}

/** Decodes Opus packets and conceals lost ones. */
export class OpusDecoder {
  #opus: OpusScript;
  #out = new Float32Array(MAX_DECODED_SAMPLES);
  #empty = new Uint8Array(0);
  /** Samples per frame seen last; concealment produces this much. */
  #frameSamples = OPUS_FRAME_SAMPLES;
  /** Concealed audio not played yet (see {@link conceal}); #concealedAt..#concealedEnd in #plc. */
  #plc = new Float32Array(MAX_DECODED_SAMPLES);
  #concealedAt = 0;
  #concealedEnd = 0;

  constructor() {
    this.#opus = new OpusScript(OPUS_RATE, 1, OpusScript.Application.VOIP);
  }

  /**
   * Decodes one packet; returns a view valid until the next call. Throws
   * {@link OpusCodecError} when the payload is not Opus (the caller conceals instead).
   */
  decode(packet: Uint8Array): Float32Array {
    if (packet.length === 0) return this.conceal();
    let pcm: Uint8Array;
    try {
      // deno-lint-ignore no-explicit-any
      pcm = this.#opus.decode(packet as any);
    } catch (error) {
      throw new OpusCodecError(
        "packet",
        packet.length,
        `Opus packet of ${packet.length} bytes does not decode: ${(error as Error).message}`,
      );
    }
    // A real packet ends the loss: concealment still buffered would play out of time.
    this.#concealedAt = this.#concealedEnd = 0;
    const samples = pcmToFloat32(pcm, this.#out);
    if (samples.length > 0) this.#frameSamples = samples.length;
    return samples;
  }

  /**
   * Opus packet-loss concealment for one missing frame. opusscript's decoder always conceals its
   * maximum frame (60 ms) per call and advances its own timeline by that much, so one call serves
   * up to three consecutive lost 20 ms frames: the concealment fades at libopus's intended pace
   * and costs a third of the calls.
   */
  conceal(): Float32Array {
    if (this.#concealedEnd - this.#concealedAt < this.#frameSamples) {
      // deno-lint-ignore no-explicit-any
      const pcm: Uint8Array = this.#opus.decode(this.#empty as any);
      const samples = pcmToFloat32(pcm, this.#plc);
      this.#concealedAt = 0;
      this.#concealedEnd = samples.length;
    }
    const start = this.#concealedAt;
    const end = Math.min(this.#concealedEnd, start + this.#frameSamples);
    this.#concealedAt = end;
    this.#out.set(this.#plc.subarray(start, end));
    return this.#out.subarray(0, end - start);
  }

  /** Frees the WASM decoder. */
  close(): void {
    this.#opus.delete();
  }
}
