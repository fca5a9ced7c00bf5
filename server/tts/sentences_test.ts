import assert from "node:assert/strict";
import { MAX_SENTENCE_CHARS, SentenceSplitter, splitSentences } from "./sentences.ts";

Deno.test("splitSentences cuts at . ! ? followed by whitespace", () => {
  assert.deepEqual(splitSentences("It is 3:05. Your timer is set! Anything else?"), [
    "It is 3:05.",
    "Your timer is set!",
    "Anything else?",
  ]);
});

Deno.test("splitSentences keeps decimals and abbreviations inside a sentence", () => {
  assert.deepEqual(splitSentences("It is 3.5 degrees, e.g. cold. Dr. Who is on at 9 p.m. today."), [
    "It is 3.5 degrees, e.g. cold.",
    "Dr. Who is on at 9 p.m. today.",
  ]);
});

Deno.test("SentenceSplitter releases a sentence only once the text after it has started", () => {
  const splitter = new SentenceSplitter();
  assert.deepEqual(splitter.push("Hello there"), []);
  assert.deepEqual(splitter.push("."), []);
  assert.deepEqual(splitter.push(" How are"), ["Hello there."]);
  assert.deepEqual(splitter.push(" you?"), []);
  assert.deepEqual(splitter.flush(), ["How are you?"]);
  assert.deepEqual(splitter.flush(), []);
});

Deno.test("SentenceSplitter cuts an overlong sentence at a comma", () => {
  const long = "word ".repeat(30) + "then a comma, " + "more ".repeat(40);
  const [first] = new SentenceSplitter().push(long);
  assert.ok(first.endsWith("comma,"), first);
  assert.ok(first.length <= MAX_SENTENCE_CHARS);
});
