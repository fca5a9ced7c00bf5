/**
 * Measures whether Whisper gains from a batch axis on this machine (issue 14): N utterances that
 * end together transcribed one after another (what the server does) against one batched run —
 * the encoder on [N, 80, frames] and greedy decoding on [N, 1] steps with the key/value cache.
 * Runs the whisper-tiny-shaped model of random weights (scripts/lib/whisper_random.ts: real
 * FLOPs, meaningless text) through onnxruntime-node directly, with the server's session options,
 * so only the batch axis differs. Used by scripts/bench_capacity.ts.
 *
 * @example
 * ```ts
 * const rows = await measureSttBatching("models/whisper-tiny-random", { sizes: [1, 4, 8] });
 * ```
 */
import * as ort from "onnxruntime-node";
import {
  DEFAULT_THREADS,
  openWhisperSessions,
  type WhisperSessions,
} from "../../server/stt/whisper_sessions.ts";
import { median, round } from "../bench_stats.ts";

/** whisper-tiny's prompt: <|startoftranscript|><|en|><|transcribe|><|notimestamps|>. */
const PROMPT = [50258, 50259, 50359, 50363];
/** Tokens decoded per utterance: a 3 s command is 6–10 tokens (scripts/bench_stt.ts). */
const TOKENS = 10;
/** An arbitrary ordinary token fed back at each step (random weights: its value is irrelevant). */
const TOKEN = 440;

/** One batch size's timing, ms (medians over the runs). */
export interface BatchRow {
  utterances: number;
  encoder_frames: number;
  sequential_ms: number;
  batched_ms: number;
  /** sequential / batched: above 1 the batch is faster. */
  speedup: number;
  sequential_encoder_ms: number;
  batched_encoder_ms: number;
  sequential_decoder_ms: number;
  batched_decoder_ms: number;
}

function ids(batch: number, tokens: number[]): ort.Tensor {
  const data = BigInt64Array.from(
    { length: batch * tokens.length },
    (_, i) => BigInt(tokens[i % tokens.length]),
  );
  return new ort.Tensor("int64", data, [batch, tokens.length]);
}

/** Encoder + prompt step + cached steps for `batch` utterances at once; ms of each part. */
async function transcribeBatch(
  s: WhisperSessions,
  batch: number,
  frames: number,
): Promise<{ encoder: number; decoder: number }> {
  const { mels, heads, headDim } = s.config;
  const { pastDecoder, pastEncoder, presentDecoder, presentEncoder } = s.names;
  const features = new Float32Array(batch * mels * frames).map((_, i) => Math.sin(i) * 0.5);
  const started = performance.now();
  const encoded = await s.encoder.run({
    input_features: new ort.Tensor("float32", features, [batch, mels, frames]),
  });
  const encoderDone = performance.now();
  const empty = new ort.Tensor("float32", new Float32Array(0), [batch, heads, 0, headDim]);
  const feeds: Record<string, ort.Tensor> = {
    encoder_hidden_states: encoded.last_hidden_state,
    input_ids: ids(batch, PROMPT),
    use_cache_branch: new ort.Tensor("bool", Uint8Array.of(0), [1]),
  };
  for (const name of [...pastDecoder, ...pastEncoder]) feeds[name] = empty;
  let out = await s.decoder.run(feeds);
  pastEncoder.forEach((name, i) => feeds[name] = out[presentEncoder[i]]);
  feeds.use_cache_branch = new ort.Tensor("bool", Uint8Array.of(1), [1]);
  for (let step = 0; step < TOKENS; step++) {
    pastDecoder.forEach((name, i) => feeds[name] = out[presentDecoder[i]]);
    feeds.input_ids = ids(batch, [TOKEN]);
    out = await s.decoder.run(feeds);
  }
  return { encoder: encoderDone - started, decoder: performance.now() - encoderDone };
}

/**
 * For each batch size: `runs` rounds of (N sequential single runs) and (one batched run), after a
 * warm-up of each shape. `frames`: the encoder window (3000 = 30 s; 556 = a 3 s "fit" window).
 */
export async function measureSttBatching(
  modelDir: string,
  options: { sizes?: number[]; frames?: number; runs?: number; threads?: number } = {},
): Promise<BatchRow[]> {
  const sizes = options.sizes ?? [1, 4, 8];
  const frames = options.frames ?? 3000;
  const runs = options.runs ?? 3;
  // The server's session options and checks (whisper_sessions.ts), so only the batch axis differs.
  const sessions = await openWhisperSessions(modelDir, {
    encoderFrames: frames,
    threads: options.threads ?? DEFAULT_THREADS,
  });
  const rows: BatchRow[] = [];
  try {
    for (const n of sizes) {
      await transcribeBatch(sessions, 1, frames);
      await transcribeBatch(sessions, n, frames);
      const seq: { total: number; encoder: number; decoder: number }[] = [];
      const bat: { total: number; encoder: number; decoder: number }[] = [];
      for (let r = 0; r < runs; r++) {
        let encoder = 0;
        let decoder = 0;
        for (let i = 0; i < n; i++) {
          const one = await transcribeBatch(sessions, 1, frames);
          encoder += one.encoder;
          decoder += one.decoder;
        }
        seq.push({ total: encoder + decoder, encoder, decoder });
        const all = await transcribeBatch(sessions, n, frames);
        bat.push({ total: all.encoder + all.decoder, ...all });
      }
      const m = (
        xs: { total: number; encoder: number; decoder: number }[],
        k: "total" | "encoder" | "decoder",
      ) => round(median(xs.map((x) => x[k])), 1);
      rows.push({
        utterances: n,
        encoder_frames: frames,
        sequential_ms: m(seq, "total"),
        batched_ms: m(bat, "total"),
        speedup: round(m(seq, "total") / m(bat, "total"), 2),
        sequential_encoder_ms: m(seq, "encoder"),
        batched_encoder_ms: m(bat, "encoder"),
        sequential_decoder_ms: m(seq, "decoder"),
        batched_decoder_ms: m(bat, "decoder"),
      });
    }
  } finally {
    await sessions.encoder.release();
    await sessions.decoder.release();
  }
  return rows;
}

if (import.meta.main) {
  const dir = Deno.args[0] ?? "models/whisper-tiny-random";
  for (const frames of [3000, 556]) {
    console.log(JSON.stringify(await measureSttBatching(dir, { frames })));
  }
}
