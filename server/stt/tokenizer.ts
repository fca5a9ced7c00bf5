/**
 * Whisper's tokenizer, decoding side: GPT-2 byte-level BPE tokens back to UTF-8 text, the special
 * tokens that make up the decoder prompt, and the token lists the decoder must suppress
 * (`suppress_tokens`, `begin_suppress_tokens` from generation_config.json).
 *
 * Reads the Hugging Face files shipped with every Whisper export: tokenizer.json, or vocab.json +
 * added_tokens.json (either is enough), and generation_config.json (optional; without it the
 * suppress lists come from config.json). Decoding needs no
 * merges: each token is already a string of byte-level characters.
 */

import { join } from "node:path";

/** Thrown when the tokenizer files are missing or malformed; names the file and the field. */
export class TokenizerFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenizerFileError";
  }
}

/** Ids of the special tokens the decoder uses. */
export interface WhisperSpecialTokens {
  endOfText: number;
  startOfTranscript: number;
  noTimestamps: number;
  /** Absent from English-only vocabularies of some exports. */
  english?: number;
  transcribe?: number;
  translate?: number;
  /** `<|nospeech|>` (newer files) or `<|nocaptions|>` (older): the no-speech probability's token. */
  noSpeech?: number;
}

/** The token vocabulary and the generation settings the decoder needs. */
export interface TokenizerFiles {
  /** Token string → id for the byte-level BPE vocabulary (vocab.json / tokenizer.json model.vocab). */
  vocab: Record<string, number>;
  /** Added tokens (added_tokens.json / tokenizer.json added_tokens): content → id. */
  addedTokens: Record<string, number>;
  /**
   * generation_config.json, when present; without it, the suppress lists of config.json (older
   * exports keep them there).
   */
  generationConfig?: GenerationConfig;
  /** The file `generationConfig` came from, for error messages (default generation_config.json). */
  generationConfigFile?: string;
}

/** The fields of generation_config.json the decoder reads. */
export interface GenerationConfig {
  suppress_tokens?: number[];
  begin_suppress_tokens?: number[];
  is_multilingual?: boolean;
  lang_to_id?: Record<string, number>;
  max_length?: number;
}

/** GPT-2's reversible byte → printable character map (`bytes_to_unicode`). */
function byteToUnicode(): string[] {
  const printable = new Set<number>();
  for (let b = 0x21; b <= 0x7e; b++) printable.add(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.add(b);
  for (let b = 0xae; b <= 0xff; b++) printable.add(b);
  const chars: string[] = [];
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    chars.push(String.fromCodePoint(printable.has(b) ? b : 256 + shifted++));
  }
  return chars;
}

/** The generation settings of a Hugging Face model directory (optional). */
const GENERATION_CONFIG_FILE = "generation_config.json";
/** The model configuration; holds the suppress lists in exports older than generation_config.json. */
const CONFIG_FILE = "config.json";

const CHAR_OF_BYTE = byteToUnicode();
const BYTE_OF_CHAR = new Map(CHAR_OF_BYTE.map((char, byte) => [char, byte]));

/**
 * GPT-2's printable character for one byte (`bytes_to_unicode`), e.g. 0x20 → "Ġ", 0xC3 → "Ã".
 * Throws a RangeError outside 0–255.
 */
export function byteLevelChar(byte: number): string {
  const char = CHAR_OF_BYTE[byte];
  if (char === undefined) throw new RangeError(`byte ${byte} is outside 0..255`);
  return char;
}

/**
 * The byte-level token string of `text` (its UTF-8 bytes as GPT-2 characters), e.g. " what" →
 * "Ġwhat". Used to build vocabularies; the inverse of what {@linkcode WhisperTokenizer.decode}
 * does per token.
 */
export function byteLevelToken(text: string): string {
  return Array.from(new TextEncoder().encode(text), (byte) => CHAR_OF_BYTE[byte]).join("");
}

/**
 * Whisper's tokenizer: decodes ids to text and knows the prompt and suppressed tokens.
 *
 * @example
 * ```ts
 * const tokenizer = await WhisperTokenizer.load("models/whisper-tiny.en");
 * tokenizer.decode([1770, 13]); // " Mr."
 * ```
 */
export class WhisperTokenizer {
  readonly special: WhisperSpecialTokens;
  /** Ids always suppressed (generation_config.json `suppress_tokens`). */
  readonly suppressTokens: readonly number[];
  /** Ids suppressed at the first generated position (`begin_suppress_tokens`). */
  readonly beginSuppressTokens: readonly number[];
  /** Whether the model takes language and task tokens in its prompt (not the `.en` models). */
  readonly multilingual: boolean;
  /** One past the largest id of any token. */
  readonly vocabSize: number;
  readonly #tokens: (string | undefined)[];
  readonly #specialIds: Set<number>;

  constructor(files: TokenizerFiles) {
    const tokens: (string | undefined)[] = [];
    for (const [token, id] of Object.entries(files.vocab)) tokens[id] = token;
    const added = files.addedTokens;
    this.#specialIds = new Set();
    for (const [content, id] of Object.entries(added)) {
      tokens[id] = content;
      this.#specialIds.add(id);
    }
    this.#tokens = tokens;
    this.vocabSize = tokens.length;
    const required = (content: string): number => {
      const id = added[content] ?? files.vocab[content];
      if (id === undefined) {
        throw new TokenizerFileError(
          `special token ${content} is missing from the vocabulary and added tokens`,
        );
      }
      return id;
    };
    const optional = (...contents: string[]): number | undefined => {
      for (const content of contents) {
        const id = added[content] ?? files.vocab[content];
        if (id !== undefined) return id;
      }
      return undefined;
    };
    this.special = {
      endOfText: required("<|endoftext|>"),
      startOfTranscript: required("<|startoftranscript|>"),
      noTimestamps: required("<|notimestamps|>"),
      english: optional("<|en|>"),
      transcribe: optional("<|transcribe|>"),
      translate: optional("<|translate|>"),
      noSpeech: optional("<|nospeech|>", "<|nocaptions|>"),
    };
    // Every Whisper vocabulary puts its special tokens from <|endoftext|> upwards.
    for (let id = this.special.endOfText; id < tokens.length; id++) this.#specialIds.add(id);
    const config = files.generationConfig ?? {};
    const source = files.generationConfigFile ?? GENERATION_CONFIG_FILE;
    this.suppressTokens = checkIdList(
      config.suppress_tokens,
      `${source} suppress_tokens`,
      this.vocabSize,
    );
    this.beginSuppressTokens = checkIdList(
      config.begin_suppress_tokens,
      `${source} begin_suppress_tokens`,
      this.vocabSize,
    );
    this.multilingual = config.is_multilingual ??
      (config.lang_to_id !== undefined ||
        // The English-only vocabularies have 51864 tokens, the multilingual ones 51865+.
        (this.vocabSize > 51864 && this.special.english !== undefined));
  }

  /** Reads the tokenizer files of a Hugging Face Whisper model directory. */
  static async load(modelDir: string): Promise<WhisperTokenizer> {
    const tokenizerJson = await readJson(join(modelDir, "tokenizer.json"));
    let vocab: Record<string, number>;
    let addedTokens: Record<string, number> = {};
    if (tokenizerJson !== undefined) {
      const model = (tokenizerJson as { model?: { vocab?: Record<string, number> } }).model;
      if (model?.vocab === undefined || typeof model.vocab !== "object") {
        throw new TokenizerFileError(`tokenizer.json in ${modelDir} has no model.vocab object`);
      }
      vocab = model.vocab;
      const added = (tokenizerJson as { added_tokens?: { id: number; content: string }[] })
        .added_tokens ?? [];
      for (const token of added) addedTokens[token.content] = token.id;
    } else {
      const vocabJson = await readJson(join(modelDir, "vocab.json"));
      if (vocabJson === undefined) {
        throw new TokenizerFileError(
          `${modelDir} has neither tokenizer.json nor vocab.json (one is needed to decode tokens)`,
        );
      }
      vocab = vocabJson as Record<string, number>;
    }
    const addedJson = await readJson(join(modelDir, "added_tokens.json"));
    if (addedJson !== undefined) {
      addedTokens = { ...(addedJson as Record<string, number>), ...addedTokens };
    }
    const generationConfig = await readJson(join(modelDir, GENERATION_CONFIG_FILE)) as
      | GenerationConfig
      | undefined;
    if (generationConfig !== undefined) {
      return new WhisperTokenizer({ vocab, addedTokens, generationConfig });
    }
    // Without generation_config.json, config.json's suppress lists (transformers kept them there
    // before generation_config.json existed, and still reads them from there as a fallback).
    const config = await readJson(join(modelDir, CONFIG_FILE)) as GenerationConfig | undefined;
    return new WhisperTokenizer({
      vocab,
      addedTokens,
      generationConfig: config === undefined ? undefined : {
        suppress_tokens: config.suppress_tokens,
        begin_suppress_tokens: config.begin_suppress_tokens,
      },
      generationConfigFile: CONFIG_FILE,
    });
  }

  /**
   * The decoder prompt for English transcription without timestamps:
   * <|startoftranscript|> [<|en|> <|transcribe|>] <|notimestamps|> (the bracketed tokens only for
   * multilingual models; the `.en` models were trained without them).
   */
  transcribePrompt(): number[] {
    const { startOfTranscript, english, transcribe, noTimestamps } = this.special;
    if (this.multilingual) {
      if (english === undefined || transcribe === undefined) {
        throw new TokenizerFileError(
          "multilingual model lacks <|en|> or <|transcribe|> (needed for its prompt)",
        );
      }
      return [startOfTranscript, english, transcribe, noTimestamps];
    }
    return [startOfTranscript, noTimestamps];
  }

  /** Whether `id` is a special token (control, language, task or timestamp), not text. */
  isSpecial(id: number): boolean {
    return this.#specialIds.has(id);
  }

  /** The token string of `id` (byte-level characters for text tokens). */
  idToToken(id: number): string | undefined {
    return this.#tokens[id];
  }

  /**
   * UTF-8 text of the text tokens among `ids`; special tokens are skipped. A byte sequence cut in
   * the middle of a character decodes to U+FFFD.
   */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      if (this.#specialIds.has(id)) continue;
      const token = this.#tokens[id];
      if (token === undefined) {
        throw new TokenizerFileError(
          `token id ${id} is not in the vocabulary (0..${this.vocabSize - 1})`,
        );
      }
      for (const char of token) {
        const byte = BYTE_OF_CHAR.get(char);
        if (byte === undefined) {
          throw new TokenizerFileError(
            `token ${id} (${JSON.stringify(token)}) has character ${
              JSON.stringify(char)
            } outside ` +
              "the byte-level alphabet",
          );
        }
        bytes.push(byte);
      }
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  }
}

function checkIdList(value: unknown, field: string, vocabSize: number): number[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((id) => Number.isInteger(id) && id >= 0)) {
    throw new TokenizerFileError(
      `${field} is ${JSON.stringify(value)}, expected a list of token ids`,
    );
  }
  // Some configs list ids beyond the vocabulary; they cannot be generated, so they are dropped.
  return value.filter((id) => id < vocabSize);
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new TokenizerFileError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
}
