/**
 * IP address ranges (CIDR) for allow-lists: the audio socket's gateway addresses (spec 17.2) and
 * the WebRTC candidates the gateway may send to (spec 17.1). IPv4 and IPv6; an IPv4 address is
 * kept as its IPv4-mapped IPv6 form, so `::ffff:10.0.0.1` and `10.0.0.1` are one address.
 *
 * @example
 * ```ts
 * const ranges = parseRanges("10.0.0.0/8, ::1");
 * inRanges("10.1.2.3", ranges); // true
 * inRanges("8.8.8.8", LAN_RANGES); // false
 * ```
 */

/** One range: the first address and the number of leading bits that must match (of 128). */
export interface IpRange {
  /** As written, for logs. */
  text: string;
  base: bigint;
  bits: number;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
/** IPv4 addresses live at ::ffff:0:0/96 in this module. */
const V4_MAPPED = 0xffffn << 32n;
/** An IPv4 prefix length counts from bit 96 of the mapped form. */
const V4_OFFSET_BITS = 96;
const ALL_BITS = 128;

function parseV4(text: string): bigint | undefined {
  const match = IPV4.exec(text);
  if (!match) return undefined;
  let value = 0n;
  for (const part of match.slice(1)) {
    const octet = Number(part);
    if (octet > 255 || (part.length > 1 && part.startsWith("0"))) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return V4_MAPPED | value;
}

function parseV6(text: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.split("::").length > 2) return undefined;
  let address = text;
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    // An embedded IPv4 tail (::ffff:10.0.0.1) is the last two 16-bit groups.
    const v4 = parseV4(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    const high = ((v4 >> 16n) & 0xffffn).toString(16);
    const low = (v4 & 0xffffn).toString(16);
    address = `${text.slice(0, lastColon + 1)}${high}:${low}`;
  }
  const [head, rest] = address.split("::");
  const groupsOf = (part: string | undefined) =>
    part === undefined || part === "" ? [] : part.split(":");
  const left = groupsOf(head);
  const right = groupsOf(rest);
  const present = left.length + right.length;
  if (rest === undefined ? present !== 8 : present > 7) return undefined;
  const groups = [...left, ...Array(8 - present).fill("0"), ...right];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
    value = (value << 16n) | BigInt(parseInt(group, 16));
  }
  return value;
}

/** The address as a 128-bit number (IPv4 mapped), or undefined when `text` is not an address. */
export function parseIp(text: string): bigint | undefined {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  // A zone index (fe80::1%eth0) names an interface, not a different address.
  const address = bare.split("%")[0];
  return parseV4(address) ?? (address.includes(":") ? parseV6(address) : undefined);
}

/** Parses one `address` or `address/bits`; throws a TypeError naming what is wrong. */
export function parseRange(text: string): IpRange {
  const [address, prefix, extra] = text.trim().split("/");
  const base = parseIp(address);
  const v4 = parseV4(address) !== undefined;
  const max = v4 ? ALL_BITS - V4_OFFSET_BITS : ALL_BITS;
  const bits = prefix === undefined ? max : Number(prefix);
  if (
    base === undefined || extra !== undefined || !Number.isInteger(bits) || bits < 0 ||
    bits > max || (prefix !== undefined && !/^\d+$/.test(prefix))
  ) {
    throw new TypeError(
      `${
        JSON.stringify(text)
      } is not an IP address or CIDR range such as 192.168.1.0/24 or fd00::/8`,
    );
  }
  const total = v4 ? bits + V4_OFFSET_BITS : bits;
  return { text: text.trim(), base: mask(base, total), bits: total };
}

function mask(value: bigint, bits: number): bigint {
  const hostBits = BigInt(ALL_BITS - bits);
  return (value >> hostBits) << hostBits;
}

/** Parses a comma-separated list of ranges (empty entries ignored); throws on a bad one. */
export function parseRanges(text: string): IpRange[] {
  return text.split(",").map((part) => part.trim()).filter((part) => part !== "").map(parseRange);
}

/** Whether `address` (text) lies in one of `ranges`; false when it is not an IP address. */
export function inRanges(address: string, ranges: readonly IpRange[]): boolean {
  const value = parseIp(address);
  if (value === undefined) return false;
  return ranges.some((range) => mask(value, range.bits) === range.base);
}

/**
 * Private LAN and loopback ranges (RFC 1918, RFC 4193, link-local, loopback): where a home's
 * devices and gateway live. The default for WebRTC candidates.
 */
export const LAN_RANGES: readonly IpRange[] = Object.freeze(parseRanges(
  "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,169.254.0.0/16,127.0.0.0/8,::1,fc00::/7,fe80::/10",
));

/** Loopback: 127.0.0.0/8 and ::1. */
const LOOPBACK: readonly IpRange[] = Object.freeze(parseRanges("127.0.0.0/8,::1"));

/** Whether a listener bound to `host` is reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || inRanges(host, LOOPBACK);
}
