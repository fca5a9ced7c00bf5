import assert from "node:assert/strict";
import { PairingError, WebPairing, webPairingPath } from "./web_pairing.ts";

async function withDataDir(run: (dir: string) => void | Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "naila_pairing_" });
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the pairing store is owner-only, keeps its code, and tokens verify per id", () =>
  withDataDir((dir) => {
    const pairing = WebPairing.open(dir);
    assert.match(pairing.code, /^[0-9a-f]{32}$/);
    assert.equal((Deno.statSync(webPairingPath(dir)).mode ?? 0) & 0o777, 0o600);
    assert.equal((Deno.statSync(`${dir}/secrets`).mode ?? 0) & 0o777, 0o700);
    const { device, token } = pairing.pair(pairing.code, "web_kitchen_tab");
    assert.equal(device, "web_kitchen_tab");
    const reopened = WebPairing.open(dir);
    assert.equal(reopened.code, pairing.code);
    assert.ok(reopened.verify(device, token));
    assert.ok(!reopened.verify(device, "0".repeat(64)));
    assert.ok(!reopened.verify(device, null));
    assert.ok(!reopened.verify("web_other", token));
    // The token itself is not stored, only its hash.
    assert.ok(!Deno.readTextFileSync(webPairingPath(dir)).includes(token));
    assert.ok(reopened.remove(device));
    assert.ok(!reopened.verify(device, token));
  }));

Deno.test("pairing refuses a wrong code, a taken id and a non-browser id by name", () =>
  withDataDir((dir) => {
    const pairing = WebPairing.open(dir);
    const refused = (fn: () => unknown, code: string) =>
      assert.throws(fn, (e: unknown) => e instanceof PairingError && e.code === code);
    refused(() => pairing.pair("f".repeat(32)), "bad_code");
    const { device } = pairing.pair(pairing.code);
    assert.match(device, /^web_[0-9a-f]{8}$/);
    refused(() => pairing.pair(pairing.code, device), "taken");
    refused(() => pairing.pair(pairing.code, "kitchen"), "bad_id");
    refused(() => pairing.pair(pairing.code, "web_a/b"), "bad_id");
    assert.deepEqual(pairing.devices(), [device]);
  }));

Deno.test("a browser paired by another process (the CLI) is seen without a restart", () =>
  withDataDir((dir) => {
    const gateway = WebPairing.open(dir);
    const cli = WebPairing.open(dir);
    const { device, token } = cli.pair(cli.code);
    assert.ok(gateway.verify(device, token));
  }));
