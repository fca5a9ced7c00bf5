/**
 * What every MQTT message schema (`messages.ts`, `media_messages.ts`) is built from: the bounds
 * of strings, lists and media, the field schemas (ids, names, text, timestamps, base64 media) and
 * {@link parseWith}, which length-checks JSON text before `JSON.parse` and names the field path
 * and problem of the first issues. Import the messages from `messages.ts`.
 */
import { z } from "zod";
import { idProblem } from "./ids.ts";

/** Largest decoded media payload: an 8 MiB JPEG or short clip is plenty for a home camera. */
export const MAX_MEDIA_BYTES = 8 * 1024 * 1024;
/** Base64 length of {@link MAX_MEDIA_BYTES}: 4 characters per 3 bytes, padded. */
export const MAX_MEDIA_BASE64_CHARS = 4 * Math.ceil(MAX_MEDIA_BYTES / 3);
/** Largest SDP: a real audio+video offer is 2-6 KiB; 64 KiB leaves room for many candidates. */
export const MAX_SDP_CHARS = 64 * 1024;
/** Largest ICE candidate line: real ones are ~100-200 characters. */
export const MAX_CANDIDATE_CHARS = 1024;
/** Largest free text (error message, user context, description). */
export const MAX_TEXT_CHARS = 4096;
/** Largest short name (format, capability, firmware version, command name). */
export const MAX_NAME_CHARS = 128;
/** Largest list in a message (capabilities, detected objects, detected text). */
export const MAX_LIST_ITEMS = 256;
/** Largest JSON text of a control message: an SDP plus its envelope. */
export const MAX_CONTROL_MESSAGE_CHARS = MAX_SDP_CHARS + 16 * 1024;
/** Largest JSON text of a media message: the base64 payload plus its envelope. */
export const MAX_MEDIA_MESSAGE_CHARS = MAX_MEDIA_BASE64_CHARS + 64 * 1024;
/** Largest image side in pixels (8K is 7680). */
const MAX_IMAGE_SIDE = 16384;
/** Highest audio sample rate we accept in a recording. */
export const MAX_SAMPLE_RATE = 192000;
/** Longest clip: one hour, far beyond what {@link MAX_MEDIA_BYTES} can hold anyway. */
export const MAX_DURATION_MS = 3_600_000;

// Standard base64 (RFC 4648 section 4) with padding, as the spec's "<base64 encoded>" fields.
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Result of every `parseX` function. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** A device, session, request, turn, zone or alert-type id (the rule of `ids.ts`). */
export const id = z.string().check((ctx) => {
  const problem = idProblem(ctx.value);
  if (problem !== undefined) {
    ctx.issues.push({ code: "custom", message: problem, input: ctx.value });
  }
});
/** A short name: format, capability, firmware version, command name. */
export const name = z.string().min(1).max(MAX_NAME_CHARS);
/** Free text: an error message, user context, a description. */
export const text = z.string().max(MAX_TEXT_CHARS);
/** An ISO 8601 date-time with its offset. */
export const timestamp = z.iso.datetime({ offset: true });
/** A detection confidence, 0..1. */
export const confidence = z.number().min(0).max(1);
/** An image side, pixels. */
export const pixels = z.int().min(1).max(MAX_IMAGE_SIDE);

/** Base64 media payload, bounded to {@link MAX_MEDIA_BYTES} decoded bytes. */
export const base64Media = z.string().check((ctx) => {
  const value = ctx.value;
  const fail = (message: string): void => {
    ctx.issues.push({ code: "custom", message, input: `${value.length} characters`, abort: true });
  };
  if (value.length > MAX_MEDIA_BASE64_CHARS) {
    return fail(
      `is ${value.length} base64 characters, at most ${MAX_MEDIA_BASE64_CHARS} (${MAX_MEDIA_BYTES} bytes) allowed`,
    );
  }
  if (value.length === 0) return fail("is empty, expected base64 media");
  if (value.length % 4 !== 0) {
    return fail(`has length ${value.length}, not a multiple of 4 (base64)`);
  }
  if (!BASE64.test(value)) return fail("has characters outside A-Z a-z 0-9 + / and = padding");
  const padding = value.endsWith("==") ? 2 : value.endsWith("=") ? 1 : 0;
  const bytes = (value.length / 4) * 3 - padding;
  if (bytes > MAX_MEDIA_BYTES) {
    fail(`decodes to ${bytes} bytes, at most ${MAX_MEDIA_BYTES} allowed`);
  }
});

/** Image formats of the spec's media messages. */
export const IMAGE_FORMATS = ["jpeg", "png", "webp"] as const;
/** Audio formats of the spec's recordings. */
export const AUDIO_FORMATS = ["opus", "wav", "mp3"] as const;
/** Video formats of the spec's recordings. */
export const VIDEO_FORMATS = ["mp4", "webm"] as const;

// ---- parsing ------------------------------------------------------------------------------------

function describeInput(input: unknown): string {
  if (input === undefined) return "missing";
  const json = JSON.stringify(input) ?? String(input);
  return json.length > 40 ? `${json.slice(0, 40)}…` : json;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.length === 0 ? "(message)" : issue.path.join(".");
  const got = "input" in issue ? ` (got ${describeInput(issue.input)})` : "";
  return `${path}: ${issue.message}${got}`;
}

/**
 * Parses `input` (JSON text of at most `maxChars`, or an already-parsed value) with `schema`;
 * the error names `what`, then up to three field paths with their problem and value.
 */
export function parseWith<T>(
  schema: z.ZodType<T>,
  input: unknown,
  maxChars: number,
  what: string,
): ParseResult<T> {
  let data = input;
  if (typeof input === "string") {
    if (input.length > maxChars) {
      return {
        ok: false,
        error: `${what} is ${input.length} characters, at most ${maxChars} allowed`,
      };
    }
    try {
      data = JSON.parse(input);
    } catch (err) {
      return { ok: false, error: `${what} is not JSON: ${(err as Error).message}` };
    }
  }
  const result = schema.safeParse(data, { reportInput: true });
  if (result.success) return { ok: true, value: result.data };
  return {
    ok: false,
    error: `${what}: ${result.error.issues.slice(0, 3).map(describeIssue).join("; ")}`,
  };
}
