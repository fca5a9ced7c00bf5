/**
 * A tiny structured logger: one JSON line per record on stderr, with time, level, component,
 * message and fields, filtered by level (LOG_LEVEL, spec 14.2).
 *
 * @example
 * ```ts
 * import { createLogger } from "@naila/shared/log";
 * const log = createLogger("gateway.session", { level: "info" });
 * log.info("offer sent", { device: "kitchen", session: "s1" });
 * // {"time":"2025-01-15T10:30:00.000Z","level":"info","component":"gateway.session","msg":"offer sent","fields":{"device":"kitchen","session":"s1"}}
 * ```
 */

/** Log levels, least to most severe. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** One log level. */
export type LogLevel = typeof LOG_LEVELS[number];

/**
 * Python logging's names for two of the levels: configuration written for the spec's Python
 * side says LOG_LEVEL=WARNING or CRITICAL.
 */
const PYTHON_LEVEL_ALIASES: Record<string, LogLevel> = { warning: "warn", critical: "error" };
/** Every accepted level name (case-insensitive), ours first, for error messages. */
export const LOG_LEVEL_NAMES: readonly string[] = [
  ...LOG_LEVELS,
  ...Object.keys(PYTHON_LEVEL_ALIASES),
];

/**
 * The level a name stands for, case-insensitively: debug, info, warn, error, and Python's
 * WARNING (= warn) and CRITICAL (= error). Undefined for any other name.
 */
export function parseLogLevel(name: string): LogLevel | undefined {
  const lower = name.trim().toLowerCase();
  return LOG_LEVELS.find((level) => level === lower) ?? PYTHON_LEVEL_ALIASES[lower];
}

/** Extra structured data of a record. */
export type LogFields = Record<string, unknown>;

/** A logger bound to one component. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Least severe level written; default "info" (spec 14.2 LOG_LEVEL=INFO). */
  level?: LogLevel;
  /** Where lines go; default stderr. Tests pass their own sink. */
  write?: (line: string) => void;
  /** Clock for the time field; default `new Date()`. */
  now?: () => Date;
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

// Errors are not JSON-serializable by default; keep their name, message and stack.
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack };
  }
  if (typeof value === "bigint") return value.toString();
  return value;
}

/** Creates a logger for `component` writing JSON lines at or above `options.level`. */
export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const minimum = LOG_LEVELS.indexOf(level);
  if (minimum < 0) {
    throw new RangeError(
      `log level ${JSON.stringify(level)} is unknown, expected ${LOG_LEVELS.join("|")}`,
    );
  }
  const write = options.write ?? writeStderr;
  const now = options.now ?? (() => new Date());
  const record = (at: LogLevel) => (msg: string, fields?: LogFields): void => {
    if (LOG_LEVELS.indexOf(at) < minimum) return;
    const entry: Record<string, unknown> = {
      time: now().toISOString(),
      level: at,
      component,
      msg,
    };
    if (fields !== undefined) entry.fields = fields;
    let line: string;
    try {
      line = JSON.stringify(entry, replacer);
    } catch (err) {
      // A cyclic field must not lose the record itself.
      line = JSON.stringify({ ...entry, fields: `unserializable: ${(err as Error).message}` });
    }
    write(line);
  };
  return {
    debug: record("debug"),
    info: record("info"),
    warn: record("warn"),
    error: record("error"),
  };
}
