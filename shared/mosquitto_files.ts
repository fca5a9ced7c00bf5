/**
 * What Mosquitto needs to enforce NAILA's security (spec 17.2) the way the embedded broker does:
 * a password file from the users of the data directory (`credentials.ts`), the ACL file of
 * `mqtt_acl.ts`, and a recommended `mosquitto.conf` (no anonymous clients, packet size limit,
 * optional TLS with the generated certificate). `deno task devices mosquitto --out DIR` writes them.
 *
 * Password hashes use Mosquitto 2.0's own format, `$7$` = PBKDF2-HMAC-SHA512 (mosquitto_passwd(1),
 * src/password_mosq.c): `user:$7$<iterations>$<base64 salt>$<base64 hash>`, so no
 * `mosquitto_passwd` is needed on the machine that writes them.
 *
 * @example
 * ```ts
 * import { writeMosquittoFiles } from "@naila/shared/mosquitto_files";
 * const files = await writeMosquittoFiles("./data", "./mosquitto", { port: 1883 });
 * // mosquitto -c ./mosquitto/mosquitto.conf
 * ```
 */
import { join, resolve } from "node:path";
import { brokerCertificatePaths, ensureBrokerCertificate } from "./certificates.ts";
import { ensureRoleUsers, SECRET_DIR_MODE, writeSecretFile } from "./credentials.ts";
import { MAX_MEDIA_PACKET_BYTES, mosquittoAcl } from "./mqtt_acl.ts";

/** mosquitto_passwd's default PBKDF2 iteration count (Mosquitto 2.0: PW_DEFAULT_ITERATIONS). */
export const MOSQUITTO_PBKDF2_ITERATIONS = 101;
/** Salt length of mosquitto_passwd (SALT_LEN). */
const SALT_BYTES = 12;
/** SHA-512 output: the hash length mosquitto compares. */
const HASH_BITS = 512;

function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** A Mosquitto `$7$` (PBKDF2-SHA512) hash of `password`; `salt` random when not given. */
export async function mosquittoPasswordHash(
  password: string,
  salt: Uint8Array = crypto.getRandomValues(new Uint8Array(SALT_BYTES)),
  iterations: number = MOSQUITTO_PBKDF2_ITERATIONS,
): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(password),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-512", salt: salt as BufferSource, iterations },
    key,
    HASH_BITS,
  );
  return `$7$${iterations}$${base64(salt)}$${base64(new Uint8Array(bits))}`;
}

/** Options of {@link writeMosquittoFiles}. */
export interface MosquittoFileOptions {
  /** Listener port; default 1883 (8883 with TLS). */
  port?: number;
  /** Listener address; default all interfaces (the gateway and devices are on the LAN). */
  bindHost?: string;
  /** Listen with TLS, using (and generating when missing) the data dir's certificate. */
  tls?: boolean;
  /** Extra host names for a generated server certificate. */
  tlsHosts?: string[];
}

/** Paths written by {@link writeMosquittoFiles}. */
export interface MosquittoFiles {
  config: string;
  passwordFile: string;
  aclFile: string;
}

/**
 * Writes `passwd` (0600), `acl` and `mosquitto.conf` into `outDir` (created 0700) for the users
 * of `dataDir` (creating the role users on first use). Rerun after `devices add`/`remove`, then
 * reload mosquitto (SIGHUP). Paths in the config are absolute.
 */
export async function writeMosquittoFiles(
  dataDir: string,
  outDir: string,
  options: MosquittoFileOptions = {},
): Promise<MosquittoFiles> {
  const users = ensureRoleUsers(dataDir).users;
  Deno.mkdirSync(outDir, { recursive: true, mode: SECRET_DIR_MODE });
  const files: MosquittoFiles = {
    config: resolve(join(outDir, "mosquitto.conf")),
    passwordFile: resolve(join(outDir, "passwd")),
    aclFile: resolve(join(outDir, "acl")),
  };
  const lines: string[] = [];
  for (const [name, user] of Object.entries(users)) {
    lines.push(`${name}:${await mosquittoPasswordHash(user.password)}`);
  }
  writeSecretFile(files.passwordFile, lines.join("\n") + "\n");
  writeSecretFile(files.aclFile, mosquittoAcl());
  const port = options.port ?? (options.tls ? 8883 : 1883);
  const listener = options.bindHost ? `listener ${port} ${options.bindHost}` : `listener ${port}`;
  const config = [
    "# NAILA's recommended Mosquitto configuration (deno task devices mosquitto).",
    "# Every client logs in; each may use only its own topics (acl); no packet over the limit.",
    "per_listener_settings false",
    "allow_anonymous false",
    `password_file ${files.passwordFile}`,
    `acl_file ${files.aclFile}`,
    "# Largest packet: a media message (8 MiB of base64 media plus envelope); control messages",
    "# are far smaller, and mosquitto drops the connection of a client that sends more.",
    `max_packet_size ${MAX_MEDIA_PACKET_BYTES}`,
    listener,
  ];
  if (options.tls) {
    await ensureBrokerCertificate(dataDir, options.tlsHosts);
    const tls = brokerCertificatePaths(dataDir);
    config.push(
      `cafile ${resolve(tls.ca)}`,
      `certfile ${resolve(tls.cert)}`,
      `keyfile ${resolve(tls.key)}`,
      "tls_version tlsv1.2",
    );
  }
  writeSecretFile(files.config, config.join("\n") + "\n");
  return files;
}
