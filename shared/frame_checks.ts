/**
 * What both versions of the wire protocol check (docs/protocol.md): the limits a peer's frame
 * must fit, the one error kind with field and value, and the id, sample-rate and PCM-length
 * checks. Part of `frame_codec.ts`, which re-exports what is public; import from there.
 */

import { MAX_UTTERANCE_MS } from "./audio.ts";
import { idProblem, MAX_ID_BYTES } from "./ids.ts";

/** Sample rates a frame may carry (issue #2); 22.05/44.1 kHz sources are resampled first. */
export const ALLOWED_SAMPLE_RATES = [8000, 16000, 24000, 48000] as const;
export type SampleRate = typeof ALLOWED_SAMPLE_RATES[number];

/** Bounds on what a peer may announce; every one is checked before any allocation. */
export interface FrameLimits {
  /** Longest header line including its `\n`. */
  maxHeaderBytes: number;
  /** Longest audio one frame may carry, in seconds at the frame's own rate. */
  maxAudioSeconds: number;
  /** Longest UTF-8 text payload (transcript, reply text). */
  maxTextBytes: number;
  /** Longest device, request or turn id in UTF-8 bytes. */
  maxIdBytes: number;
}

export const DEFAULT_FRAME_LIMITS: Readonly<FrameLimits> = Object.freeze({
  /** 1 KiB: a v1 header is under 150 bytes and a v2 header under 400. */
  maxHeaderBytes: 1024,
  /** 30 s: the gateway's maximum utterance length (spec 5.4), so one frame holds one utterance. */
  maxAudioSeconds: MAX_UTTERANCE_MS / 1000,
  /** 16 KiB: several paragraphs of reply text. */
  maxTextBytes: 16 * 1024,
  maxIdBytes: MAX_ID_BYTES,
});

/** Why a frame could not be decoded or encoded. */
export type FrameErrorCode =
  | "header_too_long"
  | "bad_utf8"
  | "header_fields"
  | "bad_id"
  | "bad_number"
  | "bad_sample_rate"
  | "payload_too_large"
  | "odd_pcm_length"
  | "bad_json"
  | "bad_type"
  | "bad_field"
  | "not_hello"
  | "bad_version"
  | "decoder_failed";

/** The one error kind this module raises: names the field and the offending value. */
export class FrameError extends Error {
  override name = "FrameError";
  constructor(
    readonly code: FrameErrorCode,
    readonly field: string,
    readonly value: unknown,
    message: string,
  ) {
    super(message);
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** `bytes` as UTF-8 text, else `bad_utf8` naming `field` (`what`: how the message calls it). */
export function decodeUtf8(bytes: Uint8Array, field: string, what: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    fail("bad_utf8", field, bytes.length, `${what} of ${bytes.length} bytes is not valid UTF-8`);
  }
}

/** Throws the {@link FrameError} for `field`. */
export function fail(code: FrameErrorCode, field: string, value: unknown, message: string): never {
  throw new FrameError(code, field, value, message);
}

/** A value as an error message shows it: quoted if a string, cut to 60 characters. */
export function show(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** `value` as an id within the limits, else `bad_id`. */
export function checkId(field: string, value: unknown, limits: FrameLimits): string {
  const problem = idProblem(value, limits.maxIdBytes);
  if (problem !== undefined) fail("bad_id", field, value, `${field} ${show(value)} ${problem}`);
  return value as string;
}

/** `value` as an allowed sample rate, else `bad_sample_rate`. */
export function checkRate(field: string, value: unknown): SampleRate {
  if (!(ALLOWED_SAMPLE_RATES as readonly unknown[]).includes(value)) {
    fail(
      "bad_sample_rate",
      field,
      value,
      `${field} ${show(value)} is not allowed, expected one of ${ALLOWED_SAMPLE_RATES.join("|")}`,
    );
  }
  return value as SampleRate;
}

/** Largest PCM payload a frame at `rate` may carry under `limits`. */
export function maxPcmBytes(rate: SampleRate, limits: FrameLimits = DEFAULT_FRAME_LIMITS): number {
  return Math.floor(limits.maxAudioSeconds * rate) * 2;
}

/** A PCM payload of `length` bytes at `rate` fits the limits and is whole int16 samples. */
export function checkPcmLength(
  field: string,
  length: number,
  rate: SampleRate,
  limits: FrameLimits,
) {
  const max = maxPcmBytes(rate, limits);
  if (length > max) {
    fail(
      "payload_too_large",
      field,
      length,
      `${field} ${length} exceeds ${max} bytes (${limits.maxAudioSeconds} s at ${rate} Hz)`,
    );
  }
  if (length % 2 !== 0) {
    fail("odd_pcm_length", field, length, `${field} ${length} is odd, int16 PCM needs even`);
  }
}
