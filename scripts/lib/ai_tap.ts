/**
 * A loopback TCP relay between the gateway and the real AI server that decodes a copy of what
 * each side sends (v2, or v1 frames), so cross-process tests, the gateway's link tests and the
 * turn-taking benchmark can say exactly what reached the server: which turns, how much audio
 * each carried in which chunks, its pauses, its `end` and any `cancel` with `played_ms`, and what
 * the server answered. Bytes pass through unchanged in both directions.
 *
 * Network faults on demand, for tests of what the real server never does on its own: a slow
 * link back to the gateway ({@link AiTap.limitReplies}: a reply that trickles in, or none at
 * all), a connection cut mid-turn ({@link AiTap.cut}: bytes in flight are lost), and a link that
 * dies on every turn before the server hears its end ({@link AiTap.cutOnEnd}).
 *
 * @example
 * ```ts
 * const tap = await startAiTap(server.audioPort);
 * // gateway: AI_SERVER_PORT = tap.port
 * tap.turns; // [{ id: "t1", device: "kitchen", audioMs: 2140, ended: true, ... }]
 * await tap.close();
 * ```
 */
import { delay } from "../../shared/async.ts";
import { FrameDecoder } from "../../shared/frame_codec.ts";
import { freePort } from "./ports.ts";

/** Bytes per int16 sample. */
const BYTES_PER_SAMPLE = 2;
/** A limited reply is written in slices this often (ms): fine enough for 20 ms audio frames. */
const PACE_TICK_MS = 20;

/** One turn as the server received it. */
export interface TappedTurn {
  id: string;
  device: string;
  rate: number;
  /** The protocol it came in: v2 messages, or one v1 frame. */
  protocol: 1 | 2;
  /** v2: the turn its `start` says it continues. */
  continues?: string;
  /** performance.now() of its `start`. */
  startedAt: number;
  /** Audio received, ms at the turn's rate. */
  audioMs: number;
  /** Audio received, int16 PCM bytes. */
  audioBytes: number;
  /** v2: the `seq` of each audio chunk, in arrival order. */
  seqs: number[];
  /** v2: for each `pause`, the audio bytes received before it. */
  pauses: number[];
  ended: boolean;
  /** The `ts` of its `end` (v2): when the gateway says the last speech was captured. */
  endTs?: number;
  /** `played_ms` of its `cancel`, if one came. */
  cancelledPlayedMs?: number;
  /** performance.now() of its `cancel`. */
  cancelledAt?: number;
  /** Reply audio the server sent for it, ms and int16 bytes, and the rate of its last chunk. */
  replyMs: number;
  replyBytes: number;
  replyRate?: number;
  /** Whether its reply `end` (or an error, or the v1 answer frame) came. */
  replyEnded: boolean;
  /** The `stages` of its reply `end` (v2). */
  stages?: Record<string, number>;
  /** The reply audio itself (int16 PCM chunks), with {@link AiTapOptions.keepReplyAudio}. */
  replyAudio?: Uint8Array[];
  error?: string;
}

/** Options of {@link startAiTap}. */
export interface AiTapOptions {
  /** Keep each turn's reply audio in {@link TappedTurn.replyAudio} (tests comparing it). */
  keepReplyAudio?: boolean;
}

/** A running relay. */
export interface AiTap {
  port: number;
  readonly turns: TappedTurn[];
  /** Connections relayed so far. */
  readonly connections: number;
  /** The capabilities of the last gateway `hello` (v2). */
  readonly gatewayCapabilities: string[];
  /** Turns of `device`, oldest first. */
  turnsOf(device: string): TappedTurn[];
  /**
   * Server-to-gateway bytes at most this fast (bytes/s; 0 holds them back, undefined lets them
   * through at once, the default). Applies to connections open now and later.
   */
  limitReplies(bytesPerSecond: number | undefined): void;
  /** Drops every relayed connection now, on both sides; bytes held back are lost. */
  cut(): void;
  /** While on, a new gateway connection is closed at once (the server stays unreachable). */
  refuse(on: boolean): void;
  /**
   * While on, a connection is dropped the moment the gateway's `end` of a turn reaches the
   * relay, before the server gets it (the turn is recorded as ended).
   */
  cutOnEnd(on: boolean): void;
  close(): Promise<void>;
}

function closeQuietly(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

async function writeAll(to: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await to.write(bytes.subarray(written));
}

/**
 * Copies `from` to `to` until either closes; `limit` (bytes/s, see {@link AiTap.limitReplies})
 * paces the copy, `open` says whether the relay still stands (a held copy waits while it does).
 */
async function pump(
  from: Deno.TcpConn,
  to: Deno.TcpConn,
  onChunk: (chunk: Uint8Array) => void,
  pacing?: { limit: () => number | undefined; open: () => boolean },
): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await from.read(buffer);
      if (n === null) break;
      const chunk = buffer.subarray(0, n);
      onChunk(chunk);
      let at = 0;
      while (at < n) {
        const limit = pacing?.limit();
        if (limit === undefined) {
          await writeAll(to, chunk.subarray(at));
          break;
        }
        if (!pacing!.open()) return;
        const slice = Math.round((limit * PACE_TICK_MS) / 1000);
        if (slice > 0) {
          await writeAll(to, chunk.subarray(at, at + slice));
          at += slice;
        }
        await delay(PACE_TICK_MS);
      }
    }
  } catch {
    // Either side closed: the relay closes the other.
  }
}

function newTurn(id: string, device: string, rate: number, protocol: 1 | 2): TappedTurn {
  return {
    id,
    device,
    rate,
    protocol,
    startedAt: performance.now(),
    audioMs: 0,
    audioBytes: 0,
    seqs: [],
    pauses: [],
    ended: false,
    replyMs: 0,
    replyBytes: 0,
    replyEnded: false,
  };
}

/** Listens on a free loopback port and relays every connection to `127.0.0.1:targetPort`. */
export async function startAiTap(targetPort: number, options: AiTapOptions = {}): Promise<AiTap> {
  const port = await freePort();
  const listener = Deno.listen({ hostname: "127.0.0.1", port, transport: "tcp" });
  const turns: TappedTurn[] = [];
  const conns = new Set<Deno.TcpConn>();
  const relays: Promise<void>[] = [];
  const state = {
    connections: 0,
    gatewayCapabilities: [] as string[],
    replyLimit: undefined as number | undefined,
    cutOnEnd: false,
    refuse: false,
  };
  const accepting = (async () => {
    for await (const client of listener) {
      if (state.refuse) {
        closeQuietly(client);
        continue;
      }
      let server: Deno.TcpConn;
      try {
        server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      } catch {
        client.close();
        continue;
      }
      state.connections++;
      conns.add(client);
      conns.add(server);
      // Either side closing (or a cut) ends the relay: both connections close.
      const end = () => {
        for (const c of [client, server]) {
          conns.delete(c);
          closeQuietly(c);
        }
      };
      // The first line picks v1 or v2 for both directions, as on the server.
      const decoder = new FrameDecoder({ version: "auto" });
      const byId = new Map<string, TappedTurn>();
      const addAudio = (turn: TappedTurn | undefined, bytes: number, rate: number) => {
        if (!turn) return;
        turn.audioBytes += bytes;
        turn.audioMs += (bytes / BYTES_PER_SAMPLE / rate) * 1000;
      };
      const observe = (chunk: Uint8Array) => {
        let decoded;
        try {
          decoded = decoder.push(chunk);
        } catch {
          return; // Not ours to judge: the server answers bad input itself.
        }
        for (const item of decoded) {
          if (item.version === 1) {
            const { request, device, rate, pcm } = item.frame;
            const turn = newTurn(request, device, rate, 1);
            addAudio(turn, pcm.length, rate);
            turn.ended = true;
            byId.set(request, turn);
            turns.push(turn);
            continue;
          }
          const m = item.message;
          if (m.type === "hello") {
            state.gatewayCapabilities = m.capabilities;
          } else if (m.type === "start") {
            const turn = newTurn(m.turn, m.device, m.rate, 2);
            if (m.continues !== undefined) turn.continues = m.continues;
            byId.set(m.turn, turn);
            turns.push(turn);
          } else if (m.type === "audio") {
            const turn = byId.get(m.turn);
            turn?.seqs.push(m.seq);
            addAudio(turn, m.pcm.length, m.rate);
          } else if (m.type === "pause") {
            const turn = byId.get(m.turn);
            turn?.pauses.push(turn.audioBytes);
          } else if (m.type === "end") {
            const turn = byId.get(m.turn);
            if (turn) {
              turn.ended = true;
              turn.endTs = m.ts;
            }
            // Closed before this chunk is written: the server never hears the end.
            if (state.cutOnEnd) end();
          } else if (m.type === "cancel") {
            const turn = byId.get(m.turn);
            if (turn) {
              turn.cancelledPlayedMs = m.played_ms;
              turn.cancelledAt = performance.now();
            }
          }
        }
      };
      const replies = new FrameDecoder({ version: "auto" });
      const addReply = (turn: TappedTurn, pcm: Uint8Array, rate: number) => {
        const bytes = pcm.length;
        if (options.keepReplyAudio) (turn.replyAudio ??= []).push(pcm.slice());
        turn.replyBytes += bytes;
        turn.replyMs += (bytes / BYTES_PER_SAMPLE / rate) * 1000;
        turn.replyRate = rate;
      };
      const observeReply = (chunk: Uint8Array) => {
        let decoded;
        try {
          decoded = replies.push(chunk);
        } catch {
          return;
        }
        for (const item of decoded) {
          if (item.version === 1) {
            const turn = byId.get(item.frame.request);
            if (!turn) continue;
            addReply(turn, item.frame.pcm, item.frame.rate);
            turn.replyEnded = true;
            continue;
          }
          const m = item.message;
          if (m.type !== "audio" && m.type !== "end" && m.type !== "error") continue;
          const turn = m.turn === undefined ? undefined : byId.get(m.turn);
          if (!turn) continue;
          if (m.type === "audio") addReply(turn, m.pcm, m.rate);
          else turn.replyEnded = true;
          if (m.type === "end") turn.stages = m.stages;
          if (m.type === "error") turn.error = `${m.code}: ${m.message}`;
        }
      };
      const pacing = { limit: () => state.replyLimit, open: () => conns.has(server) };
      relays.push(
        Promise.all([
          pump(client, server, observe).then(end),
          pump(server, client, observeReply, pacing).then(end),
        ]).then(() => {}),
      );
    }
  })().catch(() => {});
  return {
    port,
    turns,
    get connections() {
      return state.connections;
    },
    get gatewayCapabilities() {
      return state.gatewayCapabilities;
    },
    turnsOf: (device) => turns.filter((t) => t.device === device),
    limitReplies(bytesPerSecond) {
      state.replyLimit = bytesPerSecond;
    },
    cutOnEnd(on) {
      state.cutOnEnd = on;
    },
    refuse(on) {
      state.refuse = on;
    },
    cut() {
      for (const c of [...conns]) {
        conns.delete(c);
        closeQuietly(c);
      }
    },
    async close() {
      listener.close();
      for (const c of conns) closeQuietly(c);
      await accepting;
      await Promise.all(relays);
    },
  };
}
