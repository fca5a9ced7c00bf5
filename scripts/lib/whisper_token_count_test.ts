import assert from "node:assert/strict";
import { decodedTokens } from "./whisper_token_count.ts";

Deno.test("decodedTokens counts GPT-2 BPE tokens with the leading space, plus the end token", () => {
  // " Turn" " on" " the" " kitchen" " lights" "." <|endoftext|>
  assert.equal(decodedTokens("Turn on the kitchen lights."), 7);
  // " Set" " a" " timer" " for" <|endoftext|>
  assert.equal(decodedTokens("Set a timer for"), 5);
  // Surrounding whitespace is not decoded.
  assert.equal(decodedTokens("  What time is it?\n"), decodedTokens("What time is it?"));
});

Deno.test("decodedTokens splits a rare word into several tokens", () => {
  // A made-up word is not one vocabulary entry: more than one text token.
  assert.ok(decodedTokens("Zxqvorplint") > 2);
});

Deno.test("decodedTokens rejects an empty transcript", () => {
  assert.throws(() => decodedTokens("   "), /text is empty/);
});
