/**
 * The capacity sweep of the gateway benchmark (scripts/bench_gateway.ts): the gateway's own
 * metrics read over MQTT, one step measured against the criteria (packets in and reply frames
 * out delivered, playback ticks on time, no stalls), and the sweep's summary.
 */
import type { DevicePeer } from "../device/peer.ts";
import { LATE_TICK_MS } from "../shared/media/frame_clock.ts";
import { connectMqtt } from "../shared/mqtt.ts";
import { round } from "./bench_stats.ts";
import { CLK_TCK, cpuTicks } from "./bench_process.ts";

/** Capacity criteria: what share of packets must arrive, and of reply frames may be late. */
export const MIN_DELIVERED = 0.99;
export const MAX_LATE_SHARE = 0.01;
/** Period of the gateway's metrics during the benchmark (the capacity sweep reads them). */
export const METRICS_INTERVAL_MS = 1000;

/** Snapshots of the gateway's metrics as they are published. */
export interface GatewayMetrics {
  /** The next message's snapshot. */
  next(): Promise<MetricsSnapshot>;
  close(): Promise<void>;
}

/** One step of the capacity sweep. */
export interface CapacityLevel {
  devices: number;
  ok: boolean;
  /** Packets the gateway received / packets the devices sent. */
  inbound_delivered: number;
  /** Reply packets the devices received / 50 per second per device. */
  outbound_delivered: number;
  /** The gateway playback clock's late ticks / ticks, and its worst lateness. */
  late_share: number;
  max_late_ms: number;
  stalls: number;
  gateway_cpu_percent: number;
  /** This process (the simulated devices): when it nears 100 % the devices are the limit. */
  devices_process_cpu_percent: number;
}

/** The gateway's counters from one `naila/gateway/metrics` message. */
export interface MetricsSnapshot {
  framesIn: number;
  ticks: number;
  lateTicks: number;
  stalls: number;
  maxLateMs: number;
}

/** The gateway's metrics messages on the broker at 127.0.0.1:`port`, one snapshot per message. */
export async function gatewayMetrics(port: number): Promise<GatewayMetrics> {
  const mqtt = await connectMqtt({ embedded: false, host: "127.0.0.1", port }, {
    clientId: `bench-metrics-${crypto.randomUUID().slice(0, 8)}`,
  });
  const waiting: ((m: MetricsSnapshot) => void)[] = [];
  mqtt.client.on("message", (_topic: string, payload: Uint8Array) => {
    const m = JSON.parse(new TextDecoder().decode(payload));
    const snapshot = {
      framesIn: m.frames_in ?? 0,
      ticks: m.playback?.ticks ?? 0,
      lateTicks: m.playback?.late_ticks ?? 0,
      stalls: m.playback?.stalls ?? 0,
      maxLateMs: m.playback?.max_late_ms ?? 0,
    };
    for (const resolve of waiting.splice(0)) resolve(snapshot);
  });
  await mqtt.subscribe("naila/gateway/metrics");
  return {
    next: () => new Promise<MetricsSnapshot>((resolve) => waiting.push(resolve)),
    close: () => mqtt.close(),
  };
}

/**
 * Measures one capacity step over the whole metrics periods in `windowMs`: packets in (devices' sent counters
 * against the gateway's received counter), reply packets out (arrivals at the devices against
 * real time), and the playback clock's lateness.
 */
export async function measureCapacity(
  devices: DevicePeer[],
  metrics: GatewayMetrics,
  pid: number,
  windowMs: number,
): Promise<CapacityLevel> {
  const sent = () => devices.reduce((n, d) => n + d.packetsSent, 0);
  const received = () =>
    devices.reduce((n, d) => n + d.replies.reduce((m, r) => m + r.arrivals.length, 0), 0);
  const periods = Math.round(windowMs / METRICS_INTERVAL_MS);
  const start = await metrics.next();
  const at = { sent: sent(), received: received(), time: performance.now() };
  const ticks = cpuTicks(pid);
  const ownTicks = cpuTicks(Deno.pid);
  let end = start;
  let maxLateMs = 0;
  for (let i = 0; i < periods; i++) {
    end = await metrics.next();
    maxLateMs = Math.max(maxLateMs, end.maxLateMs);
  }
  const seconds = (performance.now() - at.time) / 1000;
  const inbound = (end.framesIn - start.framesIn) / Math.max(1, sent() - at.sent);
  const outbound = (received() - at.received) / (devices.length * seconds * 50);
  const tickCount = end.ticks - start.ticks;
  const lateShare = tickCount > 0 ? (end.lateTicks - start.lateTicks) / tickCount : 0;
  const stalls = end.stalls - start.stalls;
  return {
    devices: devices.length,
    ok: inbound >= MIN_DELIVERED && outbound >= MIN_DELIVERED && lateShare <= MAX_LATE_SHARE &&
      stalls === 0,
    inbound_delivered: round(inbound, 4),
    outbound_delivered: round(outbound, 4),
    late_share: round(lateShare, 4),
    max_late_ms: round(maxLateMs, 1),
    stalls,
    gateway_cpu_percent: round((cpuTicks(pid) - ticks) / CLK_TCK / seconds * 100),
    devices_process_cpu_percent: round((cpuTicks(Deno.pid) - ownTicks) / CLK_TCK / seconds * 100),
  };
}

/**
 * The sweep's result: the largest passing device count below the first failing one, the first
 * failing count (null when none failed), the criteria and every step.
 */
export function capacitySummary(levels: CapacityLevel[]) {
  const failing = levels.find((l) => !l.ok);
  const passing = levels.filter((l) => l.ok && l.devices < (failing?.devices ?? Infinity))
    .map((l) => l.devices);
  return {
    criteria: {
      min_delivered: MIN_DELIVERED,
      max_late_share: MAX_LATE_SHARE,
      late_means_ms: LATE_TICK_MS,
    },
    devices_ok: passing.length ? Math.max(...passing) : 0,
    first_failing: failing?.devices ?? null,
    levels,
  };
}
