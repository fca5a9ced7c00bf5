/**
 * What the server does with one utterance (spec 6.2/6.4), behind one interface so the socket
 * does not care which: `echo` answers with the utterance's own audio (the spec's phase-1
 * passthrough, for measuring the transport), `full` runs STT → assistant → TTS, synthesizing
 * the reply sentence by sentence so the first sentence is sent before the rest is made.
 *
 * A pipeline never throws for a cancelled turn: it checks the turn's signal at each stage
 * boundary (after STT, between sentences) and returns `{ cancelled: true }`.
 */
import { float32ToPcm, pcmToFloat32, resample, roundMs, SPEECH_RATE } from "../shared/audio.ts";
import type { Logger } from "../shared/log.ts";
import type { Assistant } from "./assistant/assistant.ts";
import { EndOfTurn, type EndOfTurnDecision } from "./end_of_turn.ts";
import type { SpeechToText, Transcript } from "./stt/types.ts";
import { SentenceSplitter } from "./tts/sentences.ts";
import type { TextToSpeech } from "./tts/types.ts";

/**
 * Longest reply audio chunk: one sentence can be several seconds; 500 ms pieces let the
 * gateway start decoding and playing while the rest of the sentence is still arriving.
 */
export const REPLY_CHUNK_MS = 500;

/** One utterance, whole (v1 request body, or a v2 turn's audio chunks joined). */
export interface Utterance {
  device: string;
  turn: string;
  /** int16 mono little-endian PCM at `rate`. */
  pcm: Uint8Array;
  rate: number;
  /** When the utterance ended, ms since the epoch (for memory). */
  endedAt: number;
}

/** Where a running turn sends its results; calls return at once (the socket queues writes). */
export interface ReplySink {
  transcript(text: string): void;
  /** One sentence of the reply, sent before its audio. */
  reply(text: string): void;
  /** A chunk of reply audio (int16 mono LE PCM at `rate`). */
  audio(pcm: Uint8Array, rate: number): void;
}

/** How a turn went. */
export interface TurnResult {
  cancelled: boolean;
  transcript: string;
  reply: string;
  /** Per-stage durations in ms, sent on the v2 `end` message. */
  stages: Record<string, number>;
  /** Length of the reply audio sent. */
  replyAudioMs: number;
  /** Row id in the conversation memory (full pipeline), to record a later barge-in. */
  memoryId?: number;
  /**
   * A staged turn ({@link RunOptions.staged}): applies its side effects and writes its memory
   * row, once; returns the row id. Not calling it drops them (a superseded turn).
   */
  commit?: () => number | undefined;
}

/** STT started ahead of a turn's end (a v2 `pause`); times are performance.now() ms. */
export interface SpeculativeStt {
  heard: Transcript;
  startedAt: number;
  doneAt: number;
}

/** Options of {@link Pipeline.run}. */
export interface RunOptions {
  signal: AbortSignal;
  outputRate: number;
  /**
   * STT already started on exactly this utterance's audio ({@link Pipeline.speculate}): awaited
   * instead of transcribing again; if it failed, STT runs as usual.
   */
  speculation?: Promise<SpeculativeStt>;
  /**
   * The utterances of the turns that will run next (the queue's order): their STT may run in
   * one batch with this turn's, and is then kept for when they run.
   */
  upcoming?: (limit: number) => Utterance[];
  /**
   * The turn may still be continued (v2 `continue`): its side effects and memory row are staged
   * and happen only when the caller calls the result's `commit`.
   */
  staged?: boolean;
}

/** Runs one turn. */
export interface Pipeline {
  readonly kind: "echo" | "full";
  run(utterance: Utterance, sink: ReplySink, options: RunOptions): Promise<TurnResult>;
  /**
   * Starts STT on the audio of a turn so far, before its end (absent or `undefined`: this
   * pipeline has no STT to start early). Aborting `options.signal` discards it. The assistant
   * runs ahead only as a staged {@link run} (v2_speculation.ts): its side effects wait for the
   * result's `commit`.
   */
  speculate?(
    pcm: Uint8Array,
    rate: number,
    options: { signal: AbortSignal },
  ): Promise<SpeculativeStt> | undefined;
  /** Records that only `playedMs` of a finished turn's reply was heard. */
  markInterrupted(memoryId: number, playedMs: number): void;
  /**
   * The end-of-turn hint for a speculative transcript (`eot`, server/end_of_turn.ts); absent:
   * this pipeline gives none. `pcm` is the turn's audio so far, for an audio model.
   */
  endOfTurn?(transcript: string, pcm: Uint8Array, rate: number): Promise<EndOfTurnDecision>;
}

/** Sends `pcm` as chunks of at most {@link REPLY_CHUNK_MS}; returns its duration in ms. */
export function sendChunked(sink: ReplySink, pcm: Uint8Array, rate: number): number {
  const chunkBytes = Math.floor((rate * REPLY_CHUNK_MS) / 1000) * 2;
  for (let at = 0; at < pcm.length; at += chunkBytes) {
    sink.audio(pcm.subarray(at, Math.min(pcm.length, at + chunkBytes)), rate);
  }
  return (pcm.length / 2 / rate) * 1000;
}

function toRate(pcm: Uint8Array, from: number, to: number): Uint8Array {
  if (from === to) return pcm;
  return float32ToPcm(resample(pcmToFloat32(pcm), from, to));
}

/** int16 PCM at `rate` → Whisper's 16 kHz floats. */
function sttSamples(pcm: Uint8Array, rate: number): Float32Array {
  const samples = pcmToFloat32(pcm);
  return rate === SPEECH_RATE ? samples : resample(samples, rate, SPEECH_RATE);
}

/** Whisper hears at most one 30 s window per run (16 kHz samples). */
const STT_WINDOW_SAMPLES = 30 * SPEECH_RATE;

/**
 * Transcribes `samples` (16 kHz) of any length: one run up to 30 s, else one run per 30 s window,
 * in order, with the texts joined and the timings summed (a v2 turn with `continue` may carry
 * up to 120 s, docs/turn_taking.md "Long requests past 30 s").
 */
export async function transcribeLong(
  stt: SpeechToText,
  samples: Float32Array,
  options: { signal: AbortSignal },
): Promise<Transcript> {
  if (samples.length <= STT_WINDOW_SAMPLES) return await stt.transcribe(samples, options);
  const texts: string[] = [];
  const timings = { frontend_ms: 0, encoder_ms: 0, decoder_ms: 0, tokens: 0 };
  for (let at = 0; at < samples.length; at += STT_WINDOW_SAMPLES) {
    const heard = await stt.transcribe(samples.slice(at, at + STT_WINDOW_SAMPLES), options);
    if (heard.text.trim().length > 0) texts.push(heard.text.trim());
    timings.frontend_ms += heard.timings.frontend_ms;
    timings.encoder_ms += heard.timings.encoder_ms;
    timings.decoder_ms += heard.timings.decoder_ms;
    timings.tokens += heard.timings.tokens;
  }
  return { text: texts.join(" "), timings };
}

/** PIPELINE=echo: the reply is the utterance itself, at the output rate. */
export class EchoPipeline implements Pipeline {
  readonly kind = "echo";

  run(utterance: Utterance, sink: ReplySink, options: RunOptions): Promise<TurnResult> {
    const started = performance.now();
    if (options.signal.aborted) {
      return Promise.resolve({
        cancelled: true,
        transcript: "",
        reply: "",
        stages: {},
        replyAudioMs: 0,
      });
    }
    const pcm = toRate(utterance.pcm, utterance.rate, options.outputRate);
    const replyAudioMs = sendChunked(sink, pcm, options.outputRate);
    return Promise.resolve({
      cancelled: false,
      transcript: "",
      reply: "",
      stages: { echo_ms: roundMs(performance.now() - started) },
      replyAudioMs,
    });
  }

  markInterrupted(): void {}
}

/** Options of {@link FullPipeline}. */
export interface FullPipelineOptions {
  stt: SpeechToText;
  assistant: Assistant;
  tts: TextToSpeech;
  log?: Logger;
  /** Most utterances per batched STT run (default {@link DEFAULT_STT_BATCH}; 1: no batching). */
  sttBatch?: number;
  /** End of turn from meaning (default: the text rule alone, 300 ms window). */
  endOfTurn?: EndOfTurn;
}

/**
 * Most utterances transcribed in one batched Whisper run: measured on whisper-tiny's shape on 2
 * cores, 8 at once take ≈ 1/3 of the time of 8 one after another (bench/capacity.json).
 */
export const DEFAULT_STT_BATCH = 8;

/** PIPELINE=full: Whisper → assistant → sentence-streamed TTS, every turn remembered. */
export class FullPipeline implements Pipeline {
  readonly kind = "full";
  #stt: SpeechToText;
  #assistant: Assistant;
  #tts: TextToSpeech;
  #log: Logger | undefined;
  #sttBatch: number;
  #endOfTurn: EndOfTurn;
  /** STT done ahead, in a batch with an earlier turn's, for utterances still queued. */
  #prefetched = new WeakMap<Utterance, Promise<Transcript>>();

  constructor(options: FullPipelineOptions) {
    this.#sttBatch = options.sttBatch ?? DEFAULT_STT_BATCH;
    this.#stt = options.stt;
    this.#assistant = options.assistant;
    this.#tts = options.tts;
    this.#log = options.log;
    this.#endOfTurn = options.endOfTurn ?? new EndOfTurn();
  }

  endOfTurn(transcript: string, pcm: Uint8Array, rate: number): Promise<EndOfTurnDecision> {
    // The audio model (if any) hears the turn at 16 kHz; the text rule needs no audio.
    const samples = this.#endOfTurn.model ? sttSamples(pcm, rate) : undefined;
    return this.#endOfTurn.decide(transcript, samples);
  }

  speculate(
    pcm: Uint8Array,
    rate: number,
    options: { signal: AbortSignal },
  ): Promise<SpeculativeStt> {
    const startedAt = performance.now();
    return transcribeLong(this.#stt, sttSamples(pcm, rate), options).then((heard) => ({
      heard,
      startedAt,
      doneAt: performance.now(),
    }));
  }

  async run(utterance: Utterance, sink: ReplySink, options: RunOptions): Promise<TurnResult> {
    const { signal, outputRate } = options;
    const started = performance.now();
    const stages: Record<string, number> = {};
    let transcript = "";
    let reply = "";
    let replyAudioMs = 0;
    let cancelled = false;
    const effects = options.staged ? this.#assistant.stage(utterance.device) : undefined;
    try {
      // An utterance without audio is a gateway fetching what is waiting for the device (a due
      // timer's announcement, see server/assistant/timers.ts): nothing to transcribe.
      if (!signal.aborted && utterance.pcm.length > 0) {
        const sttStarted = performance.now();
        const speculated = options.speculation &&
          await this.#speculated(options.speculation, signal);
        let heard: Transcript;
        if (speculated) {
          heard = speculated.heard;
          stages.stt_speculative = 1;
          stages.stt_total_ms = roundMs(speculated.doneAt - speculated.startedAt);
        } else {
          stages.stt_speculative = 0;
          heard = await this.#transcribe(utterance, signal, options.upcoming);
        }
        // With a speculation, only the part of STT the user waited for after the end.
        stages.stt_ms = roundMs(performance.now() - sttStarted);
        stages.stt_batch = heard.timings.batch ?? 1;
        stages.stt_frontend_ms = roundMs(heard.timings.frontend_ms);
        stages.stt_encoder_ms = roundMs(heard.timings.encoder_ms);
        stages.stt_decoder_ms = roundMs(heard.timings.decoder_ms);
        transcript = heard.text.trim();
        if (transcript.length > 0) sink.transcript(transcript);
      }
      // Stage boundary: after STT.
      if (signal.aborted) {
        cancelled = true;
      } else {
        const assistantStarted = performance.now();
        const splitter = new SentenceSplitter();
        const speak = async (sentence: string) => {
          if (signal.aborted) return;
          const ttsStarted = performance.now();
          const speech = await this.#tts.synthesize(sentence, { rate: outputRate, signal });
          // Stage boundary: between sentences (a cancelled turn sends no more audio).
          if (signal.aborted) return;
          stages.tts_first_ms ??= roundMs(performance.now() - ttsStarted);
          stages.first_audio_ms ??= roundMs(performance.now() - started);
          reply += (reply.length > 0 ? " " : "") + sentence;
          sink.reply(sentence);
          replyAudioMs += sendChunked(sink, speech.pcm, speech.rate);
        };
        for await (
          const piece of this.#assistant.respond(utterance.device, transcript, { signal, effects })
        ) {
          stages.assistant_first_ms ??= roundMs(performance.now() - assistantStarted);
          for (const sentence of splitter.push(piece)) await speak(sentence);
          if (signal.aborted) break;
        }
        for (const sentence of splitter.flush()) await speak(sentence);
        cancelled = signal.aborted;
      }
    } catch (error) {
      if (!signal.aborted) throw error;
      cancelled = true;
    }
    stages.total_ms = roundMs(performance.now() - started);
    const record = () => {
      for (const error of effects?.apply() ?? []) {
        this.#log?.warn("staged effect failed at commit", { turn: utterance.turn, error });
      }
      if (transcript.length === 0 && reply.length === 0) return undefined;
      return this.#assistant.record({
        device: utterance.device,
        turn: utterance.turn,
        at: utterance.endedAt,
        transcript,
        reply,
        timings: stages,
        replyAudioMs: roundMs(replyAudioMs),
        interrupted: cancelled,
        playedMs: cancelled ? 0 : null,
      });
    };
    this.#log?.debug("turn done", { device: utterance.device, turn: utterance.turn, stages });
    const result: TurnResult = { cancelled, transcript, reply, stages, replyAudioMs };
    if (effects !== undefined) {
      let memoryId: number | undefined;
      let committed = false;
      result.commit = () => {
        if (!committed) memoryId = record();
        committed = true;
        return memoryId;
      };
      return result;
    }
    // Let the socket write the reply audio queued above before the (synchronous) SQLite write.
    await new Promise((resolve) => setTimeout(resolve, 0));
    result.memoryId = record();
    return result;
  }

  markInterrupted(memoryId: number, playedMs: number): void {
    this.#assistant.markInterrupted(memoryId, playedMs);
  }

  /**
   * This utterance's transcript: done ahead in an earlier turn's batch, or now — in one batch
   * with the next queued utterances (up to the batch size) when the STT has a batch axis.
   */
  async #transcribe(
    utterance: Utterance,
    signal: AbortSignal,
    upcoming: ((limit: number) => Utterance[]) | undefined,
  ): Promise<Transcript> {
    const ahead = this.#prefetched.get(utterance);
    if (ahead !== undefined) {
      this.#prefetched.delete(utterance);
      try {
        return await ahead;
      } catch (error) {
        // The batch was aborted with the turn it ran for: transcribe this one now.
        if (signal.aborted) throw error;
      }
    }
    const own = sttSamples(utterance.pcm, utterance.rate);
    if (own.length > STT_WINDOW_SAMPLES) return await transcribeLong(this.#stt, own, { signal });
    const others = this.#sttBatch > 1 && this.#stt.transcribeBatch && upcoming
      ? upcoming(2 * this.#sttBatch).filter((u) => u.pcm.length > 0 && !this.#prefetched.has(u))
        .slice(0, this.#sttBatch - 1)
      : [];
    if (others.length === 0) return await this.#stt.transcribe(own, { signal });
    const batch = this.#stt.transcribeBatch!(
      [own, ...others.map((u) => sttSamples(u.pcm, u.rate))],
      { signal },
    );
    others.forEach((u, i) => {
      const result = batch.then((all) => all[i + 1]);
      result.catch(() => {});
      this.#prefetched.set(u, result);
    });
    return (await batch)[0];
  }

  /** The speculation's result; `undefined` (STT runs again) if it failed for its own reasons. */
  async #speculated(
    speculation: Promise<SpeculativeStt>,
    signal: AbortSignal,
  ): Promise<SpeculativeStt | undefined> {
    try {
      return await speculation;
    } catch (error) {
      if (signal.aborted) throw error;
      this.#log?.warn("speculative STT failed; transcribing again", { error });
      return undefined;
    }
  }
}
