/**
 * CPU and memory of a process from Linux's /proc, for the benchmarks: how much of one core a
 * process used over a window, and its resident memory.
 */
import { delay } from "../shared/async.ts";

/** Linux clock ticks per second for /proc/<pid>/stat (getconf CLK_TCK). */
export const CLK_TCK = 100;

/** CPU time of process `pid` so far, in clock ticks (utime + stime of /proc/<pid>/stat). */
export function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

/** Resident memory of process `pid`, in MB (VmRSS of /proc/<pid>/status). */
export function rssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
  return kb / 1024;
}

/** CPU of process `pid` over the next `ms` (% of one core) and its RSS after it (MB). */
export async function sampleProcess(
  pid: number,
  ms: number,
): Promise<{ cpu: number; rss: number }> {
  const t0 = performance.now();
  const c0 = cpuTicks(pid);
  await delay(ms);
  const c1 = cpuTicks(pid);
  const elapsed = (performance.now() - t0) / 1000;
  return { cpu: ((c1 - c0) / CLK_TCK / elapsed) * 100, rss: rssMb(pid) };
}
