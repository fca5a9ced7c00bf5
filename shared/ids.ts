/**
 * Identifier syntax shared by the wire protocol and the MQTT topic tree.
 *
 * Device, session, request and turn ids travel inside TCP frame headers (`|`-separated in v1,
 * JSON in v2) and become MQTT topic levels (`naila/devices/{id}/...`), so one rule serves both:
 * 1..{@link MAX_ID_BYTES} bytes of UTF-8, none of the MQTT topic separators or wildcards
 * (`/`, `+`, `#`), no NUL or other control character, no whitespace, no `|` (the v1 field
 * separator) and no `{` or `}` (a v2 header line starts with `{`, so a v1 header never may).
 *
 * @example
 * ```ts
 * import { idProblem } from "@naila/shared/ids";
 * idProblem("living_room"); // undefined: valid
 * idProblem("a/b"); // "contains '/' at index 1"
 * ```
 */

/** Longest id in UTF-8 bytes: long enough for UUIDs and readable names, short enough for logs. */
export const MAX_ID_BYTES = 64;

const FORBIDDEN = new Set(["/", "+", "#", "|", "{", "}"]);
const encoder = new TextEncoder();

/** Describes what is wrong with `value` as an id, or returns undefined when it is valid. */
export function idProblem(value: unknown, maxBytes: number = MAX_ID_BYTES): string | undefined {
  if (typeof value !== "string") return `is ${typeof value}, expected a string`;
  if (value.length === 0) return "is empty";
  const bytes = encoder.encode(value).length;
  if (bytes > maxBytes) return `is ${bytes} bytes long, at most ${maxBytes} allowed`;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    const code = ch.charCodeAt(0);
    if (FORBIDDEN.has(ch)) return `contains '${ch}' at index ${i}`;
    if (code < 0x21 || code === 0x7f || /\s/.test(ch)) {
      return `contains control or space character U+${
        code.toString(16).padStart(4, "0").toUpperCase()
      } at index ${i}`;
    }
  }
  return undefined;
}

/** True when `value` is usable as a device, session, request or turn id. */
export function isValidId(value: unknown, maxBytes: number = MAX_ID_BYTES): value is string {
  return idProblem(value, maxBytes) === undefined;
}
