import assert from "node:assert/strict";
import {
  DEFAULT_FRAME_LIMITS,
  encodeV2,
  FrameDecoder,
  MAX_ERROR_MESSAGE_CHARS,
} from "./frame_codec.ts";
import { errorMessage, MAX_ERROR_CODE_CHARS } from "./frame_v2_messages.ts";

const HELLO = encodeV2({
  type: "hello",
  version: 2,
  role: "gateway",
  capabilities: ["stream"],
  ts: 1,
});

Deno.test("errorMessage cuts long text so its header still fits", () => {
  const encoded = encodeV2(errorMessage("bad_frame", "x".repeat(5000), { turn: "t" }));
  assert.ok(encoded.length <= DEFAULT_FRAME_LIMITS.maxHeaderBytes);
  const both = new Uint8Array(HELLO.length + encoded.length);
  both.set(HELLO);
  both.set(encoded, HELLO.length);
  const [decoded] = new FrameDecoder({ version: 2 }).push(both).slice(1);
  assert.ok(decoded.version === 2 && decoded.message.type === "error");
  assert.equal(decoded.message.message.length, MAX_ERROR_MESSAGE_CHARS);
  assert.equal(decoded.message.turn, "t");
});

Deno.test("errorMessage cuts a long code and falls back to the code for an empty text", () => {
  const error = errorMessage("c".repeat(100), "", { ts: 7 });
  assert.equal(error.code, "c".repeat(MAX_ERROR_CODE_CHARS));
  assert.equal(error.message, "c".repeat(100).slice(0, MAX_ERROR_MESSAGE_CHARS));
  assert.equal(error.ts, 7);
});

Deno.test("errorMessage leaves out a turn or request that is not a valid id", () => {
  const error = errorMessage("bad_frame", "no", { turn: "bad turn", request: "r\n1" });
  assert.deepEqual(Object.keys(error).sort(), ["code", "message", "ts", "type"]);
  const named = errorMessage("bad_frame", "no", { turn: "t1", request: "r1" });
  assert.equal(named.turn, "t1");
  assert.equal(named.request, "r1");
  // Whatever it names, it encodes: nothing it returns is refused by the codec.
  encodeV2(named);
});
