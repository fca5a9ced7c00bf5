/**
 * The one command-line style of NAILA's scripts: `node:util` `parseArgs` (strict: an unknown
 * option or a stray argument is an error), `--help` prints the usage, and a bad value exits with
 * code 2 after one line naming the option, the value and what is allowed, then the usage.
 *
 * @example
 * ```ts
 * const values = parseCli("bench:server", "usage: deno task bench:server [--turns N]", {
 *   turns: { type: "string" },
 * });
 * const turns = positiveInt(cli, "turns", values.turns, 25);
 * ```
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** Exit code of a command-line mistake (the same as a bad environment variable at start). */
export const USAGE_EXIT_CODE = 2;

type Options = NonNullable<ParseArgsConfig["options"]>;

/** A script's name and usage text, for its error messages. */
export interface Cli {
  command: string;
  usage: string;
}

/** Prints `command: message` and the usage to stderr, then exits with code 2. */
export function usageError(cli: Cli, message: string): never {
  console.error(`${cli.command}: ${message}\n${cli.usage}`);
  Deno.exit(USAGE_EXIT_CODE);
}

/**
 * Parses `Deno.args` (or `args`) with `options` plus `--help`. Prints the usage and exits 0 on
 * `--help`; exits 2 via {@link usageError} on an unknown option or a stray argument.
 */
export function parseCli<const O extends Options>(
  cli: Cli,
  options: O,
  args: string[] = Deno.args,
): ReturnType<typeof parseArgs<{ options: O; args: string[] }>>["values"] {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({
      args,
      options: { ...options, help: { type: "boolean" } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    usageError(cli, (error as Error).message);
  }
  if (values.help) {
    console.log(cli.usage);
    Deno.exit(0);
  }
  return values as ReturnType<typeof parseArgs<{ options: O; args: string[] }>>["values"];
}

/** `--name` as a positive integer, `fallback` when absent; a bad value is a usage error. */
export function positiveInt(
  cli: Cli,
  name: string,
  text: string | undefined,
  fallback: number,
): number {
  if (text === undefined) return fallback;
  if (!/^[1-9][0-9]*$/.test(text)) {
    usageError(cli, `--${name} ${JSON.stringify(text)} is not a positive integer`);
  }
  return Number(text);
}
