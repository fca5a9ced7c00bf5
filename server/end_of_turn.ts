/**
 * End of turn from meaning, not only silence (issue 9). Given the speculative transcript the
 * server makes when the gateway sends `pause` (docs/protocol.md), classify the request as
 * `complete`, `incomplete` or `unknown`, and say how much silence (ms since the last speech
 * sample) the gateway should require before it ends the utterance:
 *
 * - `complete`, a command the built-in engine recognizes in full (`matchIntents`, a pure regex
 *   match with no side effect): {@link COMMAND_SILENCE_MS}, the turn can end at once;
 * - `complete`, a sentence that ends with `.`, `?` or `!` (Whisper punctuates): a little longer,
 *   {@link SENTENCE_SILENCE_MS};
 * - `incomplete`: a trailing conjunction, filler, preposition, article, possessive or auxiliary
 *   ("set a timer for", "… and", "um", "what is"), a trailing comma or ellipsis, or a timer or
 *   reminder still missing its unit ("set a timer for five"): {@link INCOMPLETE_SILENCE_MS};
 * - `unknown`: the configured silence window (AUDIO_SILENCE_FRAMES, 300 ms by default), which
 *   stays the fallback and, by design, the cap for everything but `incomplete`.
 *
 * When a Smart-Turn-style audio model is loaded (`smart_turn.ts`), its probability decides
 * between `complete` and `incomplete` for what the text rule leaves open or calls complete only
 * by punctuation; a trailing dangling word still wins (the words are certain, prosody is not),
 * and so does a fully recognized command.
 *
 * @example
 * ```ts
 * classifyTranscript("set a timer for"); // { completion: "incomplete", reason: "dangling word \"for\"" }
 * await new EndOfTurn().decide("Turn on the kitchen lights."); // complete, silenceMs 120
 * ```
 */
import { matchIntents, normalize } from "./assistant/builtin_engine.ts";

/** What the transcript says about the turn. */
export type TurnCompletion = "complete" | "incomplete" | "unknown";

/**
 * A recognized command: 120 ms of silence, a little past the gateway's `pause` at 60 ms
 * (SPECULATE_AFTER_MS), so the turn ends as soon as the speculative transcript is in.
 */
export const COMMAND_SILENCE_MS = 120;
/** A punctuated sentence: 200 ms, a third less than the spec's 300 ms window. */
export const SENTENCE_SILENCE_MS = 200;
/** Clearly unfinished: wait up to 1.2 s of silence (issue 9: "up to about 1.2 s"). */
export const INCOMPLETE_SILENCE_MS = 1200;
/** The spec's silence window: AUDIO_SILENCE_FRAMES (15) × 20 ms. */
export const DEFAULT_SILENCE_MS = 300;
/** Smart Turn's own decision threshold (pipecat-ai/smart-turn inference.py: `> 0.5`). */
export const SMART_TURN_THRESHOLD = 0.5;

/**
 * Words after which an English request cannot end: conjunctions, fillers, prepositions,
 * articles, possessives, auxiliaries and question words, and the particles of "turn on/off".
 */
const DANGLING_WORDS = new Set([
  // conjunctions and connectives
  "and",
  "or",
  "but",
  "so",
  "because",
  "then",
  "also",
  "plus",
  "if",
  "when",
  "while",
  "until",
  "unless",
  "than",
  // fillers
  "um",
  "umm",
  "uh",
  "uhh",
  "er",
  "erm",
  "hmm",
  "mm",
  "like",
  // prepositions
  "for",
  "to",
  "of",
  "in",
  "at",
  "from",
  "by",
  "with",
  "about",
  "into",
  "onto",
  "after",
  "before",
  "during",
  "between",
  // articles, determiners, possessives
  "the",
  "a",
  "an",
  "my",
  "your",
  "our",
  "their",
  "his",
  "her",
  "its",
  "some",
  "every",
  // auxiliaries and question words that need what follows
  "is",
  "are",
  "was",
  "were",
  "can",
  "could",
  "would",
  "will",
  "should",
  "please",
  "what",
  "whats",
  "how",
  "which",
  "where",
  "who",
  "why",
]);

/**
 * Word pairs at the end that are unfinished although each word alone may end a request
 * ("turn on" needs a target; "remind me" needs what and when; "set a timer" needs a duration).
 */
const DANGLING_ENDINGS = [
  /\b(?:turn|switch) (?:on|off)$/,
  /\bremind me$/,
  /\b(?:set|start) (?:a |the |an )?timer$/,
  /\b(?:tell|show|give) me$/,
  /\b(?:can|could|would|will) you(?: please)?$/,
  /\bi want$/,
  /\bi need$/,
  /\bi would like$/,
];

/** "please" ends many complete requests ("turn it off please"): only dangling at the start. */
const POLITE_END = /\S+ please$/;

/** A timer or reminder with a bare number and no unit ("set a timer for five"). */
const UNIT_MISSING =
  /\b(?:timer|remind me|in)\b.*\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|fifteen|twenty|thirty|forty|fifty|sixty|ninety)$/;

/** The text rule's verdict and why. */
export interface TranscriptClass {
  completion: TurnCompletion;
  /** Human-readable cause, for logs and the benchmark. */
  reason: string;
  /** The built-in engine recognizes the whole transcript as a command. */
  command: boolean;
}

/** Classifies a transcript by its words (see the module doc). Never throws. */
export function classifyTranscript(transcript: string): TranscriptClass {
  const raw = transcript.trim();
  const text = normalize(raw);
  if (text.length === 0) return { completion: "unknown", reason: "empty", command: false };
  const words = text.split(" ");
  const last = words[words.length - 1];
  if (/(?:\.\.\.|…|,|-|—)$/.test(raw)) {
    return { completion: "incomplete", reason: "trails off", command: false };
  }
  if (DANGLING_WORDS.has(last) && !(last === "please" && POLITE_END.test(text))) {
    return { completion: "incomplete", reason: `dangling word "${last}"`, command: false };
  }
  for (const ending of DANGLING_ENDINGS) {
    if (ending.test(text)) {
      return {
        completion: "incomplete",
        reason: `dangling "${ending.exec(text)![0]}"`,
        command: false,
      };
    }
  }
  if (UNIT_MISSING.test(text) && matchIntents(text).length === 0) {
    return { completion: "incomplete", reason: "number without a unit", command: false };
  }
  if (matchIntents(raw).length > 0) {
    return { completion: "complete", reason: "command recognized", command: true };
  }
  if (/[.?!]["')\]]?$/.test(raw)) {
    return { completion: "complete", reason: "sentence end", command: false };
  }
  return { completion: "unknown", reason: "no cue", command: false };
}

/** An audio end-of-turn model: P(the turn is complete) from the turn's audio (16 kHz). */
export interface TurnModel {
  readonly name: string;
  completeProbability(samples16k: Float32Array): Promise<number>;
}

/** What the gateway should do after a `pause`. */
export interface EndOfTurnDecision {
  completion: TurnCompletion;
  /** Silence the gateway should require, ms since the last speech sample. */
  silenceMs: number;
  reason: string;
  /** The audio model's probability of completeness, when one ran. */
  probability?: number;
}

/** Options of {@link EndOfTurn}. */
export interface EndOfTurnOptions {
  /** Smart Turn (or similar); without it the text rule decides alone. */
  model?: TurnModel;
  /** The `unknown` wait, ms: the configured silence window (AUDIO_SILENCE_FRAMES × 20). */
  defaultSilenceMs?: number;
}

/** Combines the text rule with an optional audio model; see the module doc. */
export class EndOfTurn {
  readonly model: TurnModel | undefined;
  readonly defaultSilenceMs: number;

  /** Throws a RangeError for a default silence outside 20..5000 ms. */
  constructor(options: EndOfTurnOptions = {}) {
    this.model = options.model;
    this.defaultSilenceMs = options.defaultSilenceMs ?? DEFAULT_SILENCE_MS;
    if (!(this.defaultSilenceMs >= 20 && this.defaultSilenceMs <= 5000)) {
      throw new RangeError(`defaultSilenceMs ${this.defaultSilenceMs} must be within 20..5000 ms`);
    }
  }

  /**
   * Decides from the transcript and, when a model is loaded and `samples16k` given, the audio
   * (the turn so far at 16 kHz). A model failure falls back to the text rule (never throws).
   */
  async decide(transcript: string, samples16k?: Float32Array): Promise<EndOfTurnDecision> {
    const text = classifyTranscript(transcript);
    if (text.completion === "incomplete") return this.#result("incomplete", text.reason);
    if (text.command) return this.#result("complete", text.reason, COMMAND_SILENCE_MS);
    if (this.model && samples16k && samples16k.length > 0) {
      let probability: number | undefined;
      try {
        probability = await this.model.completeProbability(samples16k);
      } catch {
        probability = undefined;
      }
      if (probability !== undefined && Number.isFinite(probability)) {
        const complete = probability > SMART_TURN_THRESHOLD;
        const reason = `${this.model.name} p=${probability.toFixed(2)}; text: ${text.reason}`;
        return complete
          ? { ...this.#result("complete", reason, SENTENCE_SILENCE_MS), probability }
          : { ...this.#result("incomplete", reason), probability };
      }
    }
    if (text.completion === "complete") {
      return this.#result("complete", text.reason, SENTENCE_SILENCE_MS);
    }
    return this.#result("unknown", text.reason);
  }

  #result(
    completion: TurnCompletion,
    reason: string,
    silenceMs = this.defaultSilenceMs,
  ): EndOfTurnDecision {
    const ms = completion === "incomplete"
      ? Math.max(INCOMPLETE_SILENCE_MS, this.defaultSilenceMs)
      : completion === "unknown"
      ? this.defaultSilenceMs
      : Math.min(silenceMs, this.defaultSilenceMs);
    return { completion, silenceMs: ms, reason };
  }
}
