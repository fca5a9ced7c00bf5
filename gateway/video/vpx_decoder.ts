/**
 * Decodes VP8 frames with Debian's libvpx (`libvpx7`, `libvpx.so.7`) through Deno FFI: the
 * decoder API of `vpx/vpx_decoder.h` (libvpx 1.12): `vpx_codec_dec_init_ver` with the VP8
 * interface `vpx_codec_vp8_dx()`, `vpx_codec_decode`, `vpx_codec_get_frame` → a `vpx_image_t`
 * whose I420 planes are read in place (no copy) by {@link DecodedFrame}.
 *
 * Struct layouts below are those of the LP64 ABI (x86_64 and aarch64 Linux alike): pointers and
 * `long` are 8 bytes, `int`/`unsigned`/enums 4. The ABI version passed to init is
 * `VPX_DECODER_ABI_VERSION` = 3 + `VPX_CODEC_ABI_VERSION` (4 + `VPX_IMAGE_ABI_VERSION` 5) = 12;
 * libvpx refuses a mismatch with `VPX_CODEC_ABI_MISMATCH` rather than misreading memory.
 *
 * Guards around the C code: a keyframe larger than `maxWidth`×`maxHeight` is refused before
 * libvpx sees it (and the inter frames after it, which reference it); an inter frame with no
 * decodable reference is refused; libvpx errors on corrupt data become {@link VpxDecodeError}.
 * A new keyframe of another size is simply decoded (libvpx reallocates).
 *
 * @example
 * ```ts
 * const decoder = new VpxDecoder({ maxWidth: 1920, maxHeight: 1080 });
 * const frame = decoder.decode(vp8Bytes); // a view valid until the next decode/close
 * if (frame) downscaleLuma(frame.y, thumbnail, { width: 160, height: 120 });
 * decoder.close();
 * ```
 */

import type { I420Picture } from "./i420_rgb.ts";
import type { Plane } from "./luma_thumbnail.ts";
import { parseVp8FrameHeader } from "../../shared/video/vp8_payload.ts";
import { cString, NativeLibrary } from "../../shared/native_library.ts";

/** `VPX_DECODER_ABI_VERSION` of libvpx 1.12 (see the module doc). */
const VPX_DECODER_ABI_VERSION = 12;
/** `sizeof(vpx_codec_ctx_t)` on LP64 is 56: name, iface, err(+pad), err_detail, init_flags
 * (long), config, priv. 128 leaves slack and is above V8's 64-byte limit for typed arrays kept
 * on the (moving) JS heap, so the context libvpx fills never moves between calls. */
const CODEC_CTX_BYTES = 128;
/** `vpx_codec_dec_cfg_t`: threads, w, h (unsigned each). */
const DEC_CFG_BYTES = 12;
/** `VPX_IMG_FMT_I420` = `VPX_IMG_FMT_PLANAR | 2`. */
const VPX_IMG_FMT_I420 = 0x102;
/** `vpx_image_t` field offsets (LP64): 12 `unsigned` fields, then `planes[4]`, `stride[4]`. */
const IMG = { fmt: 0, dW: 24, dH: 28, planes: 48, stride: 80 } as const;
/** One decoder thread per camera: a 640×480 frame decodes in about a millisecond, and the Pi's
 * other cores belong to other cameras and the audio path. */
const DECODER_THREADS = 1;

/** The default resolution cap: 1920×1080 (VideoConfig's maximum, docs/video.md). */
export const DEFAULT_MAX_WIDTH = 1920;
export const DEFAULT_MAX_HEIGHT = 1080;

/** Why a frame was not decoded. */
export type VpxDecodeErrorCode =
  /** The keyframe's size is over the cap, or this inter frame follows such a keyframe. */
  | "too_large"
  /** An inter frame with no decodable reference (no keyframe yet, or after an error). */
  | "no_keyframe"
  /** libvpx rejected the data, or its frame header is malformed. */
  | "corrupt"
  /** The decoder was closed. */
  | "closed";

/** A frame that could not be decoded; `message` is log-ready and names the values. */
export class VpxDecodeError extends Error {
  override name = "VpxDecodeError";
  constructor(readonly code: VpxDecodeErrorCode, message: string) {
    super(message);
  }
}

/** libvpx could not be loaded or initialized. */
export class VpxUnavailableError extends Error {
  override name = "VpxUnavailableError";
}

/**
 * A decoded picture in libvpx's memory: I420 planes read in place. Valid only until the next
 * {@link VpxDecoder.decode} or {@link VpxDecoder.close}; copy ({@link copyI420}) to keep it.
 */
export type DecodedFrame = I420Picture;

const SYMBOLS = {
  vpx_codec_vp8_dx: { parameters: [], result: "pointer" },
  vpx_codec_dec_init_ver: {
    parameters: ["buffer", "pointer", "buffer", "i64", "i32"],
    result: "i32",
  },
  vpx_codec_decode: {
    parameters: ["buffer", "buffer", "u32", "pointer", "i64"],
    result: "i32",
  },
  vpx_codec_get_frame: { parameters: ["buffer", "buffer"], result: "pointer" },
  vpx_codec_destroy: { parameters: ["buffer"], result: "i32" },
  vpx_codec_err_to_string: { parameters: ["i32"], result: "pointer" },
  vpx_codec_error_detail: { parameters: ["buffer"], result: "pointer" },
  vpx_codec_version_str: { parameters: [], result: "pointer" },
} as const;

type Vpx = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Sonames tried in order: Debian 12's package, then an unversioned dev symlink. */
const LIBVPX = new NativeLibrary(SYMBOLS, {
  names: ["libvpx.so.7", "libvpx.so"],
  debianPackage: "libvpx7",
  unavailable: VpxUnavailableError,
});

function vpx(): Vpx {
  return LIBVPX.symbols();
}

/** The libvpx version string, e.g. `v1.12.0`. Throws {@link VpxUnavailableError}. */
export function vpxVersion(): string {
  return cString(vpx().vpx_codec_version_str());
}

/** Options of {@link VpxDecoder}. */
export interface VpxDecoderOptions {
  /** Largest keyframe size accepted, pixels. */
  maxWidth?: number;
  maxHeight?: number;
}

/** One VP8 decoder instance (one per camera stream). Not thread-safe; call from one loop. */
export class VpxDecoder {
  readonly maxWidth: number;
  readonly maxHeight: number;
  #vpx: Vpx;
  #ctx = new Uint8Array(CODEC_CTX_BYTES);
  /** Kept alive with the context: `ctx.config.dec` points at it until libvpx copies it. */
  #cfg = new Uint8Array(DEC_CFG_BYTES);
  #iter = new Uint8Array(8);
  #open = true;
  /** An inter frame can be decoded: the last keyframe was accepted and nothing failed since. */
  #haveReference = false;
  /** Why the stream is unusable until the next keyframe (for the error message). */
  #blocked: VpxDecodeError | undefined;

  /** Throws {@link VpxUnavailableError} when libvpx is missing or refuses to initialize. */
  constructor(options: VpxDecoderOptions = {}) {
    this.maxWidth = options.maxWidth ?? DEFAULT_MAX_WIDTH;
    this.maxHeight = options.maxHeight ?? DEFAULT_MAX_HEIGHT;
    this.#vpx = vpx();
    const cfg = new DataView(this.#cfg.buffer);
    cfg.setUint32(0, DECODER_THREADS, true);
    const status = this.#vpx.vpx_codec_dec_init_ver(
      this.#ctx,
      this.#vpx.vpx_codec_vp8_dx(),
      this.#cfg,
      0n,
      VPX_DECODER_ABI_VERSION,
    );
    if (status !== 0) {
      throw new VpxUnavailableError(`vpx_codec_dec_init_ver failed: ${this.#errorText(status)}`);
    }
  }

  /**
   * Decodes one complete VP8 frame. Returns the picture (a view valid until the next call), or
   * null when the frame is not to be shown (an invisible alt-ref). Throws {@link VpxDecodeError}
   * (`too_large`, `no_keyframe`, `corrupt`, `closed`); after one, inter frames keep failing with
   * `no_keyframe` until a keyframe that fits the cap arrives. The decoder stays usable.
   */
  decode(frame: Uint8Array): DecodedFrame | null {
    if (!this.#open) throw new VpxDecodeError("closed", "VP8 decoder is closed");
    let header;
    try {
      header = parseVp8FrameHeader(frame);
    } catch (error) {
      throw this.#block(new VpxDecodeError("corrupt", (error as Error).message));
    }
    if (header.keyframe) {
      if (header.width! > this.maxWidth || header.height! > this.maxHeight) {
        throw this.#block(
          new VpxDecodeError(
            "too_large",
            `VP8 keyframe is ${header.width}x${header.height}, over the ${this.maxWidth}x${this.maxHeight} cap (VIDEO_MAX_WIDTH/VIDEO_MAX_HEIGHT): refused`,
          ),
        );
      }
    } else if (!this.#haveReference) {
      throw new VpxDecodeError(
        this.#blocked?.code === "too_large" ? "too_large" : "no_keyframe",
        `VP8 inter frame without a decodable keyframe${
          this.#blocked ? ` (${this.#blocked.message})` : ""
        }`,
      );
    }
    const status = this.#vpx.vpx_codec_decode(this.#ctx, frame, frame.length, null, 0n);
    if (status !== 0) {
      throw this.#block(
        new VpxDecodeError("corrupt", `libvpx could not decode: ${this.#errorText(status)}`),
      );
    }
    this.#haveReference = true;
    this.#blocked = undefined;
    this.#iter.fill(0);
    const image = this.#vpx.vpx_codec_get_frame(this.#ctx, this.#iter);
    if (image === null) return null;
    return readImage(image);
  }

  /** Frees libvpx's state; later decodes throw `closed`. Idempotent. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#vpx.vpx_codec_destroy(this.#ctx);
  }

  #block(error: VpxDecodeError): VpxDecodeError {
    this.#haveReference = false;
    this.#blocked = error;
    return error;
  }

  #errorText(status: number): string {
    const text = cString(this.#vpx.vpx_codec_err_to_string(status));
    const detail = cString(this.#vpx.vpx_codec_error_detail(this.#ctx));
    return detail ? `${text} (${detail})` : text;
  }
}

function readImage(image: Deno.PointerObject): DecodedFrame {
  const view = new Deno.UnsafePointerView(image);
  const format = view.getUint32(IMG.fmt);
  if (format !== VPX_IMG_FMT_I420) {
    throw new VpxDecodeError("corrupt", `libvpx returned image format 0x${format.toString(16)}`);
  }
  const width = view.getUint32(IMG.dW);
  const height = view.getUint32(IMG.dH);
  const plane = (index: number, w: number, h: number): Plane => {
    const stride = view.getInt32(IMG.stride + 4 * index);
    const pointer = view.getPointer(IMG.planes + 8 * index)!;
    // Rows are `stride` apart; the last one needs only `w` bytes.
    const bytes = stride * (h - 1) + w;
    const data = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointer, bytes));
    return { data, width: w, height: h, stride };
  };
  const chromaWidth = (width + 1) >> 1;
  const chromaHeight = (height + 1) >> 1;
  return {
    width,
    height,
    y: plane(0, width, height),
    u: plane(1, chromaWidth, chromaHeight),
    v: plane(2, chromaWidth, chromaHeight),
  };
}

/** Packs a frame's planes into one tightly packed I420 buffer (Y, then U, then V), a copy the
 * caller owns: what a JPEG encoder or the server's live-frame reply takes. */
export function copyI420(frame: DecodedFrame): Uint8Array {
  const planes = [frame.y, frame.u, frame.v];
  const out = new Uint8Array(planes.reduce((n, p) => n + p.width * p.height, 0));
  let at = 0;
  for (const p of planes) {
    for (let row = 0; row < p.height; row++) {
      out.set(p.data.subarray(row * p.stride, row * p.stride + p.width), at);
      at += p.width;
    }
  }
  return out;
}
