/**
 * A loopback TCP relay between the gateway and the real AI server that decodes a copy of what
 * the gateway sends (v2), so cross-process tests and the turn-taking benchmark can say exactly
 * what reached the server: which turns, how much audio each carried, their `end` and any
 * `cancel` with `played_ms`. Bytes pass through unchanged in both directions.
 *
 * @example
 * ```ts
 * const tap = await startAiTap(server.audioPort);
 * // gateway: AI_SERVER_PORT = tap.port
 * tap.turns; // [{ id: "t1", device: "kitchen", audioMs: 2140, ended: true }]
 * await tap.close();
 * ```
 */
import { FrameDecoder } from "../../shared/frame_codec.ts";
import { freePort } from "./ports.ts";

/** Bytes per int16 sample. */
const BYTES_PER_SAMPLE = 2;

/** One turn as the server received it. */
export interface TappedTurn {
  id: string;
  device: string;
  rate: number;
  /** performance.now() of its `start`. */
  startedAt: number;
  /** Audio received, ms at the turn's rate. */
  audioMs: number;
  ended: boolean;
  /** `played_ms` of its `cancel`, if one came. */
  cancelledPlayedMs?: number;
  /** performance.now() of its `cancel`. */
  cancelledAt?: number;
  /** Reply audio the server sent for it, ms, and whether its reply `end` (or an error) came. */
  replyMs: number;
  replyEnded: boolean;
  error?: string;
}

/** A running relay. */
export interface AiTap {
  port: number;
  readonly turns: TappedTurn[];
  /** Turns of `device`, oldest first. */
  turnsOf(device: string): TappedTurn[];
  close(): Promise<void>;
}

async function pump(
  from: Deno.TcpConn,
  to: Deno.TcpConn,
  onChunk?: (chunk: Uint8Array) => void,
): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await from.read(buffer);
      if (n === null) break;
      const chunk = buffer.subarray(0, n);
      onChunk?.(chunk);
      let written = 0;
      while (written < n) written += await to.write(chunk.subarray(written));
    }
  } catch {
    // Either side closed: the other is closed below.
  }
  try {
    to.closeWrite();
  } catch {
    // Already closed.
  }
}

/** Listens on a free loopback port and relays every connection to `127.0.0.1:targetPort`. */
export async function startAiTap(targetPort: number): Promise<AiTap> {
  const port = await freePort();
  const listener = Deno.listen({ hostname: "127.0.0.1", port, transport: "tcp" });
  const turns: TappedTurn[] = [];
  const conns = new Set<Deno.TcpConn>();
  const relays: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const client of listener) {
      let server: Deno.TcpConn;
      try {
        server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      } catch {
        client.close();
        continue;
      }
      conns.add(client);
      conns.add(server);
      const decoder = new FrameDecoder({ version: 2 });
      const byId = new Map<string, TappedTurn>();
      const observe = (chunk: Uint8Array) => {
        let decoded;
        try {
          decoded = decoder.push(chunk);
        } catch {
          return; // Not ours to judge: the server answers bad input itself.
        }
        for (const item of decoded) {
          if (item.version !== 2) continue;
          const m = item.message;
          if (m.type === "start") {
            const turn: TappedTurn = {
              id: m.turn,
              device: m.device,
              rate: m.rate,
              startedAt: performance.now(),
              audioMs: 0,
              ended: false,
              replyMs: 0,
              replyEnded: false,
            };
            byId.set(m.turn, turn);
            turns.push(turn);
          } else if (m.type === "audio") {
            const turn = byId.get(m.turn);
            if (turn) turn.audioMs += (m.pcm.length / BYTES_PER_SAMPLE / m.rate) * 1000;
          } else if (m.type === "end") {
            const turn = byId.get(m.turn);
            if (turn) turn.ended = true;
          } else if (m.type === "cancel") {
            const turn = byId.get(m.turn);
            if (turn) {
              turn.cancelledPlayedMs = m.played_ms;
              turn.cancelledAt = performance.now();
            }
          }
        }
      };
      const replies = new FrameDecoder({ version: 2 });
      const observeReply = (chunk: Uint8Array) => {
        let decoded;
        try {
          decoded = replies.push(chunk);
        } catch {
          return;
        }
        for (const item of decoded) {
          if (item.version !== 2) continue;
          const m = item.message;
          if (m.type !== "audio" && m.type !== "end" && m.type !== "error") continue;
          const turn = m.turn === undefined ? undefined : byId.get(m.turn);
          if (!turn) continue;
          if (m.type === "audio") turn.replyMs += (m.pcm.length / BYTES_PER_SAMPLE / m.rate) * 1000;
          else turn.replyEnded = true;
          if (m.type === "error") turn.error = `${m.code}: ${m.message}`;
        }
      };
      relays.push(
        Promise.all([pump(client, server, observe), pump(server, client, observeReply)]).then(
          () => {
            for (const c of [client, server]) {
              conns.delete(c);
              try {
                c.close();
              } catch {
                // Already closed.
              }
            }
          },
        ),
      );
    }
  })().catch(() => {});
  return {
    port,
    turns,
    turnsOf: (device) => turns.filter((t) => t.device === device),
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
      await accepting;
      await Promise.all(relays);
    },
  };
}
