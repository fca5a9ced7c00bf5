import assert from "node:assert/strict";
import { inRanges, LAN_RANGES, parseIp, parseRange, parseRanges } from "./ip_ranges.ts";

Deno.test("parseIp reads IPv4, IPv6, mapped and bracketed forms", () => {
  assert.equal(parseIp("10.0.0.1"), parseIp("::ffff:10.0.0.1"));
  assert.equal(parseIp("::ffff:a00:1"), parseIp("10.0.0.1"));
  assert.equal(parseIp("[::1]"), 1n);
  assert.equal(parseIp("fe80::1%eth0"), parseIp("fe80::1"));
  assert.equal(parseIp("2001:db8::1"), 0x20010db8000000000000000000000001n);
  for (const bad of ["", "256.0.0.1", "1.2.3", "01.2.3.4", "kitchen.local", "1::2::3", "1:2"]) {
    assert.equal(parseIp(bad), undefined, bad);
  }
});

Deno.test("ranges match by prefix, IPv4 and IPv6", () => {
  const ranges = parseRanges("192.168.1.0/24, fd00::/8 ,127.0.0.1");
  assert.ok(inRanges("192.168.1.77", ranges));
  assert.ok(!inRanges("192.168.2.1", ranges));
  assert.ok(inRanges("fd12::5", ranges));
  assert.ok(inRanges("127.0.0.1", ranges));
  assert.ok(!inRanges("127.0.0.2", ranges));
  assert.ok(!inRanges("not-an-ip", ranges));
  assert.ok(inRanges("1.2.3.4", parseRanges("0.0.0.0/0")));
});

Deno.test("LAN_RANGES: private and loopback in, public out", () => {
  for (const ip of ["10.1.2.3", "172.20.0.1", "192.168.0.9", "127.0.0.1", "::1", "fd00::1"]) {
    assert.ok(inRanges(ip, LAN_RANGES), ip);
  }
  for (const ip of ["8.8.8.8", "172.32.0.1", "1.1.1.1", "2001:4860::8888", "100.64.0.1"]) {
    assert.ok(!inRanges(ip, LAN_RANGES), ip);
  }
});

Deno.test("a bad range names itself", () => {
  for (const bad of ["10.0.0.0/33", "10.0.0.0/", "::1/129", "10.0.0.0/8/1", "lan"]) {
    assert.throws(
      () => parseRange(bad),
      (e: Error) => e instanceof TypeError && e.message.includes(bad),
    );
  }
});
