import assert from "node:assert/strict";
import { loadConfig } from "../shared/config.ts";
import { createLogger } from "../shared/log.ts";
import { ensureAudioSecret } from "../shared/audio_auth.ts";
import { AiServers } from "./ai_servers.ts";
import { aiServerAccess, createAiLink } from "./ai_link.ts";

/** A logger whose lines are kept. */
function capture() {
  const lines: string[] = [];
  return {
    lines,
    log: createLogger("test.ai_link", { level: "debug", write: (l) => lines.push(l) }),
  };
}

Deno.test("one server or several: one AiServers with every AI_SERVER_HOST entry", () => {
  const { log } = capture();
  const one = loadConfig({ AI_SERVER_HOST: "127.0.0.1" });
  const several = loadConfig({ AI_SERVER_HOST: "127.0.0.1:9001,127.0.0.1:9002" });
  const links = [
    createAiLink(one, { aiServer: { auth: false }, log, aiLog: log }),
    createAiLink(several, { aiServer: { auth: false }, log, aiLog: log }),
  ];
  try {
    assert.ok(links.every((link) => link instanceof AiServers));
    assert.deepEqual(links.map((link) => link.servers.map((s) => s.port)), [[9999], [9001, 9002]]);
    for (const link of links) assert.equal(link.connected, false, "not started");
  } finally {
    for (const link of links) link.close();
  }
});

Deno.test("access: no auth sends no secret; a configured secret is used as given", () => {
  const { log } = capture();
  const config = loadConfig({});
  assert.deepEqual(aiServerAccess(config, { auth: false }, log), { tls: undefined });
  const tls = { caCerts: ["PEM"] };
  assert.deepEqual(aiServerAccess(config, { auth: true, secret: "s".repeat(64), tls }, log), {
    secret: "s".repeat(64),
    tls,
  });
});

Deno.test("access: the data dir's secret is read at each connect; its absence is warned once at start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila_ai_link_" });
  try {
    const { lines, log } = capture();
    const config = loadConfig({ NAILA_DATA_DIR: dir });
    const access = aiServerAccess(config, { auth: true }, log);
    const secret = access!.secret as () => string | undefined;
    assert.equal(typeof secret, "function");
    assert.equal(secret(), undefined);
    assert.equal(lines.filter((l) => l.includes("no audio-socket secret yet")).length, 1);
    // The server creates it later (one machine): the next connect finds it.
    const created = ensureAudioSecret(dir);
    assert.equal(secret(), created);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
