/**
 * A small AI-server double for the gateway benchmark only (scripts/bench_gateway.ts): a TCP server
 * speaking v2 (hello, turns, cancel, ping) or v1 (spec 4.2 frames) with the shared codec,
 * recording what the gateway sent and answering each utterance with audio the benchmark chooses
 * (none, or a long reply paced like TTS), which the real server with `PIPELINE=echo` does not.
 * Tests use the real server (tests/helpers/echo_server.ts, ai_tap.ts), never this double.
 *
 * @example
 * ```ts
 * const server = await startAiServerDouble({ protocol: "v2", reply: () => ({ samples, rate: 24000 }) });
 * // AI_SERVER_PORT=server.port for the gateway ...
 * const turn = await server.nextTurn(10_000);
 * await server.close();
 * ```
 */
import { concatBytes, float32ToPcm, pcmToFloat32 } from "../../shared/audio.ts";
import { delay } from "../../shared/async.ts";
import {
  type Decoded,
  encodeV1,
  encodeV2,
  FrameDecoder,
  type SampleRate,
} from "../../shared/frame_codec.ts";

/** What the gateway sent for one utterance. */
export interface ReceivedTurn {
  turn: string;
  device: string;
  rate: number;
  /** User audio as floats at `rate`. */
  samples(): Float32Array;
  /** Wall clock (performance.now()) when start / end arrived on the socket. */
  startedAt: number;
  endedAt?: number;
  /** Date.now() when end arrived. */
  endedAtWall?: number;
  /** The `end` message's ts (v2): when the gateway says the last speech was captured. */
  endTs?: number;
  /** v2 audio chunk sequence numbers in arrival order. */
  seqs: number[];
  cancelled?: { played_ms: number; at: number };
  /** v2: performance.now() of each `pause`, and how many audio bytes had arrived before it. */
  pauses: { at: number; bytes: number }[];
  protocol: 1 | 2;
}

/** The reply the double sends for a turn; `undefined` = say nothing (empty reply). */
export interface ReplyPlan {
  samples: Float32Array;
  rate: SampleRate;
  /** v2: chunk size in ms (default 200), sent `pace` ms apart (default 0 = as fast as possible). */
  chunkMs?: number;
  paceMs?: number;
  /** Wait before the first reply byte (default 0). */
  delayMs?: number;
  /** Never answer (for timeout tests). */
  silent?: boolean;
  /** v2: the `stages` of the reply's `end` (default `{ stt_ms: 1 }`). */
  stages?: Record<string, number>;
}

/** Options of {@link startAiServerDouble}. */
export interface AiServerDoubleOptions {
  protocol: "v1" | "v2";
  /** Port to listen on; 0 = any free one. */
  port?: number;
  reply?: (turn: ReceivedTurn) => ReplyPlan | undefined;
  /** v2: what the double's hello announces (default: stream, cancel, text, ping, stages). */
  capabilities?: string[];
}

/** A running double. */
export interface AiServerDouble {
  port: number;
  turns: ReceivedTurn[];
  /** Connections accepted so far. */
  connections: number;
  /** v2: the capabilities of the last gateway hello. */
  gatewayCapabilities: string[];
  /** Waits for turn `index` (default: the one after the last returned) to have ended. */
  nextTurn(timeoutMs: number, index?: number): Promise<ReceivedTurn>;
  /** Waits until turn `index` carries a cancel. */
  waitCancel(index: number, timeoutMs: number): Promise<ReceivedTurn>;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

class Turn implements ReceivedTurn {
  turn: string;
  device: string;
  rate: number;
  startedAt: number;
  endedAt?: number;
  endedAtWall?: number;
  endTs?: number;
  seqs: number[] = [];
  cancelled?: { played_ms: number; at: number };
  pauses: { at: number; bytes: number }[] = [];
  protocol: 1 | 2;
  chunks: Uint8Array[] = [];
  constructor(turn: string, device: string, rate: number, protocol: 1 | 2) {
    this.turn = turn;
    this.device = device;
    this.rate = rate;
    this.protocol = protocol;
    this.startedAt = performance.now();
  }
  samples(): Float32Array {
    return pcmToFloat32(concatBytes(this.chunks));
  }
}

/** Starts the double; see the module doc. */
export function startAiServerDouble(options: AiServerDoubleOptions): Promise<AiServerDouble> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: options.port ?? 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const turns: Turn[] = [];
  const conns = new Set<Deno.Conn>();
  const state = { connections: 0, gatewayCapabilities: [] as string[] };
  let closed = false;
  let cursor = 0;

  const serve = async (conn: Deno.Conn) => {
    conns.add(conn);
    state.connections++;
    const decoder = new FrameDecoder({ version: options.protocol === "v1" ? 1 : 2 });
    const byId = new Map<string, Turn>();
    let writing = Promise.resolve();
    const write = (bytes: Uint8Array) => {
      writing = writing.then(async () => {
        let n = 0;
        while (n < bytes.length) n += await conn.write(bytes.subarray(n));
      }).catch(() => {});
      return writing;
    };
    const answer = async (turn: Turn) => {
      const plan = options.reply?.(turn);
      if (plan?.silent) return;
      if (plan?.delayMs) await delay(plan.delayMs);
      if (turn.protocol === 1) {
        const pcm = plan ? float32ToPcm(plan.samples) : new Uint8Array(0);
        await write(encodeV1({
          device: turn.device,
          rate: plan?.rate ?? 48000,
          request: turn.turn,
          pcm,
        }));
        return;
      }
      if (plan) {
        const chunk = Math.round((plan.rate * (plan.chunkMs ?? 200)) / 1000);
        let seq = 0;
        await write(
          encodeV2({
            type: "text",
            turn: turn.turn,
            kind: "transcript",
            ts: Date.now(),
            text: "hello",
          }),
        );
        for (let at = 0; at < plan.samples.length; at += chunk) {
          if (turn.cancelled) return;
          await write(encodeV2({
            type: "audio",
            turn: turn.turn,
            seq: seq++,
            rate: plan.rate,
            ts: Date.now(),
            pcm: float32ToPcm(plan.samples.subarray(at, at + chunk)),
          }));
          if (plan.paceMs) await delay(plan.paceMs);
        }
      }
      if (!turn.cancelled) {
        await write(
          encodeV2({
            type: "end",
            turn: turn.turn,
            ts: Date.now(),
            stages: plan?.stages ?? { stt_ms: 1 },
          }),
        );
      }
    };
    const handle = (item: Decoded) => {
      if (item.version === 1) {
        const t = new Turn(item.frame.request, item.frame.device, item.frame.rate, 1);
        t.chunks.push(item.frame.pcm.slice());
        t.endedAt = performance.now();
        t.endedAtWall = Date.now();
        turns.push(t);
        void answer(t);
        return;
      }
      const m = item.message;
      switch (m.type) {
        case "hello":
          state.gatewayCapabilities = m.capabilities;
          void write(encodeV2({
            type: "hello",
            version: 2,
            role: "server",
            capabilities: options.capabilities ?? ["stream", "cancel", "text", "ping", "stages"],
            ts: Date.now(),
          }));
          break;
        case "ping":
          void write(encodeV2({ type: "pong", id: m.id, ts: Date.now() }));
          break;
        case "start": {
          const t = new Turn(m.turn, m.device, m.rate, 2);
          byId.set(m.turn, t);
          turns.push(t);
          break;
        }
        case "audio": {
          const t = byId.get(m.turn);
          if (t) {
            t.chunks.push(m.pcm.slice());
            t.seqs.push(m.seq);
          }
          break;
        }
        case "end": {
          const t = byId.get(m.turn);
          if (t) {
            t.endedAt = performance.now();
            t.endedAtWall = Date.now();
            t.endTs = m.ts;
            void answer(t);
          }
          break;
        }
        case "pause": {
          const t = byId.get(m.turn);
          if (t) {
            t.pauses.push({
              at: performance.now(),
              bytes: t.chunks.reduce((n, c) => n + c.length, 0),
            });
          }
          break;
        }
        case "cancel": {
          const t = byId.get(m.turn);
          if (t) t.cancelled = { played_ms: m.played_ms, at: performance.now() };
          break;
        }
      }
    };
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        for (const item of decoder.push(buffer.subarray(0, n))) handle(item);
      }
    } catch {
      // Closed by close() or the gateway.
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  };

  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        if (closed) {
          conn.close();
          break;
        }
        void serve(conn);
      }
    } catch {
      // Listener closed.
    }
  })();

  const poll = async <T>(
    find: () => T | undefined,
    timeoutMs: number,
    what: string,
  ): Promise<T> => {
    const end = performance.now() + timeoutMs;
    while (performance.now() < end) {
      const found = find();
      if (found !== undefined) return found;
      await delay(10);
    }
    throw new Error(`AI server double: ${what} within ${timeoutMs} ms`);
  };

  return Promise.resolve({
    port,
    turns,
    get connections() {
      return state.connections;
    },
    get gatewayCapabilities() {
      return state.gatewayCapabilities;
    },
    async nextTurn(timeoutMs, index = cursor) {
      const turn = await poll(
        () => {
          const t = turns[index];
          return t?.endedAt !== undefined ? t : undefined;
        },
        timeoutMs,
        `no ended turn #${index}`,
      );
      cursor = index + 1;
      return turn;
    },
    waitCancel(index, timeoutMs) {
      return poll(
        () => (turns[index]?.cancelled ? turns[index] : undefined),
        timeoutMs,
        `no cancel of turn #${index}`,
      );
    },
    async close() {
      if (closed) return; // closing twice (a test's own close, then its cleanup) is fine
      closed = true;
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
      await accepting;
    },
  });
}
