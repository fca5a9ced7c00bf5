import assert from "node:assert/strict";
import { roundTenth } from "./rounding.ts";

Deno.test("roundTenth rounds to one decimal", () => {
  assert.equal(roundTenth(12.345), 12.3);
  assert.equal(roundTenth(0.05), 0.1);
  assert.equal(roundTenth(-1.26), -1.3);
  assert.equal(roundTenth(7), 7);
});
