import assert from "node:assert/strict";
import { ensureBrokerCertificate } from "./certificates.ts";

Deno.test("ensureBrokerCertificate: a CA and a server certificate it signed, keys owner-only, kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila_certificates_" });
  try {
    const files = await ensureBrokerCertificate(dir, ["mqtt.home.lan"]);
    const verify = await new Deno.Command("openssl", {
      args: ["verify", "-CAfile", files.ca, files.cert],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(verify.success, new TextDecoder().decode(verify.stderr));
    const text = await new Deno.Command("openssl", {
      args: ["x509", "-in", files.cert, "-noout", "-ext", "subjectAltName"],
      stdout: "piped",
    }).output();
    const san = new TextDecoder().decode(text.stdout);
    assert.match(san, /DNS:mqtt\.home\.lan/);
    assert.match(san, /IP Address:127\.0\.0\.1/);
    for (const key of [files.key, files.caKey]) {
      assert.equal((await Deno.stat(key)).mode! & 0o777, 0o600);
    }
    const before = await Deno.readTextFile(files.cert);
    await ensureBrokerCertificate(dir);
    assert.equal(await Deno.readTextFile(files.cert), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
