/**
 * How many tokens a real Whisper English model decodes for a transcript: benchmarks that run
 * the random-weight model (which never emits its end-of-text token) cap its decoding at this.
 * Whisper's English models (tiny.en … medium.en) use GPT-2's byte-level BPE vocabulary
 * (openai/whisper tokenizer.py, `gpt2` encoding), i.e. tiktoken's `r50k_base` ranks; the
 * transcript's text tokens follow the prompt with a leading space (" Turn on …"), then
 * `<|endoftext|>` ends the decoding.
 */
import { Tiktoken } from "js-tiktoken/lite";
import r50kBase from "js-tiktoken/ranks/r50k_base";

/** GPT-2's encoding, loaded once (its ranks are ~1 MB of text). */
let encoding: Tiktoken | undefined;

/** The `<|endoftext|>` token that ends a transcript's decoding. */
const END_OF_TEXT_TOKENS = 1;

/**
 * Tokens Whisper decodes for `text`: its text tokens (with the leading space Whisper emits) plus
 * the end-of-text token. Throws if `text` is empty after trimming (nothing to decode).
 *
 * @example decodedTokens("Turn on the kitchen lights.") // 7: " Turn"," on"," the"," kitchen"," lights","." + end
 */
export function decodedTokens(text: string): number {
  const trimmed = text.trim();
  if (trimmed === "") throw new Error("decodedTokens: text is empty, expected a transcript");
  encoding ??= new Tiktoken(r50kBase);
  return encoding.encode(` ${trimmed}`).length + END_OF_TEXT_TOKENS;
}
