/**
 * Runs one of NAILA's processes (`deno run -A <main>`) as a child for cross-process tests, the
 * demo and the benchmarks: its stderr JSON log lines are collected so a caller can wait for one,
 * and stopping is SIGTERM, then SIGKILL if a clean shutdown takes too long. The gateway and server
 * launchers (`gateway_process.ts`, `server_process.ts`) add their own defaults on top.
 *
 * @example
 * ```ts
 * const child = await startNailaProcess("server/main.ts", { PIPELINE: "echo" }, {
 *   ready: (l) => l.msg === "server ready",
 *   readyTimeoutMs: 30_000,
 * });
 * await child.stop();
 * ```
 */
import { delay } from "../../shared/async.ts";

/** One parsed log line (shared/log.ts writes one JSON object per line). */
export interface LogLine {
  level: string;
  component: string;
  msg: string;
  fields?: Record<string, unknown>;
}

/** A running child process. */
export interface NailaProcess {
  pid: number;
  /** The JSON log lines so far. */
  logs: LogLine[];
  /** Every stderr line so far, JSON or not. */
  lines: string[];
  /** Non-JSON stderr output (crashes, Deno errors). */
  otherOutput: string[];
  readonly exited: boolean;
  waitForLog(match: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine>;
  /** Sends `signal` (default SIGTERM), SIGKILL after 5 s, and waits for the exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** Options of {@link startNailaProcess}. */
export interface NailaProcessOptions {
  /** A log line that means "ready"; without it the process is returned as soon as it spawns. */
  ready?: (line: LogLine) => boolean;
  readyTimeoutMs?: number;
  /** Extra `deno run` flags (e.g. `--cpu-prof`). */
  denoFlags?: string[];
}

const ROOT = new URL("../../", import.meta.url).pathname;
/** How long a clean shutdown may take before SIGKILL. */
const STOP_TIMEOUT_MS = 5000;
/** How often {@link NailaProcess.waitForLog} looks at the lines again. */
const POLL_MS = 10;
/** Log lines quoted in a "no matching line" error. */
const QUOTED_LINES = 5;

function signal(child: Deno.ChildProcess, name: Deno.Signal): void {
  try {
    child.kill(name);
  } catch {
    // already gone
  }
}

/**
 * Spawns `deno run -A <main>` (a path from the repository root) with `env` on top of this
 * process's environment, and, with `options.ready`, waits for that log line (killing the child
 * and throwing with its last lines if it does not come).
 */
export async function startNailaProcess(
  main: string,
  env: Record<string, string>,
  options: NailaProcessOptions = {},
): Promise<NailaProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...(options.denoFlags ?? []), main],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const logs: LogLine[] = [];
  const lines: string[] = [];
  const otherOutput: string[] = [];
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const reading = (async () => {
    let rest = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const complete = rest.split("\n");
      rest = complete.pop()!;
      for (const line of complete) {
        lines.push(line);
        if (line.startsWith("{")) {
          try {
            logs.push(JSON.parse(line));
            continue;
          } catch {
            // not one of ours
          }
        }
        if (line.trim()) otherOutput.push(line);
      }
    }
  })();
  const process: NailaProcess = {
    pid: child.pid,
    logs,
    lines,
    otherOutput,
    get exited() {
      return exited;
    },
    async waitForLog(match, timeoutMs) {
      const end = performance.now() + timeoutMs;
      while (performance.now() < end) {
        const found = logs.find(match);
        if (found) return found;
        if (exited) break;
        await delay(POLL_MS);
      }
      const why = exited
        ? "exited before a matching log line"
        : `no matching log line within ${timeoutMs} ms`;
      throw new Error(
        `${main}: ${why}; last lines: ${JSON.stringify(logs.slice(-QUOTED_LINES))} ` +
          otherOutput.slice(-QUOTED_LINES).join(" | "),
      );
    },
    async stop(name: Deno.Signal = "SIGTERM") {
      if (!exited) {
        signal(child, name);
        const timer = setTimeout(() => signal(child, "SIGKILL"), STOP_TIMEOUT_MS);
        await status;
        clearTimeout(timer);
      }
      await reading.catch(() => {});
      return await status;
    },
  };
  if (options.ready) {
    try {
      await process.waitForLog(options.ready, options.readyTimeoutMs ?? STOP_TIMEOUT_MS);
    } catch (error) {
      await process.stop("SIGKILL");
      throw error;
    }
  }
  return process;
}
