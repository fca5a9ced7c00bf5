import assert from "node:assert/strict";
import { decodeMedia, encodeMedia, MediaError } from "./link.ts";

Deno.test("decodeMedia round-trips base64 and refuses a payload over the limit before decoding", () => {
  const bytes = Uint8Array.from([0xff, 0xd8, 0, 1, 2, 3, 0xff, 0xd9]);
  assert.deepEqual(decodeMedia(encodeMedia(bytes), 8, "snapshot"), bytes);
  assert.throws(() => decodeMedia(encodeMedia(bytes), 7, "snapshot"), (error: Error) => {
    assert.ok(error instanceof MediaError);
    assert.equal(error.code, "too_large");
    assert.equal(
      error.message,
      "snapshot is 8 bytes, at most 7 allowed (MEDIA_MAX_UPLOAD_BYTES)",
    );
    return true;
  });
});
