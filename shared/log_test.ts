import assert from "node:assert/strict";
import { createLogger, LOG_LEVELS, parseLogLevel } from "./log.ts";
import { ConfigError, loadConfig } from "./config.ts";

const FIXED = new Date("2025-01-15T10:30:00.000Z");

function capture(level?: "debug" | "info" | "warn" | "error") {
  const lines: string[] = [];
  const log = createLogger("test.component", {
    level,
    write: (l) => lines.push(l),
    now: () => FIXED,
  });
  return { log, lines };
}

Deno.test("createLogger", async (t) => {
  await t.step("writes one JSON record with time, level, component, msg and fields", () => {
    const { log, lines } = capture();
    log.info("offer sent", { device: "kitchen", n: 2 });
    assert.equal(lines.length, 1);
    assert.deepEqual(JSON.parse(lines[0]), {
      time: "2025-01-15T10:30:00.000Z",
      level: "info",
      component: "test.component",
      msg: "offer sent",
      fields: { device: "kitchen", n: 2 },
    });
    assert.ok(!lines[0].includes("\n"));
  });

  await t.step("default level info drops debug", () => {
    const { log, lines } = capture();
    log.debug("hidden");
    log.info("a");
    log.warn("b");
    log.error("c");
    assert.deepEqual(lines.map((l) => JSON.parse(l).level), ["info", "warn", "error"]);
  });

  await t.step("level filter: warn keeps warn and error only; debug keeps everything", () => {
    const warn = capture("warn");
    warn.log.info("x");
    warn.log.warn("y");
    warn.log.error("z");
    assert.deepEqual(warn.lines.map((l) => JSON.parse(l).msg), ["y", "z"]);
    const debug = capture("debug");
    debug.log.debug("d");
    assert.equal(debug.lines.length, 1);
  });

  await t.step("errors keep name and message; cyclic fields do not lose the record", () => {
    const { log, lines } = capture();
    log.error("failed", { err: new TypeError("bad frame") });
    const fields = JSON.parse(lines[0]).fields;
    assert.equal(fields.err.name, "TypeError");
    assert.equal(fields.err.message, "bad frame");
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    log.warn("cycle", cyclic);
    const record = JSON.parse(lines[1]);
    assert.equal(record.msg, "cycle");
    assert.match(record.fields, /^unserializable: /);
  });

  await t.step("an unknown level is rejected naming the allowed ones", () => {
    assert.throws(
      () => createLogger("x", { level: "trace" as "info" }),
      /log level "trace" is unknown, expected debug\|info\|warn\|error/,
    );
  });

  await t.step("writes to stderr by default", async () => {
    const script = `import { createLogger } from ${
      JSON.stringify(new URL("./log.ts", import.meta.url).href)
    };
createLogger("child").info("hello", { a: 1 });`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0);
    assert.equal(new TextDecoder().decode(out.stdout), "");
    const record = JSON.parse(new TextDecoder().decode(out.stderr).trim());
    assert.equal(record.component, "child");
    assert.deepEqual(record.fields, { a: 1 });
  });
});

Deno.test("parseLogLevel: our names and Python's WARNING and CRITICAL, case-insensitive", () => {
  for (const level of LOG_LEVELS) {
    assert.equal(parseLogLevel(level), level);
    assert.equal(parseLogLevel(level.toUpperCase()), level);
  }
  assert.equal(parseLogLevel("WARNING"), "warn");
  assert.equal(parseLogLevel("Warning"), "warn");
  assert.equal(parseLogLevel("CRITICAL"), "error");
  assert.equal(parseLogLevel("critical"), "error");
  assert.equal(parseLogLevel("TRACE"), undefined);
  assert.equal(parseLogLevel("FATAL"), undefined);
});

Deno.test("LOG_LEVEL=WARNING and CRITICAL configure a process instead of stopping it", () => {
  assert.equal(loadConfig({ LOG_LEVEL: "WARNING" }).logLevel, "warn");
  assert.equal(loadConfig({ LOG_LEVEL: "CRITICAL" }).logLevel, "error");
  assert.equal(loadConfig({ LOG_LEVEL: "Info" }).logLevel, "info");
  assert.throws(
    () => loadConfig({ LOG_LEVEL: "verbose" }),
    (err: Error) =>
      err instanceof ConfigError &&
      /LOG_LEVEL="verbose".*debug\|info\|warn\|error\|warning\|critical/.test(err.message),
  );
});
