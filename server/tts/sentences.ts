/**
 * Splits a reply into sentences as its text streams in, so the first sentence can be
 * synthesized and sent while the rest is still being generated (spec 7.4 "Streaming TTS").
 *
 * @example
 * ```ts
 * const splitter = new SentenceSplitter();
 * splitter.push("It's 3 p.m. Your tim"); // ["It's 3 p.m."]
 * splitter.push("er is set."); // []  (the end of the stream may still continue the sentence)
 * splitter.flush(); // ["Your timer is set."]
 * ```
 */

/**
 * Longest sentence held back before cutting at a comma or space: long LLM sentences would
 * otherwise delay the first audio; 200 characters is ~12 s of speech.
 */
export const MAX_SENTENCE_CHARS = 200;

/** Titles: their period never ends a sentence ("Dr. Who"). */
const TITLES = new Set(["mr", "mrs", "ms", "dr", "st", "prof"]);
/** Abbreviations whose period ends a sentence only when a capital letter follows. */
const ABBREVIATIONS = new Set(["vs", "etc", "e.g", "i.e", "a.m", "p.m", "no", "approx"]);

/** Streams text in, sentences out. */
export class SentenceSplitter {
  #buffer = "";

  /** Adds text; returns every sentence now known to be complete. */
  push(text: string): string[] {
    this.#buffer += text;
    const out: string[] = [];
    for (;;) {
      const end = this.#findEnd();
      if (end === -1) break;
      const sentence = this.#buffer.slice(0, end).trim();
      this.#buffer = this.#buffer.slice(end);
      if (sentence.length > 0) out.push(sentence);
    }
    return out;
  }

  /** Ends the stream: returns what is left as a last sentence (if any). */
  flush(): string[] {
    const rest = this.#buffer.trim();
    this.#buffer = "";
    return rest.length > 0 ? [rest] : [];
  }

  /** Index just past a complete sentence in the buffer, or -1. */
  #findEnd(): number {
    const text = this.#buffer;
    // A terminator counts only once the next character is known to be whitespace, so "3.5"
    // and "p.m." followed by more text are not cut early.
    const pattern = /[.!?…]+["')\]]*(\s+)/g;
    for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
      const before = text.slice(0, match.index);
      const word = /([A-Za-z.]+)$/.exec(before)?.[1]?.toLowerCase() ?? "";
      const abbreviation = word.replace(/\.$/, "");
      if (text[match.index] === "." && TITLES.has(abbreviation)) continue;
      if (text[match.index] === "." && ABBREVIATIONS.has(abbreviation)) {
        // "p.m." ends a sentence only when a capital letter follows.
        const next = text[match.index + match[0].length];
        if (next === undefined || !/[A-Z]/.test(next)) continue;
      }
      return match.index + match[0].length;
    }
    if (text.length > MAX_SENTENCE_CHARS) {
      const window = text.slice(0, MAX_SENTENCE_CHARS);
      const cut = Math.max(window.lastIndexOf(", "), window.lastIndexOf("; "));
      if (cut > 0) return cut + 2;
      const space = window.lastIndexOf(" ");
      return space > 0 ? space + 1 : MAX_SENTENCE_CHARS;
    }
    return -1;
  }
}

/** Splits a whole text into sentences. */
export function splitSentences(text: string): string[] {
  const splitter = new SentenceSplitter();
  return [...splitter.push(text), ...splitter.flush()];
}
