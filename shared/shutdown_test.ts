import assert from "node:assert/strict";
import { delay } from "./async.ts";

const SHUTDOWN_MODULE = new URL("./shutdown.ts", import.meta.url).href;
const LOG_MODULE = new URL("./log.ts", import.meta.url).href;

/**
 * Runs a child whose start takes `startMs` and whose close does `closeBody`, sends it `signals`
 * once it says its listeners are installed, and returns its exit code and stdout lines.
 */
async function runChild(
  options: { startMs: number; closeBody: string; signals: Deno.Signal[]; timeoutMs?: number },
): Promise<{ code: number; lines: string[] }> {
  const script = `
    import { stopOnSignals } from "${SHUTDOWN_MODULE}";
    import { createLogger } from "${LOG_MODULE}";
    const starting = new Promise((resolve) => setTimeout(() => resolve({
      close: async () => { ${options.closeBody} },
    }), ${options.startMs}));
    stopOnSignals(async () => await (await starting).close(), {
      log: createLogger("test", { write: () => {} }),
      timeoutMs: ${options.timeoutMs ?? 5000},
    });
    console.log("installed");
    await starting;
    console.log("started");
    setInterval(() => {}, 1000);
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines: string[] = [];
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("installed\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  for (const signal of options.signals) {
    child.kill(signal);
    await delay(300); // two signals close together may reach the child as one
  }
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  lines.push(...text.split("\n").filter(Boolean));
  return { code: (await child.status).code, lines };
}

Deno.test("stopOnSignals: a signal during start-up waits for the start, closes, and exits 0", async () => {
  const { code, lines } = await runChild({
    startMs: 300,
    closeBody: `console.log("closed");`,
    signals: ["SIGTERM"],
  });
  assert.equal(code, 0);
  assert.deepEqual(lines, ["installed", "started", "closed"]);
});

Deno.test("stopOnSignals: SIGINT after start closes and exits 0", async () => {
  const { code, lines } = await runChild({
    startMs: 0,
    closeBody: `await new Promise((r) => setTimeout(r, 20)); console.log("closed");`,
    signals: ["SIGINT"],
  });
  assert.equal(code, 0);
  assert.equal(lines.at(-1), "closed");
});

Deno.test("stopOnSignals: a close that throws exits 1", async () => {
  const { code } = await runChild({
    startMs: 0,
    closeBody: `throw new Error("socket stuck");`,
    signals: ["SIGTERM"],
  });
  assert.equal(code, 1);
});

Deno.test("stopOnSignals: a close that hangs past the timeout exits 1", async () => {
  const { code, lines } = await runChild({
    startMs: 0,
    closeBody: `await new Promise(() => {}); console.log("closed");`,
    signals: ["SIGTERM"],
    timeoutMs: 200,
  });
  assert.equal(code, 1);
  assert.ok(!lines.includes("closed"));
});

Deno.test("stopOnSignals: a second signal while closing exits 1 at once", async () => {
  const { code, lines } = await runChild({
    startMs: 0,
    closeBody: `await new Promise((r) => setTimeout(r, 4000)); console.log("closed");`,
    signals: ["SIGINT", "SIGINT"],
  });
  assert.equal(code, 1);
  assert.ok(!lines.includes("closed"));
});
