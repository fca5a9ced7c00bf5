import assert from "node:assert/strict";
import { errorOf } from "./testing.ts";
import { z } from "zod";
import { id, MAX_CONTROL_MESSAGE_CHARS, type ParseResult, parseWith } from "./message_fields.ts";

const Sample = z.object({ device_id: id });

function parse(input: unknown): ParseResult<z.infer<typeof Sample>> {
  return parseWith(Sample, input, MAX_CONTROL_MESSAGE_CHARS, "sample");
}

Deno.test("parseWith: JSON text input", async (t) => {
  await t.step("JSON text and an already-parsed value give the same value", () => {
    const value = { device_id: "kitchen" };
    assert.deepEqual(parse(JSON.stringify(value)), { ok: true, value });
    assert.deepEqual(parse(value), { ok: true, value });
  });

  await t.step("length is bounded before JSON.parse", () => {
    const huge = " ".repeat(MAX_CONTROL_MESSAGE_CHARS + 1);
    assert.equal(
      errorOf(parse(huge)),
      `sample is ${huge.length} characters, at most ${MAX_CONTROL_MESSAGE_CHARS} allowed`,
    );
  });

  await t.step("malformed JSON and non-objects are reported", () => {
    assert.match(errorOf(parse("{bad")), /^sample is not JSON: /);
    assert.match(errorOf(parse("[]")), /^sample: \(message\): .*expected object/);
    assert.match(errorOf(parse(null)), /^sample: \(message\): /);
  });

  await t.step("the error names the field path, the problem and the value", () => {
    assert.match(errorOf(parse({ device_id: "a|b" })), /^sample: device_id: contains '\|'/);
    assert.match(errorOf(parse({})), /device_id: .*\(got missing\)/);
  });
});
