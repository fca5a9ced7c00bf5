import assert from "node:assert/strict";
import { loadConfig } from "../shared/config.ts";
import { createLogger } from "../shared/log.ts";
import { createAiLink } from "./ai_link.ts";
import type { SessionMetrics } from "./device_session.ts";
import { MetricsSampler } from "./gateway_metrics.ts";

const log = createLogger("test.gateway_metrics", { level: "error" });

/** A session's counters as a device session reports them (only the summed fields matter). */
function session(packetsIn: number, packetsOut: number) {
  const m = { session_id: "s", packets_in: packetsIn, packets_out: packetsOut } as SessionMetrics;
  return { metrics: () => m };
}

Deno.test("a sample sums the sessions' frames, lists each device, and reports the VAD and playback", () => {
  const ai = createAiLink(loadConfig({}), {
    aiServer: { auth: false },
    log,
    aiLog: log,
  });
  try {
    const sampler = new MetricsSampler(performance.now() - 12_340);
    const metrics = sampler.sample({
      sessions: new Map([["kitchen", session(100, 40)], ["hall", session(7, 3)]]),
      ai,
      vadMode: "silero",
      vadRuns: { runs: 4, totalMs: 2 },
      playback: { ticks: 50, lateTicks: 1, stalls: 0, maxLateMs: 21.234 },
    });
    assert.equal(metrics.sessions, 2);
    assert.equal(metrics.frames_in, 107);
    assert.equal(metrics.frames_out, 43);
    assert.deepEqual(Object.keys(metrics.devices as object).sort(), ["hall", "kitchen"]);
    assert.ok(metrics.uptime_s! >= 12.3, `uptime ${metrics.uptime_s}`);
    assert.ok(metrics.cpu_percent! >= 0);
    assert.ok(metrics.memory_mb! > 0);
    assert.deepEqual(metrics.vad, { mode: "silero", silero_runs: 4, silero_ms_per_window: 0.5 });
    assert.deepEqual(metrics.playback, { ticks: 50, late_ticks: 1, stalls: 0, max_late_ms: 21.2 });
    assert.deepEqual(metrics.ai_server, { connected: false, protocol: "v2", rtt_ms: null });
  } finally {
    ai.close();
  }
});

Deno.test("with the energy VAD there are no Silero runs; several servers are listed", () => {
  const config = loadConfig({ AI_SERVER_HOST: "127.0.0.1:9001,127.0.0.1:9002" });
  const ai = createAiLink(config, { aiServer: { auth: false }, log, aiLog: log });
  try {
    const metrics = new MetricsSampler().sample({
      sessions: new Map(),
      ai,
      vadMode: "energy",
      vadRuns: undefined,
      playback: { ticks: 0, lateTicks: 0, stalls: 0, maxLateMs: 0 },
    });
    assert.equal(metrics.sessions, 0);
    assert.deepEqual(metrics.vad, { mode: "energy", silero_runs: 0, silero_ms_per_window: null });
    assert.equal((metrics.ai_server as { servers?: unknown[] }).servers?.length, 2);
  } finally {
    ai.close();
  }
});
