/**
 * Text to speech for the server: the {@link TextToSpeech} contract, the voices (espeak-ng built
 * in; Piper when a voice is under `models/piper/`) and the sentence splitter that lets the first
 * sentence play before the rest is made.
 */
import { EspeakTts } from "./espeak.ts";
import { type TextToSpeech, TtsError } from "./types.ts";

export { DEFAULT_ESPEAK_SPEED_WPM, EspeakTts } from "./espeak.ts";
export { MAX_SENTENCE_CHARS, SentenceSplitter, splitSentences } from "./sentences.ts";
export { type Speech, type TextToSpeech, TtsError } from "./types.ts";

/** Where `deno task models` puts Piper voices (`<name>.onnx` + `<name>.onnx.json`). */
export const PIPER_DIR = "models/piper";

/** Options of {@link createTts}. */
export interface TtsOptions {
  /** `auto` (default): Piper if a voice is found, else espeak-ng. */
  engine?: "auto" | "espeak" | "piper";
  /** espeak-ng voice name (TTS_VOICE), default `en-us`. */
  voice?: string;
  /** A Piper `.onnx` file (PIPER_VOICE); default: the first voice in {@link PIPER_DIR}. */
  piperVoice?: string;
}

/** Finds the first `*.onnx` in `dir` with its `.onnx.json` beside it. */
async function findVoice(dir: string): Promise<string | undefined> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  } catch {
    return undefined;
  }
  names.sort();
  const voice = names.find((n) => n.endsWith(".onnx") && names.includes(`${n}.json`));
  return voice === undefined ? undefined : `${dir}/${voice}`;
}

/** The voice the server speaks with. Piper's module (and onnxruntime) loads only when used. */
export async function createTts(options: TtsOptions = {}): Promise<TextToSpeech> {
  const engine = options.engine ?? "auto";
  if (engine !== "espeak") {
    const path = options.piperVoice ?? await findVoice(PIPER_DIR);
    if (path !== undefined) {
      const { PiperTts } = await import("./piper.ts");
      return await PiperTts.load(path);
    }
    if (engine === "piper") {
      throw new TtsError("piper", `no voice in ${PIPER_DIR} (<name>.onnx + <name>.onnx.json)`);
    }
  }
  // The server speaks many sentences: keep the next espeak-ng process ready (~6 ms each).
  return new EspeakTts({ voice: options.voice, prespawn: true });
}
