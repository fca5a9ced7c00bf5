import assert from "node:assert/strict";
import {
  audioSecretPath,
  ensureAudioSecret,
  gatewayProof,
  newNonce,
  proofMatches,
  readAudioSecret,
  readSecretFile,
  secretProblem,
  serverProof,
} from "./audio_auth.ts";

Deno.test("the secret is made once, owner-only, and read back the same", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila_audio_secret_" });
  try {
    assert.equal(readAudioSecret(dir), undefined);
    const secret = ensureAudioSecret(dir);
    assert.match(secret, /^[0-9a-f]{64}$/);
    assert.equal(ensureAudioSecret(dir), secret);
    assert.equal(readAudioSecret(dir), secret);
    assert.equal((Deno.statSync(audioSecretPath(dir)).mode ?? 0) & 0o777, 0o600);
    assert.equal((Deno.statSync(`${dir}/secrets`).mode ?? 0) & 0o777, 0o700);
    Deno.writeTextFileSync(`${dir}/weak`, "password\n");
    assert.throws(() => readSecretFile(`${dir}/weak`), /weak has 8 characters, expected 32/);
    assert.throws(() => readSecretFile(`${dir}/missing`), /cannot read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("proofs depend on the secret, both nonces, their order and the role", () => {
  const secret = "k".repeat(40);
  const ng = newNonce();
  const ns = newNonce();
  assert.notEqual(ng, ns);
  const proof = gatewayProof(secret, ns, ng);
  assert.ok(proofMatches(proof, gatewayProof(secret, ns, ng)));
  assert.ok(!proofMatches(proof, gatewayProof("j".repeat(40), ns, ng)));
  assert.ok(!proofMatches(proof, gatewayProof(secret, ng, ns)));
  assert.ok(!proofMatches(proof, serverProof(secret, ns, ng)));
  assert.ok(!proofMatches(proof, serverProof(secret, ng, ns)));
  assert.ok(!proofMatches(proof, "not hex"));
  assert.equal(secretProblem("short"), "has 5 characters, expected 32..512");
  assert.equal(secretProblem("a b".repeat(20)), "contains white space");
  assert.equal(secretProblem("x".repeat(32)), undefined);
});
