/**
 * The gateway's `naila/gateway/metrics` message (shared/messages.ts `GatewayMetrics`), sampled
 * every METRICS_INTERVAL_MS by gateway.ts: process CPU since the last sample, memory, the AI
 * link, the VAD's cost, the playback clock's lateness, and every device session's counters.
 *
 * @example
 * ```ts
 * const sampler = new MetricsSampler();
 * publishMetrics(sampler.sample({ sessions, ai, vadMode, vadRuns: silero, playback: clock.takeStats() }));
 * ```
 */
import process from "node:process";
import { roundMs } from "../shared/audio.ts";
import type { ClockStats } from "../shared/media/frame_clock.ts";
import type { GatewayMetrics } from "../shared/messages.ts";
import { type AiLink, AiServers } from "./ai_servers.ts";
import type { SessionMetrics } from "./device_session.ts";

/** What one sample reads. */
export interface MetricsSources {
  /** The device sessions by device id (main thread or session worker). */
  sessions: ReadonlyMap<string, { metrics(): SessionMetrics }>;
  ai: AiLink;
  vadMode: "energy" | "silero";
  /** Silero's runs and their total time (ms); none with the energy VAD. */
  vadRuns: { runs: number; totalMs: number } | undefined;
  /** The playback clock's stats since the last sample (taken: they reset). */
  playback: ClockStats;
}

/** See the module doc; CPU is measured between consecutive samples. */
export class MetricsSampler {
  #startedAt: number;
  #lastCpu = process.cpuUsage();
  #lastCpuAt = performance.now();

  /** `startedAt`: performance.now() when the gateway started, for `uptime_s`. */
  constructor(startedAt = performance.now()) {
    this.#startedAt = startedAt;
  }

  /** One metrics message; CPU percent is of one core since the previous sample. */
  sample(sources: MetricsSources): GatewayMetrics {
    const { sessions, ai, vadMode, vadRuns, playback } = sources;
    const cpu = process.cpuUsage();
    const at = performance.now();
    const cpuPercent = ((cpu.user - this.#lastCpu.user + cpu.system - this.#lastCpu.system) /
      1000) /
      Math.max(1, at - this.#lastCpuAt) * 100;
    this.#lastCpu = cpu;
    this.#lastCpuAt = at;
    const memory = Deno.memoryUsage();
    const devices: Record<string, SessionMetrics> = {};
    let framesIn = 0, framesOut = 0;
    for (const [device, session] of sessions) {
      const m = session.metrics();
      devices[device] = m;
      framesIn += m.packets_in;
      framesOut += m.packets_out;
    }
    return {
      timestamp: new Date().toISOString(),
      sessions: sessions.size,
      uptime_s: Math.round((performance.now() - this.#startedAt) / 100) / 10,
      cpu_percent: roundMs(cpuPercent),
      memory_mb: Math.round(memory.rss / 1e5) / 10,
      heap_mb: Math.round(memory.heapUsed / 1e5) / 10,
      external_mb: Math.round(memory.external / 1e5) / 10,
      frames_in: framesIn,
      frames_out: framesOut,
      ai_server: {
        connected: ai.connected,
        protocol: ai.protocol,
        rtt_ms: ai.lastRttMs ?? null,
        // Per server only where AI_SERVER_HOST lists several (docs/scaling.md).
        ...(ai instanceof AiServers && ai.servers.length > 1 ? { servers: ai.servers } : {}),
      },
      vad: {
        mode: vadMode,
        silero_runs: vadRuns?.runs ?? 0,
        silero_ms_per_window: vadRuns && vadRuns.runs > 0 ? vadRuns.totalMs / vadRuns.runs : null,
      },
      playback: {
        ticks: playback.ticks,
        late_ticks: playback.lateTicks,
        stalls: playback.stalls,
        max_late_ms: roundMs(playback.maxLateMs),
      },
      devices,
    };
  }
}
