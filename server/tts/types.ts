/** The text-to-speech contract the pipeline codes against (espeak-ng, Piper, test stubs). */

/** One sentence of synthesized speech. */
export interface Speech {
  /** int16 mono little-endian PCM at `rate`. */
  pcm: Uint8Array;
  rate: number;
}

/** Turns text into speech at the rate the caller asks for. */
export interface TextToSpeech {
  /** A short name for logs and the server status, e.g. `espeak-ng:en-us`. */
  readonly name: string;
  synthesize(text: string, options: { rate: number; signal?: AbortSignal }): Promise<Speech>;
  /** Releases processes or sessions the engine keeps between sentences. */
  close?(): Promise<void>;
}

/** Synthesis failed: names the engine and what it said. */
export class TtsError extends Error {
  override name = "TtsError";
  constructor(readonly engine: string, message: string) {
    super(`${engine}: ${message}`);
  }
}

/**
 * Writes `text` to a spawned process's stdin, closes it, and waits for its output. A process that
 * died before reading is reported by the exit status in the output, not by the failed write.
 */
export async function feedAndCollect(
  child: Deno.ChildProcess,
  text: string,
): Promise<Deno.CommandOutput> {
  const writer = child.stdin.getWriter();
  try {
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
  } catch {
    // The process died or was killed; its exit status says why.
  }
  return await child.output();
}
