/**
 * Owner-only files under `NAILA_DATA_DIR/secrets/` (0700 folder, 0600 files, like an SSH key
 * directory), written atomically. The same names and shapes as the MQTT side's
 * `shared/credentials.ts` (issue 10, branch sec): once both are in, this module folds into that one.
 *
 * @example
 * ```ts
 * ensureSecretsDir("./data");
 * writeSecretFile(join(secretsDir("./data"), "x.json"), "{}");
 * ```
 */
import { join } from "node:path";

/** Folder of secrets under the data directory. */
export const SECRETS_DIR = "secrets";
/** Owner-only directory (rwx------). */
export const SECRET_DIR_MODE = 0o700;
/** Owner-only file (rw-------). */
export const SECRET_FILE_MODE = 0o600;

/** `dataDir/secrets`. */
export function secretsDir(dataDir: string): string {
  return join(dataDir, SECRETS_DIR);
}

/** Creates `dataDir/secrets` owner-only (0700), tightening it if it already exists. */
export function ensureSecretsDir(dataDir: string): string {
  const dir = secretsDir(dataDir);
  Deno.mkdirSync(dir, { recursive: true, mode: SECRET_DIR_MODE });
  Deno.chmodSync(dir, SECRET_DIR_MODE);
  return dir;
}

/**
 * Writes `text` to `path` owner-only (0600), atomically (a reader never sees half a file).
 * With `keepExisting`, a file already at `path` (another process was first) is left as it is.
 */
export function writeSecretFile(path: string, text: string, keepExisting = false): void {
  const temporary = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  Deno.writeTextFileSync(temporary, text, { mode: SECRET_FILE_MODE });
  Deno.chmodSync(temporary, SECRET_FILE_MODE);
  if (!keepExisting) return Deno.renameSync(temporary, path);
  try {
    // link fails when the name exists: never replaces a secret another process wrote meanwhile.
    Deno.linkSync(temporary, path);
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  } finally {
    Deno.removeSync(temporary);
  }
}
