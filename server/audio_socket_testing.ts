/**
 * What the audio socket's tests share: a pipeline under the test's control and a socket
 * listening on a free loopback port for the length of one test.
 */
import { type AudioSocketOptions, AudioSocketServer } from "./audio_socket.ts";
import { InferenceQueue, type QueueLimits } from "./inference_queue.ts";
import type { Pipeline, ReplySink, TurnResult, Utterance } from "./pipeline.ts";

/** A pipeline under the test's control: waits `delayMs` per stage, then answers 100 ms of tone. */
export class ScriptedPipeline implements Pipeline {
  readonly kind = "full";
  runs: string[] = [];
  interrupted: [number, number][] = [];
  constructor(readonly delayMs = 0) {}
  async run(
    utterance: Utterance,
    sink: ReplySink,
    options: { signal: AbortSignal; outputRate: number },
  ): Promise<TurnResult> {
    this.runs.push(utterance.turn);
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    const base = {
      transcript: "hi",
      reply: "Hello.",
      replyAudioMs: 100,
      memoryId: this.runs.length,
    };
    if (options.signal.aborted) return { ...base, cancelled: true, stages: {} };
    sink.transcript("hi");
    sink.reply("Hello.");
    sink.audio(new Uint8Array((options.outputRate / 10) * 2).fill(1), options.outputRate);
    return { ...base, cancelled: false, stages: { stt_ms: 1.5 } };
  }
  markInterrupted(memoryId: number, playedMs: number): void {
    this.interrupted.push([memoryId, playedMs]);
  }
}

/** Runs `fn` with an audio socket on 127.0.0.1 and a free port; closes it afterwards. */
export async function withServer(
  pipeline: Pipeline,
  fn: (server: AudioSocketServer) => Promise<void>,
  options:
    & { capacity?: number; limits?: Partial<QueueLimits> }
    & Partial<Omit<AudioSocketOptions, "pipeline" | "queue">> = {},
): Promise<void> {
  const { capacity, limits, ...rest } = options;
  const server = AudioSocketServer.listen({
    host: "127.0.0.1",
    port: 0,
    ...rest,
    pipeline,
    queue: new InferenceQueue({ capacity, limits }),
  });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}
