/**
 * Piper voices (rhasspy/piper: VITS exported to ONNX) on onnxruntime-node, with phonemes from
 * espeak-ng — the same phonemizer Piper itself uses (piper-phonemize calls libespeak-ng in IPA
 * mode). A voice is two files from `deno task models` or the Piper voice list:
 * `<name>.onnx` and `<name>.onnx.json` (sample rate, espeak voice, scales, phoneme id map).
 *
 * Phoneme ids follow piper-phonemize: `^` (start), then every phoneme followed by `_` (pad),
 * then `$` (end); words keep their spaces and clauses their punctuation, since the voices were
 * trained with both.
 *
 * @example
 * ```ts
 * const voice = await PiperTts.load("models/piper/en_US-lessac-medium.onnx");
 * const { pcm } = await voice.synthesize("Hello there.", { rate: 16000 });
 * await voice.close();
 * ```
 */
import * as ort from "onnxruntime-node";
import { float32ToPcm, resample } from "../../shared/audio.ts";
import { feedAndCollect, type Speech, type TextToSpeech, TtsError } from "./types.ts";

/** espeak-ng phonemization of a sentence takes ~10 ms; a hung process is cut off here. */
const PHONEMIZE_TIMEOUT_MS = 10_000;
/** Piper's defaults when the voice file has no `inference` section. */
const DEFAULT_SCALES = { noise_scale: 0.667, length_scale: 1, noise_w: 0.8 };
/** Clause punctuation piper-phonemize keeps as phonemes. */
const CLAUSE = /[^,.;:!?]+(?:[,.;:!?]+(?=\s|$)|$)/g;

/** What a `<voice>.onnx.json` holds (the fields used here). */
export interface PiperVoiceConfig {
  audio: { sample_rate: number };
  espeak: { voice: string };
  inference?: { noise_scale?: number; length_scale?: number; noise_w?: number };
  num_speakers?: number;
  phoneme_id_map: Record<string, number[]>;
}

/** Phoneme ids for the model, the way piper-phonemize builds them. */
export function phonemeIds(phonemes: string, idMap: Record<string, number[]>): number[] {
  const bos = idMap["^"] ?? [];
  const eos = idMap["$"] ?? [];
  const pad = idMap["_"] ?? [];
  const ids = [...bos, ...pad];
  for (const phoneme of Array.from(phonemes.normalize("NFD"))) {
    const mapped = idMap[phoneme];
    if (mapped === undefined) continue; // piper-phonemize also skips unknown phonemes
    ids.push(...mapped, ...pad);
  }
  ids.push(...eos);
  return ids;
}

/** IPA phonemes of `text` from espeak-ng, clause punctuation put back as piper expects. */
export async function phonemize(text: string, espeakVoice: string): Promise<string> {
  const child = new Deno.Command("espeak-ng", {
    args: ["-q", "--ipa", "-v", espeakVoice],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(PHONEMIZE_TIMEOUT_MS),
  }).spawn();
  const output = await feedAndCollect(child, text);
  if (!output.success) {
    throw new TtsError("piper", `espeak-ng phonemizer exited with code ${output.code}`);
  }
  // espeak-ng prints one line per clause and drops the punctuation: put it back.
  const lines = new TextDecoder().decode(output.stdout).split("\n").map((l) => l.trim())
    .filter((l) => l.length > 0);
  const clauses = text.match(CLAUSE)?.map((c) => c.trim()).filter((c) => c.length > 0) ?? [];
  if (lines.length !== clauses.length) return lines.join(" ");
  return lines.map((line, i) => line + (/[,.;:!?]+$/.exec(clauses[i])?.[0] ?? "")).join(" ");
}

/** A Piper voice. */
export class PiperTts implements TextToSpeech {
  readonly name: string;
  readonly config: PiperVoiceConfig;
  #session: ort.InferenceSession;

  private constructor(name: string, config: PiperVoiceConfig, session: ort.InferenceSession) {
    this.name = name;
    this.config = config;
    this.#session = session;
  }

  /** Loads `<path>` and `<path>.json`; throws a {@link TtsError} naming the file and problem. */
  static async load(path: string, options: { threads?: number } = {}): Promise<PiperTts> {
    let config: PiperVoiceConfig;
    try {
      config = JSON.parse(await Deno.readTextFile(`${path}.json`));
    } catch (error) {
      throw new TtsError("piper", `voice config ${path}.json: ${(error as Error).message}`);
    }
    const rate = config?.audio?.sample_rate;
    if (!Number.isInteger(rate) || rate <= 0) {
      throw new TtsError(
        "piper",
        `${path}.json audio.sample_rate ${rate} is not a positive integer`,
      );
    }
    if (typeof config.phoneme_id_map !== "object" || config.phoneme_id_map === null) {
      throw new TtsError("piper", `${path}.json has no phoneme_id_map`);
    }
    if (!/^[A-Za-z0-9_+\-]{1,40}$/.test(config.espeak?.voice ?? "")) {
      throw new TtsError(
        "piper",
        `${path}.json espeak.voice ${config.espeak?.voice} is not a voice`,
      );
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(path, {
        intraOpNumThreads: options.threads ?? 2,
        graphOptimizationLevel: "all",
      });
    } catch (error) {
      throw new TtsError("piper", `cannot load ${path}: ${(error as Error).message}`);
    }
    const name = path.split("/").at(-1)!.replace(/\.onnx$/, "");
    return new PiperTts(`piper:${name}`, config, session);
  }

  async synthesize(text: string, options: { rate: number; signal?: AbortSignal }): Promise<Speech> {
    options.signal?.throwIfAborted();
    const phonemes = await phonemize(text, this.config.espeak.voice);
    options.signal?.throwIfAborted();
    const ids = phonemeIds(phonemes, this.config.phoneme_id_map);
    const scales = { ...DEFAULT_SCALES, ...this.config.inference };
    const feeds: Record<string, ort.Tensor> = {
      input: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]),
      input_lengths: new ort.Tensor("int64", BigInt64Array.from([BigInt(ids.length)]), [1]),
      scales: new ort.Tensor(
        "float32",
        Float32Array.from([scales.noise_scale, scales.length_scale, scales.noise_w]),
        [3],
      ),
    };
    if ((this.config.num_speakers ?? 1) > 1) {
      feeds.sid = new ort.Tensor("int64", BigInt64Array.from([0n]), [1]);
    }
    let samples: Float32Array;
    try {
      const outputs = await this.#session.run(feeds);
      const output = outputs[this.#session.outputNames[0]];
      samples = Float32Array.from(output.data as Float32Array);
      output.dispose();
    } catch (error) {
      throw new TtsError(this.name, `inference failed: ${(error as Error).message}`);
    }
    const voiceRate = this.config.audio.sample_rate;
    const out = voiceRate === options.rate ? samples : resample(samples, voiceRate, options.rate);
    return { pcm: float32ToPcm(out), rate: options.rate };
  }

  async close(): Promise<void> {
    await this.#session.release();
  }
}
