import assert from "node:assert/strict";
import { parseCli, positiveInt, USAGE_EXIT_CODE } from "./cli.ts";

const CLI = { command: "example", usage: "usage: example [--n N] [--quick]" };
const CLI_URL = new URL("./cli.ts", import.meta.url).href;

/** Runs a tiny script on this module with `args`; returns its exit code and output. */
async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const code = `import { parseCli, positiveInt } from ${JSON.stringify(CLI_URL)};
const cli = ${JSON.stringify(CLI)};
const values = parseCli(cli, { n: { type: "string" }, quick: { type: "boolean" } });
console.log(positiveInt(cli, "n", values.n, 7), values.quick === true);`;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", code, "--", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return {
    code: output.code,
    stdout: text.decode(output.stdout),
    stderr: text.decode(output.stderr),
  };
}

Deno.test("parseCli returns typed values with their defaults", () => {
  const values = parseCli(CLI, {
    n: { type: "string", default: "3" },
    quick: { type: "boolean", default: false },
  }, ["--quick"]);
  assert.deepEqual({ ...values }, { n: "3", quick: true });
  assert.equal(positiveInt(CLI, "n", values.n, 1), 3);
  assert.equal(positiveInt(CLI, "n", undefined, 9), 9);
});

Deno.test("a script reads its options, and --help prints the usage and exits 0", async () => {
  assert.deepEqual(await run(["--n", "12", "--quick"]), {
    code: 0,
    stdout: "12 true\n",
    stderr: "",
  });
  assert.deepEqual(await run(["--help"]), { code: 0, stdout: `${CLI.usage}\n`, stderr: "" });
});

Deno.test("a bad value, an unknown option or a stray argument exits 2 naming it, with the usage", async () => {
  const bad = await run(["--n", "4.5"]);
  assert.equal(bad.code, USAGE_EXIT_CODE);
  assert.equal(bad.stderr, `example: --n "4.5" is not a positive integer\n${CLI.usage}\n`);
  const unknown = await run(["--bogus"]);
  assert.equal(unknown.code, USAGE_EXIT_CODE);
  assert.match(unknown.stderr, /^example: Unknown option '--bogus'/);
  assert.ok(unknown.stderr.endsWith(`${CLI.usage}\n`));
  const stray = await run(["extra"]);
  assert.equal(stray.code, USAGE_EXIT_CODE);
  assert.match(stray.stderr, /^example: .*'extra'/);
});
