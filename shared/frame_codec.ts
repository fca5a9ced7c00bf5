/**
 * The gateway ↔ AI-server wire protocol, both versions, in one module (docs/protocol.md).
 *
 * - **v1** is spec section 4.2 byte for byte: `{device}|{length}|{rate}|{request}\n` followed by
 *   `length` bytes of int16 mono little-endian PCM, in both directions (`frame_v1.ts`).
 * - **v2** streams: every message is one JSON header line starting with `{`, followed by
 *   `length` payload bytes when the header says so (PCM for audio, UTF-8 for text). The first
 *   message on a v2 connection is a `hello`. Every message but hello/ping/pong/connection errors
 *   names its turn. The messages are in `frame_v2_messages.ts`; one table of header fields per
 *   message type serves the encoder and the decoder (`frame_v2.ts`).
 *
 * This module is the one entry: it re-exports both versions and the limits and errors they
 * share (`frame_checks.ts`).
 *
 * One incremental {@link FrameDecoder} reads both: bytes may arrive in any chunking and frames
 * may be coalesced. Every limit is checked before anything of the announced size is allocated,
 * and every problem is a {@link FrameError} naming the field and the value.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder();
 * const bytes = encodeV1({ device: "kitchen", rate: 16000, request: "r1", pcm: new Uint8Array(4) });
 * decoder.push(bytes); // [{ version: 1, frame: { device: "kitchen", ... } }]
 * ```
 */

export {
  ALLOWED_SAMPLE_RATES,
  DEFAULT_FRAME_LIMITS,
  FrameError,
  type FrameErrorCode,
  type FrameLimits,
  maxPcmBytes,
  type SampleRate,
} from "./frame_checks.ts";
export { encodeV1, type V1Frame } from "./frame_v1.ts";
export {
  type AudioMessage,
  type CancelMessage,
  type CommitMessage,
  type EndMessage,
  EOT_MAX_SILENCE_MS,
  EOT_MIN_SILENCE_MS,
  type EotMessage,
  type ErrorMessage,
  errorMessage,
  type HelloMessage,
  MAX_ERROR_MESSAGE_CHARS,
  type PauseMessage,
  type PingMessage,
  type PongMessage,
  type Role,
  type StartMessage,
  type StateMessage,
  type TextMessage,
  TURN_COMPLETIONS,
  type TurnCompletion,
  type TurnState,
  V2_CAPABILITIES,
  type V2Message,
  type V2MessageType,
} from "./frame_v2_messages.ts";
// Camera frames (docs/video.md).
export {
  type FrameRequestMessage,
  type ImageMessage,
  type ImageReason,
  MAX_IMAGE_BYTES,
  MAX_IMAGE_SIDE,
} from "./frame_v2_messages.ts";
export { encodeV2 } from "./frame_v2.ts";

import {
  decodeUtf8,
  DEFAULT_FRAME_LIMITS,
  fail,
  FrameError,
  type FrameLimits,
  show,
} from "./frame_checks.ts";
import { parseV1Header, type V1Frame } from "./frame_v1.ts";
import { attachPayload, buildV2, parseV2Header, v2PayloadLength } from "./frame_v2.ts";
import type { V2Message } from "./frame_v2_messages.ts";

/** What the decoder yields: a v1 frame or a v2 message. */
export type Decoded = { version: 1; frame: V1Frame } | { version: 2; message: V2Message };

const NEWLINE = 0x0a;
const EMPTY_PAYLOAD = new Uint8Array(0);
/** A v2 header line is a JSON object; a v1 one starts with a device id. */
const OPEN_BRACE = 0x7b;

// ---------------------------------------------------------------------------------------------
// The incremental decoder

/** Options for {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** `auto` (default, servers): the first line picks v1 or v2. Clients know what they speak. */
  version?: 1 | 2 | "auto";
  limits?: Partial<FrameLimits>;
}

/**
 * Reads frames from a byte stream in any chunking. After the first error the stream cannot be
 * re-synchronized (a payload of unknown length may follow), so every later push throws
 * `decoder_failed`: answer with an error (v2) or close (v1).
 */
export class FrameDecoder {
  readonly limits: Readonly<FrameLimits>;
  #version: 1 | 2 | undefined;
  #sawHello = false;
  #failed: FrameError | undefined;
  #header: Uint8Array;
  #headerFill = 0;
  /** The frame whose payload is being read, or undefined while reading a header. */
  #pending:
    | { finish: (payload: Uint8Array) => Decoded; payload: Uint8Array; fill: number }
    | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.limits = Object.freeze({ ...DEFAULT_FRAME_LIMITS, ...options.limits });
    this.#version = options.version === "auto" || options.version === undefined
      ? undefined
      : options.version;
    this.#header = new Uint8Array(this.limits.maxHeaderBytes);
  }

  /** 1 or 2 once known (immediately for clients, after the first line for `auto`). */
  get version(): 1 | 2 | undefined {
    return this.#version;
  }

  /** Bytes held for a frame not yet complete; never more than the limits allow. */
  get bufferedBytes(): number {
    return this.#headerFill + (this.#pending?.fill ?? 0);
  }

  /** Feeds bytes; returns every frame they complete, in order. Throws {@link FrameError}. */
  push(chunk: Uint8Array): Decoded[] {
    if (this.#failed) {
      fail(
        "decoder_failed",
        "stream",
        this.#failed.code,
        `stream already failed: ${this.#failed.message}`,
      );
    }
    try {
      return this.#consume(chunk);
    } catch (error) {
      this.#failed = error instanceof FrameError
        ? error
        : new FrameError("bad_field", "frame", String(error), `unexpected decoder error: ${error}`);
      this.#headerFill = 0;
      this.#pending = undefined;
      throw this.#failed;
    }
  }

  #consume(chunk: Uint8Array): Decoded[] {
    const out: Decoded[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      const pending = this.#pending;
      if (pending) {
        const take = Math.min(pending.payload.length - pending.fill, chunk.length - offset);
        pending.payload.set(chunk.subarray(offset, offset + take), pending.fill);
        pending.fill += take;
        offset += take;
        if (pending.fill === pending.payload.length) {
          this.#pending = undefined;
          out.push(pending.finish(pending.payload));
        }
        continue;
      }
      const newline = chunk.indexOf(NEWLINE, offset);
      const end = newline === -1 ? chunk.length : newline + 1;
      const lineBytes = this.#headerFill + end - offset;
      if (lineBytes > this.limits.maxHeaderBytes) {
        fail(
          "header_too_long",
          "header",
          lineBytes,
          `header line exceeds ${this.limits.maxHeaderBytes} bytes without a newline`,
        );
      }
      this.#header.set(chunk.subarray(offset, end), this.#headerFill);
      this.#headerFill += end - offset;
      offset = end;
      if (newline === -1) break;
      const line = this.#header.subarray(0, this.#headerFill - 1);
      this.#headerFill = 0;
      const frame = this.#startFrame(line);
      if (frame) out.push(frame);
    }
    return out;
  }

  /** Parses a header line; returns the frame if it has no payload, else arms `#pending`. */
  #startFrame(lineBytes: Uint8Array): Decoded | undefined {
    if (this.#version === undefined) this.#version = lineBytes[0] === OPEN_BRACE ? 2 : 1;
    const line = decodeUtf8(lineBytes, "header", "header line");
    const limits = this.limits;
    let length: number;
    let finish: (payload: Uint8Array) => Decoded;
    if (this.#version === 1) {
      const parsed = parseV1Header(line, limits);
      length = parsed.length;
      finish = (pcm) => ({ version: 1, frame: { ...parsed.head, pcm } });
    } else {
      const { type, header } = parseV2Header(line);
      if (!this.#sawHello && type !== "hello") {
        fail("not_hello", "type", type, `first v2 message is ${show(type)}, expected "hello"`);
      }
      this.#sawHello = true;
      length = v2PayloadLength(type, header, limits);
      // Validated once, from the header, before any payload is read; the payload is attached.
      const message = buildV2(type, header, EMPTY_PAYLOAD, limits);
      if (length === 0) return { version: 2, message };
      finish = (payload) => ({ version: 2, message: attachPayload(message, payload) });
    }
    if (length === 0) return finish(new Uint8Array(0));
    this.#pending = { finish, payload: new Uint8Array(length), fill: 0 };
    return undefined;
  }
}
