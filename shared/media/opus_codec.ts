/**
 * Opus for the WebRTC audio track (spec 5.5): mono, 20 ms frames, ~32 kbps, through the system's
 * libopus (Debian package libopus0) over Deno's FFI. werift carries RTP only, so encoding,
 * decoding and packet-loss concealment are ours.
 *
 * Why the native library: the real-time audio path runs one encoder and one decoder per device,
 * 50 frames a second each. libopus built for the CPU (SIMD) encodes a frame in about half the
 * time of the WASM build npm:opusscript ships and decodes in about half (issue 14, measured
 * in `scripts/bench_gateway_micro.ts`), takes float samples directly (no int16 round trip),
 * and has no fixed heap to run out of.
 *
 * Rates: the RTP clock of Opus is always 48 kHz (RFC 7587), but libopus encodes from and decodes
 * to 8, 12, 16, 24 or 48 kHz itself. A decoder at 16 kHz hands the VAD and Whisper their rate
 * with no resampler of ours in between.
 *
 * Every per-frame buffer is preallocated; the per-frame path allocates only the encoded packet
 * it returns. Instances are not thread-safe: one per device, used from one thread.
 *
 * @example
 * ```ts
 * const encoder = new OpusEncoder();
 * const decoder = new OpusDecoder({ rate: 16000 });
 * const packet = encoder.encode(new Float32Array(OPUS_FRAME_SAMPLES));
 * const samples = decoder.decode(packet); // 320 floats at 16 kHz, a view valid until the next call
 * ```
 */
import { cString, NativeLibrary } from "../native_library.ts";

/** Opus in WebRTC always runs its RTP clock at 48 kHz (RFC 7587). */
export const OPUS_RATE = 48000;
/** 20 ms frames: the WebRTC default ptime and the spec's frame_size (5.5). */
export const OPUS_FRAME_MS = 20;
/** Samples in one 20 ms frame at 48 kHz. */
export const OPUS_FRAME_SAMPLES = (OPUS_RATE * OPUS_FRAME_MS) / 1000;
/** Spec 5.5: 32 kbps is transparent for speech and cheap on WiFi. */
export const OPUS_BITRATE = 32000;
/** The rates libopus encodes from and decodes to (opus_encoder_create / opus_decoder_create). */
export const OPUS_PCM_RATES = [8000, 12000, 16000, 24000, 48000] as const;
/** One of {@link OPUS_PCM_RATES}, Hz. */
export type OpusPcmRate = typeof OPUS_PCM_RATES[number];

/** Whether libopus encodes from and decodes to `rate` Hz. */
export function isOpusPcmRate(rate: number): rate is OpusPcmRate {
  return (OPUS_PCM_RATES as readonly number[]).includes(rate);
}
/** Longest frame libopus decodes: 120 ms. */
const MAX_FRAME_MS = 120;
/** Largest packet accepted: three 20 ms frames of RFC 6716's 1275 bytes, far above 32 kbps. */
export const MAX_PACKET_BYTES = 1275 * 3;
/** libopus's application and CTL numbers (opus_defines.h). */
const OPUS_APPLICATION_AUDIO = 2049;
const OPUS_SET_BITRATE = 4002;
const OPUS_SET_COMPLEXITY = 4010;
/** Complexity 5 of 10: half the encode cost of 10 with no audible difference for speech. */
const ENCODER_COMPLEXITY = 5;

const SYMBOLS = {
  opus_get_version_string: { parameters: [], result: "pointer" },
  opus_strerror: { parameters: ["i32"], result: "pointer" },
  opus_encoder_create: { parameters: ["i32", "i32", "i32", "buffer"], result: "pointer" },
  opus_encoder_destroy: { parameters: ["pointer"], result: "void" },
  // Variadic in C (request, value); on x86-64 and arm64 Linux an int passes the same way.
  opus_encoder_ctl: { parameters: ["pointer", "i32", "i32"], result: "i32" },
  opus_encode_float: {
    parameters: ["pointer", "buffer", "i32", "buffer", "i32"],
    result: "i32",
  },
  opus_decoder_create: { parameters: ["i32", "i32", "buffer"], result: "pointer" },
  opus_decoder_destroy: { parameters: ["pointer"], result: "void" },
  opus_decode_float: {
    parameters: ["pointer", "buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
  },
} as const;

type Opus = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** libopus could not be loaded (not installed, or no FFI permission). */
export class OpusUnavailableError extends Error {
  override name = "OpusUnavailableError";
}

/** A problem with an Opus packet or frame, naming the field and value. */
export class OpusCodecError extends Error {
  override name = "OpusCodecError";
  constructor(readonly field: string, readonly value: unknown, message: string) {
    super(message);
  }
}

/** Sonames tried in order: Debian's runtime package, then an unversioned dev symlink. */
const LIBOPUS = new NativeLibrary(SYMBOLS, {
  names: ["libopus.so.0", "libopus.so"],
  debianPackage: "libopus0",
  unavailable: OpusUnavailableError,
});

function opus(): Opus {
  return LIBOPUS.symbols();
}

/** The libopus version, e.g. `libopus 1.3.1`. Throws {@link OpusUnavailableError}. */
export function opusVersion(): string {
  return cString(opus().opus_get_version_string());
}

function opusError(code: number): string {
  return cString(opus().opus_strerror(code));
}

function checkRate(rate: number): OpusPcmRate {
  if (!isOpusPcmRate(rate)) {
    throw new OpusCodecError(
      "rate",
      rate,
      `Opus PCM rate ${rate} Hz is not one of ${OPUS_PCM_RATES}`,
    );
  }
  return rate;
}

/** Creates a libopus state with `create`, throwing its error text when it fails. */
function createState(
  what: string,
  create: (error: Int32Array) => Deno.PointerValue,
): Deno.PointerObject {
  const error = new Int32Array(1);
  const state = create(error);
  if (state === null || error[0] !== 0) {
    throw new OpusCodecError(
      what,
      error[0],
      `cannot create an Opus ${what}: ${opusError(error[0])}`,
    );
  }
  return state;
}

/** Options of {@link OpusEncoder}. */
export interface OpusEncoderOptions {
  /** Target bitrate, bits/s (default {@link OPUS_BITRATE}). */
  bitrate?: number;
  /** Rate of the frames given to {@link OpusEncoder.encode}, Hz (default 48000). */
  rate?: OpusPcmRate;
}

/** Encodes 20 ms mono frames to Opus packets. Throws {@link OpusUnavailableError} without libopus. */
export class OpusEncoder {
  /** Samples per frame at the encoder's rate (960 at 48 kHz). */
  readonly frameSamples: number;
  #opus = opus();
  #state: Deno.PointerObject | null;
  #packet = new Uint8Array(MAX_PACKET_BYTES);

  constructor(options: OpusEncoderOptions = {}) {
    const rate = checkRate(options.rate ?? OPUS_RATE);
    this.frameSamples = (rate * OPUS_FRAME_MS) / 1000;
    // AUDIO (CELT) rather than VOIP (SILK/hybrid): at 32 kbps it is ~2.5× cheaper to encode and
    // keeps the waveform closer.
    this.#state = createState(
      "encoder",
      (error) => this.#opus.opus_encoder_create(rate, 1, OPUS_APPLICATION_AUDIO, error),
    );
    const bitrate = options.bitrate ?? OPUS_BITRATE;
    for (
      const [field, ctl, value] of [
        ["bitrate", OPUS_SET_BITRATE, bitrate],
        ["complexity", OPUS_SET_COMPLEXITY, ENCODER_COMPLEXITY],
      ] as const
    ) {
      const code = this.#opus.opus_encoder_ctl(this.#state, ctl, value);
      if (code < 0) {
        this.close();
        throw new OpusCodecError(
          field,
          value,
          `Opus ${field} ${value} refused: ${opusError(code)}`,
        );
      }
    }
  }

  /**
   * Encodes exactly {@link frameSamples} float samples in [-1, 1]; returns a new packet. Throws
   * {@link OpusCodecError} for a frame of another size or a closed encoder.
   */
  encode(frame: Float32Array): Uint8Array {
    if (frame.length !== this.frameSamples) {
      throw new OpusCodecError(
        "frame",
        frame.length,
        `frame has ${frame.length} samples, expected ${this.frameSamples} (20 ms)`,
      );
    }
    if (this.#state === null) {
      throw new OpusCodecError("encoder", "closed", "Opus encoder is closed");
    }
    const length = this.#opus.opus_encode_float(
      this.#state,
      frame,
      frame.length,
      this.#packet,
      this.#packet.length,
    );
    if (length < 0) {
      throw new OpusCodecError("frame", frame.length, `Opus encode failed: ${opusError(length)}`);
    }
    return this.#packet.slice(0, length);
  }

  /** Frees the encoder's native state; later calls throw. */
  close(): void {
    if (this.#state === null) return;
    this.#opus.opus_encoder_destroy(this.#state);
    this.#state = null;
  }
}

/** Options of {@link OpusDecoder}. */
export interface OpusDecoderOptions {
  /** Rate of the samples it returns, Hz (default 48000); libopus resamples internally. */
  rate?: OpusPcmRate;
}

/**
 * Decodes Opus packets and conceals lost ones. Throws {@link OpusUnavailableError} without
 * libopus.
 */
export class OpusDecoder {
  /** Rate of the samples returned, Hz. */
  readonly rate: OpusPcmRate;
  #opus = opus();
  #state: Deno.PointerObject | null;
  #out: Float32Array;
  /** The view last returned (no allocation per packet while packets keep their length). */
  #lastView: Float32Array = new Float32Array(0);
  /** Samples per frame seen last; concealment produces this much. */
  #frameSamples: number;

  constructor(options: OpusDecoderOptions = {}) {
    this.rate = checkRate(options.rate ?? OPUS_RATE);
    this.#frameSamples = (this.rate * OPUS_FRAME_MS) / 1000;
    this.#out = new Float32Array((this.rate * MAX_FRAME_MS) / 1000);
    this.#state = createState(
      "decoder",
      (error) => this.#opus.opus_decoder_create(this.rate, 1, error),
    );
  }

  /**
   * Decodes one packet (an empty one is a loss: concealed); returns a view valid until the next
   * call. Throws {@link OpusCodecError} when the payload is not Opus (the caller conceals
   * instead) or the decoder is closed.
   */
  decode(packet: Uint8Array): Float32Array {
    if (packet.length === 0) return this.conceal();
    if (packet.length > MAX_PACKET_BYTES) {
      throw new OpusCodecError(
        "packet",
        packet.length,
        `Opus packet of ${packet.length} bytes is longer than ${MAX_PACKET_BYTES}`,
      );
    }
    const samples = this.#opus.opus_decode_float(
      this.#open(),
      packet,
      packet.length,
      this.#out,
      this.#out.length,
      0,
    );
    if (samples < 0) {
      throw new OpusCodecError(
        "packet",
        packet.length,
        `Opus packet of ${packet.length} bytes does not decode: ${opusError(samples)}`,
      );
    }
    if (samples > 0) this.#frameSamples = samples;
    return this.#view(samples);
  }

  /**
   * Opus packet-loss concealment for one missing packet, as long as the last packet decoded (20 ms
   * unless the device sends longer packets); a view valid until the next call. Consecutive calls
   * fade out at libopus's pace.
   */
  conceal(): Float32Array {
    const samples = this.#opus.opus_decode_float(
      this.#open(),
      null,
      0,
      this.#out,
      this.#frameSamples,
      0,
    );
    if (samples < 0) {
      throw new OpusCodecError("packet", 0, `Opus concealment failed: ${opusError(samples)}`);
    }
    return this.#view(samples);
  }

  /** The first `samples` of the output buffer; the view is kept while the length repeats. */
  #view(samples: number): Float32Array {
    if (this.#lastView.length !== samples) this.#lastView = this.#out.subarray(0, samples);
    return this.#lastView;
  }

  /** Frees the decoder's native state; later calls throw. */
  close(): void {
    if (this.#state === null) return;
    this.#opus.opus_decoder_destroy(this.#state);
    this.#state = null;
  }

  #open(): Deno.PointerObject {
    if (this.#state === null) {
      throw new OpusCodecError("decoder", "closed", "Opus decoder is closed");
    }
    return this.#state;
  }
}
