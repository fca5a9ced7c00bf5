/**
 * Authentication of the audio socket (docs/protocol.md "Authentication", spec 17.2): a shared
 * secret proven with HMAC-SHA256 over both sides' fresh nonces, never sent itself.
 *
 * 1. gateway → server: `hello` with `nonce` = Ng (32 random bytes, hex).
 * 2. server → gateway: `hello` with `nonce` = Ns and `proof` = HMAC(secret, "naila-audio-v2|server|" Ng "|" Ns).
 * 3. gateway → server: `auth` with `proof` = HMAC(secret, "naila-audio-v2|gateway|" Ns "|" Ng).
 *
 * A recorded `auth` fails on the next connection (Ns is new each time); a server's proof sent
 * back as the gateway's fails (the role label differs, and so does the nonce order); the gateway
 * checks the server's proof, so a fake server is noticed before any audio goes to it.
 *
 * The secret lives in `NAILA_DATA_DIR/secrets/audio_socket_secret` (0600, its folder 0700), made
 * on the server's first start; a gateway on the same machine reads it there, a remote one gets it
 * from `AI_SERVER_SECRET` or `AI_SERVER_SECRET_FILE`.
 *
 * @example
 * ```ts
 * const secret = ensureAudioSecret("./data");
 * const ng = newNonce(), ns = newNonce();
 * proofMatches(gatewayProof(secret, ns, ng), gatewayProof(secret, ns, ng)); // true
 * ```
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { join } from "node:path";
import { ensureSecretsDir, secretsDir, writeSecretFile } from "./secret_files.ts";

/** File of the audio-socket secret under {@link SECRETS_DIR}. */
export const AUDIO_SECRET_FILE = "audio_socket_secret";
/** 32 random bytes: 256 bits, as long as the HMAC-SHA256 key block needs to be useful. */
const SECRET_BYTES = 32;
/** A nonce of 32 random bytes: never repeats in practice. */
const NONCE_BYTES = 32;
/** A configured secret shorter than this is refused (a guessable password is no secret). */
export const MIN_SECRET_CHARS = 32;
/** Longest secret accepted (a line of text, not a file by mistake). */
const MAX_SECRET_CHARS = 512;
/** Domain-separation prefix of every proof: a NAILA audio-socket v2 handshake and nothing else. */
const PROOF_LABEL = "naila-audio-v2";
/** A nonce or a proof on the wire: 64 lowercase hex digits. */
export const HEX_256 = /^[0-9a-f]{64}$/;

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** 32 fresh random bytes as 64 lowercase hex digits. */
export function newNonce(): string {
  return hex(crypto.getRandomValues(new Uint8Array(NONCE_BYTES)));
}

/** Why `secret` cannot be the audio-socket secret, or undefined when it can. */
export function secretProblem(secret: string): string | undefined {
  if (secret.length < MIN_SECRET_CHARS || secret.length > MAX_SECRET_CHARS) {
    return `has ${secret.length} characters, expected ${MIN_SECRET_CHARS}..${MAX_SECRET_CHARS}`;
  }
  if (/\s/.test(secret)) return "contains white space";
  return undefined;
}

function proof(secret: string, role: "server" | "gateway", first: string, second: string): string {
  return createHmac("sha256", secret).update(`${PROOF_LABEL}|${role}|${first}|${second}`)
    .digest("hex");
}

/** The server's proof in its hello: HMAC(secret, "naila-audio-v2|server|" Ng "|" Ns), hex. */
export function serverProof(secret: string, gatewayNonce: string, serverNonce: string): string {
  return proof(secret, "server", gatewayNonce, serverNonce);
}

/** The gateway's proof in its `auth`: HMAC(secret, "naila-audio-v2|gateway|" Ns "|" Ng), hex. */
export function gatewayProof(secret: string, serverNonce: string, gatewayNonce: string): string {
  return proof(secret, "gateway", serverNonce, gatewayNonce);
}

/** Constant-time comparison of two proofs (hex strings); false for any malformed one. */
export function proofMatches(expected: string, given: string): boolean {
  if (!HEX_256.test(expected) || !HEX_256.test(given)) return false;
  const encoder = new TextEncoder();
  return timingSafeEqual(encoder.encode(expected), encoder.encode(given));
}

/** `dataDir/secrets/audio_socket_secret`. */
export function audioSecretPath(dataDir: string): string {
  return join(secretsDir(dataDir), AUDIO_SECRET_FILE);
}

/**
 * Reads a secret file (first line, trimmed). Throws an Error naming the file when it cannot be
 * read or does not hold a valid secret.
 */
export function readSecretFile(path: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    throw new Error(`cannot read the audio-socket secret ${path}: ${(error as Error).message}`);
  }
  const secret = text.split("\n")[0].trim();
  const problem = secretProblem(secret);
  if (problem !== undefined) throw new Error(`the audio-socket secret in ${path} ${problem}`);
  return secret;
}

/** The data directory's secret, or undefined when there is none yet. */
export function readAudioSecret(dataDir: string): string | undefined {
  const path = audioSecretPath(dataDir);
  try {
    Deno.statSync(path);
  } catch {
    return undefined;
  }
  return readSecretFile(path);
}

/**
 * The data directory's secret, created on first call (64 hex digits of fresh randomness, the
 * file 0600 and its folder 0700, written atomically). Later calls return the same secret.
 */
export function ensureAudioSecret(dataDir: string): string {
  const existing = readAudioSecret(dataDir);
  if (existing !== undefined) return existing;
  ensureSecretsDir(dataDir);
  const secret = hex(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
  const path = audioSecretPath(dataDir);
  writeSecretFile(path, secret + "\n", true);
  return readSecretFile(path);
}
