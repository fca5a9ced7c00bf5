/**
 * Protocol v1, spec section 4.2 byte for byte: `{device}|{length}|{rate}|{request}\n` followed
 * by `length` bytes of int16 mono little-endian PCM, in both directions. Part of
 * `frame_codec.ts`, which re-exports what is public; import from there.
 */

import { concatBytes } from "./audio.ts";
import {
  checkId,
  checkPcmLength,
  checkRate,
  DEFAULT_FRAME_LIMITS,
  fail,
  type FrameLimits,
  type SampleRate,
  show,
} from "./frame_checks.ts";

const textEncoder = new TextEncoder();

/** One v1 frame (spec 4.2): the same shape for requests and responses. */
export interface V1Frame {
  device: string;
  rate: SampleRate;
  request: string;
  /** int16 mono little-endian PCM; empty means "nothing to say" in a response. */
  pcm: Uint8Array;
}

/** A v1 number field: plain decimal digits only (no sign, no spaces), at most `maxDigits`. */
function checkDecimal(name: string, text: string, maxDigits: number): void {
  if (text.length === 0 || text.length > maxDigits || !/^[0-9]+$/.test(text)) {
    fail("bad_number", name, text, `${name} ${show(text)} is not a decimal integer`);
  }
}

/** Parses a v1 header line (without its `\n`): the frame's ids and rate, and its PCM length. */
export function parseV1Header(
  line: string,
  limits: FrameLimits,
): { head: Omit<V1Frame, "pcm">; length: number } {
  const fields = line.split("|");
  if (fields.length !== 4) {
    fail(
      "header_fields",
      "header",
      line,
      `frame header has ${fields.length} fields, expected 4 (device|length|rate|request): ${
        show(line)
      }`,
    );
  }
  const [deviceText, lengthText, rateText, requestText] = fields;
  const device = checkId("device", deviceText, limits);
  checkDecimal("audio_length", lengthText, 10);
  checkDecimal("sample_rate", rateText, 6);
  const rate = checkRate("sample_rate", Number(rateText));
  const request = checkId("request_id", requestText, limits);
  const length = Number(lengthText);
  checkPcmLength("audio_length", length, rate, limits);
  return { head: { device, rate, request }, length };
}

/** Encodes one v1 frame (spec 4.2). Throws {@link FrameError} when a field is invalid. */
export function encodeV1(frame: V1Frame, limits: FrameLimits = DEFAULT_FRAME_LIMITS): Uint8Array {
  checkId("device", frame.device, limits);
  checkRate("sample_rate", frame.rate);
  checkId("request_id", frame.request, limits);
  checkPcmLength("audio_length", frame.pcm.length, frame.rate, limits);
  const header = textEncoder.encode(
    `${frame.device}|${frame.pcm.length}|${frame.rate}|${frame.request}\n`,
  );
  return concatBytes([header, frame.pcm]);
}
