/**
 * Opus for the WebRTC audio track (spec 5.5): 48 kHz mono, 20 ms frames, ~32 kbps, through the
 * libopus that npm:opusscript compiled to WASM. werift carries RTP only, so encoding, decoding
 * and packet-loss concealment are ours.
 *
 * We drive opusscript's compiled module directly instead of its JS wrapper, because the wrapper
 * places its PCM buffers at twice the address it allocated (a `Uint16Array` view indexed with a
 * byte pointer): they run off the module's fixed 16 MB heap after 78 codecs, so the 40th device
 * of a gateway could neither decode nor conceal. Here each codec's buffers sit where they were
 * allocated, and codecs are spread over several module instances ({@link CODECS_PER_HEAP} each),
 * so the number of devices is bounded by memory, not by one heap.
 *
 * The compiled glue passes PCM as one 16-bit slot per *byte* of int16 little-endian samples
 * (which is why the wrapper wants bytes, not an Int16Array: ENVIRONMENT.md). Both classes keep
 * preallocated buffers, so the per-frame path allocates only the encoded packet it returns.
 *
 * @example
 * ```ts
 * const encoder = new OpusEncoder();
 * const decoder = new OpusDecoder();
 * const packet = encoder.encode(new Float32Array(OPUS_FRAME_SAMPLES));
 * const samples = decoder.decode(packet); // 960 floats, a view valid until the next call
 * ```
 */
import { createRequire } from "node:module";
import { float32ToPcm, pcmToFloat32 } from "../audio.ts";

/** Opus in WebRTC always runs its RTP clock at 48 kHz (RFC 7587). */
export const OPUS_RATE = 48000;
/** 20 ms frames: the WebRTC default ptime and the spec's frame_size (5.5). */
export const OPUS_FRAME_MS = 20;
/** Samples in one 20 ms frame at 48 kHz. */
export const OPUS_FRAME_SAMPLES = (OPUS_RATE * OPUS_FRAME_MS) / 1000;
/** Spec 5.5: 32 kbps is transparent for speech and cheap on WiFi. */
export const OPUS_BITRATE = 32000;
/** Longest frame libopus decodes (120 ms at 48 kHz); its concealment gives 60 ms per call. */
const MAX_DECODED_SAMPLES = 5760;
/** Largest Opus packet (RFC 6716: 1275 bytes per frame, up to three frames of 20 ms). */
export const MAX_PACKET_BYTES = 1275 * 3;
/** libopus's application and CTL numbers (opus_defines.h). */
const OPUS_APPLICATION_VOIP = 2048;
const OPUS_APPLICATION_AUDIO = 2049;
const OPUS_SET_BITRATE = 4002;
const OPUS_SET_COMPLEXITY = 4010;
/** Complexity 5 of 10: half the encode cost of 10 with no audible difference for speech. */
const ENCODER_COMPLEXITY = 5;
/**
 * Codecs per module instance: each takes ~110 KB of a fixed 16 MB heap (libopus's encoder and
 * decoder state plus our buffers), so 96 leave a third of the heap free; the next codec opens
 * another instance (~10 ms, 16 MB of address space, touched only as used).
 */
export const CODECS_PER_HEAP = 96;

/** opusscript's compiled handler: one libopus encoder and decoder. */
interface NativeHandler {
  _encode(pcm: number, pcmBytes: number, packet: number, frameSize: number): number;
  _decode(packet: number, packetBytes: number, pcm: number): number;
  _encoder_ctl(ctl: number, value: number): number;
}

/** One instance of opusscript's compiled module (Emscripten, fixed-size heap). */
interface NativeOpus {
  HEAPU8: Uint8Array;
  _malloc(bytes: number): number;
  _free(pointer: number): void;
  OpusScriptHandler: {
    new (rate: number, channels: number, application: number): NativeHandler;
    destroy_handler(handler: NativeHandler): void;
  };
}

const loadModule = createRequire(import.meta.url)(
  "opusscript/build/opusscript_native_wasm.js",
) as () => NativeOpus;

interface Heap {
  native: NativeOpus;
  codecs: number;
}
const heaps: Heap[] = [];

/** libopus's error codes (opus_defines.h), for messages. */
const OPUS_ERRORS: Record<number, string> = {
  [-1]: "bad argument",
  [-2]: "buffer too small",
  [-3]: "internal error",
  [-4]: "invalid packet",
  [-5]: "unimplemented",
  [-6]: "invalid state",
  [-7]: "memory allocation failed",
};

/** A problem with an Opus packet or frame, naming the field and value. */
export class OpusCodecError extends Error {
  override name = "OpusCodecError";
  constructor(readonly field: string, readonly value: unknown, message: string) {
    super(message);
  }
}

/**
 * One libopus handler with two buffers in a module instance that has room: PCM (one 16-bit slot
 * per byte) and a packet. Shared by the encoder and the decoder.
 */
class Codec {
  readonly native: NativeOpus;
  readonly handler: NativeHandler;
  /** PCM slots: `pcmBytes` 16-bit slots, one per byte of int16 PCM. */
  readonly slots: Uint16Array;
  readonly packetAt: number;
  readonly pcmAt: number;
  #heap: Heap;
  #closed = false;

  constructor(application: number, pcmBytes: number) {
    let heap = heaps.find((h) => h.codecs < CODECS_PER_HEAP);
    if (!heap) {
      heap = { native: loadModule(), codecs: 0 };
      heaps.push(heap);
    }
    const native = heap.native;
    this.#heap = heap;
    this.native = native;
    this.handler = new native.OpusScriptHandler(OPUS_RATE, 1, application);
    heap.codecs++;
    this.pcmAt = native._malloc(pcmBytes * 2);
    this.packetAt = native._malloc(MAX_PACKET_BYTES);
    if (this.pcmAt === 0 || this.packetAt === 0) {
      this.close();
      throw new OpusCodecError("heap", heap.codecs, "no memory left for another Opus codec");
    }
    // The heap never grows (fixed at build time), so these views stay valid.
    this.slots = new Uint16Array(native.HEAPU8.buffer, this.pcmAt, pcmBytes);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.native.OpusScriptHandler.destroy_handler(this.handler);
    if (this.pcmAt) this.native._free(this.pcmAt);
    if (this.packetAt) this.native._free(this.packetAt);
    this.#heap.codecs--;
  }
}

function opusError(code: number): string {
  return OPUS_ERRORS[code] ?? `error ${code}`;
}

/** Encodes 20 ms mono 48 kHz frames to Opus packets. */
export class OpusEncoder {
  #codec: Codec;
  #pcm = new Uint8Array(OPUS_FRAME_SAMPLES * 2);

  constructor(options: { bitrate?: number } = {}) {
    // AUDIO (CELT) rather than VOIP (SILK/hybrid): at 32 kbps it is ~2.5× cheaper to encode
    // here (0.07 vs 0.17 ms per frame at complexity 5) and keeps the waveform closer.
    this.#codec = new Codec(OPUS_APPLICATION_AUDIO, this.#pcm.length);
    const { handler } = this.#codec;
    handler._encoder_ctl(OPUS_SET_BITRATE, options.bitrate ?? OPUS_BITRATE);
    handler._encoder_ctl(OPUS_SET_COMPLEXITY, ENCODER_COMPLEXITY);
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
    const codec = this.#codec;
    codec.slots.set(float32ToPcm(frame, this.#pcm));
    const length = codec.handler._encode(
      codec.pcmAt,
      this.#pcm.length,
      codec.packetAt,
      OPUS_FRAME_SAMPLES,
    );
    if (length < 0) {
      throw new OpusCodecError("frame", frame.length, `Opus encode failed: ${opusError(length)}`);
    }
    return codec.native.HEAPU8.slice(codec.packetAt, codec.packetAt + length);
  }

  /** Frees the encoder's WASM memory. */
  close(): void {
    this.#codec.close();
  }
}

/** Decodes Opus packets and conceals lost ones. */
export class OpusDecoder {
  #codec = new Codec(OPUS_APPLICATION_VOIP, MAX_DECODED_SAMPLES * 2);
  #pcm = new Uint8Array(MAX_DECODED_SAMPLES * 2);
  #out = new Float32Array(MAX_DECODED_SAMPLES);
  /** Samples per frame seen last; concealment produces this much. */
  #frameSamples = OPUS_FRAME_SAMPLES;
  /** Concealed audio not played yet (see {@link conceal}); #concealedAt..#concealedEnd in #plc. */
  #plc = new Float32Array(MAX_DECODED_SAMPLES);
  #concealedAt = 0;
  #concealedEnd = 0;

  /**
   * Decodes one packet; returns a view valid until the next call. Throws
   * {@link OpusCodecError} when the payload is not Opus (the caller conceals instead).
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
    const codec = this.#codec;
    codec.native.HEAPU8.set(packet, codec.packetAt);
    const samples = this.#run(packet.length, this.#out);
    if (typeof samples === "number") {
      throw new OpusCodecError(
        "packet",
        packet.length,
        `Opus packet of ${packet.length} bytes does not decode: ${opusError(samples)}`,
      );
    }
    // A real packet ends the loss: concealment still buffered would play out of time.
    this.#concealedAt = this.#concealedEnd = 0;
    if (samples.length > 0) this.#frameSamples = samples.length;
    return samples;
  }

  /**
   * Opus packet-loss concealment for one missing frame. This decoder conceals its maximum frame
   * (60 ms) per call and advances its own timeline by that much, so one call serves up to three
   * consecutive lost 20 ms frames: the concealment fades at libopus's intended pace and costs a
   * third of the calls.
   */
  conceal(): Float32Array {
    if (this.#concealedEnd - this.#concealedAt < this.#frameSamples) {
      const samples = this.#run(0, this.#plc);
      if (typeof samples === "number") {
        throw new OpusCodecError("packet", 0, `Opus concealment failed: ${opusError(samples)}`);
      }
      this.#concealedAt = 0;
      this.#concealedEnd = samples.length;
    }
    const start = this.#concealedAt;
    const end = Math.min(this.#concealedEnd, start + this.#frameSamples);
    this.#concealedAt = end;
    this.#out.set(this.#plc.subarray(start, end));
    return this.#out.subarray(0, end - start);
  }

  /** Runs libopus on the packet in the heap (0 bytes = conceal): samples into `out`, or the error. */
  #run(packetBytes: number, out: Float32Array): Float32Array | number {
    const codec = this.#codec;
    const count = codec.handler._decode(codec.packetAt, packetBytes, codec.pcmAt);
    if (count < 0) return count;
    const bytes = this.#pcm.subarray(0, count * 2);
    bytes.set(codec.slots.subarray(0, count * 2));
    return pcmToFloat32(bytes, out);
  }

  /** Frees the decoder's WASM memory. */
  close(): void {
    this.#codec.close();
  }
}
