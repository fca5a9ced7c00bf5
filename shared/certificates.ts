/**
 * The MQTT TLS material NAILA generates on first start when TLS is on (MQTT_TLS=true): a private
 * CA and a server certificate signed by it, in `NAILA_DATA_DIR/secrets/tls/` (keys 0600). Clients
 * trust the CA (`ca.pem`, printed by `deno task devices add`); Mosquitto uses `server.pem` and
 * `server.key` (`deno task devices mosquitto`).
 *
 * Made with Debian's `openssl` CLI (OpenSSL 3, installed with `ca-certificates` on every Debian
 * and Raspberry Pi OS): the standard tool Mosquitto's own TLS guide uses, no JavaScript crypto of
 * ours, and ECDSA P-256 keys that every MQTT client and broker here accepts.
 *
 * @example
 * ```ts
 * import { ensureBrokerCertificate } from "@naila/shared/certificates";
 * const files = await ensureBrokerCertificate("./data", ["mqtt.home.lan"]);
 * files.ca; // "./data/secrets/tls/ca.pem"
 * ```
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ensureSecretsDir, SECRET_DIR_MODE, SECRET_FILE_MODE } from "./credentials.ts";

/** CA lifetime: ten years, so a home install never meets an expired CA. */
const CA_DAYS = 3650;
/** Server certificate lifetime: about two years; regenerate by deleting server.pem. */
const SERVER_DAYS = 825;

/** Paths of the generated PEM files. */
export interface BrokerCertificateFiles {
  ca: string;
  caKey: string;
  cert: string;
  key: string;
}

/** `dataDir/secrets/tls/…` paths (whether or not they exist yet). */
export function brokerCertificatePaths(dataDir: string): BrokerCertificateFiles {
  const dir = join(dataDir, "secrets", "tls");
  return {
    ca: join(dir, "ca.pem"),
    caKey: join(dir, "ca.key"),
    cert: join(dir, "server.pem"),
    key: join(dir, "server.key"),
  };
}

async function openssl(args: string[]): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output();
  } catch (error) {
    throw new Error(
      `openssl is needed to generate the MQTT TLS certificate (Debian package "openssl"): ${error}`,
    );
  }
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

/**
 * The names a client may use for this machine: loopback, its host name and mDNS name, and the
 * addresses of its network interfaces (a Pi may be given the server's LAN address).
 */
export function defaultCertificateHosts(): string[] {
  const hostname = Deno.hostname();
  let addresses: string[] = [];
  try {
    addresses = Deno.networkInterfaces()
      .filter((i) => i.family === "IPv4" || !i.address.startsWith("fe80"))
      .map((i) => i.address);
  } catch {
    // no --allow-sys: loopback and names only
  }
  return ["localhost", "127.0.0.1", "::1", hostname, `${hostname}.local`, ...addresses];
}

/**
 * Creates the CA (once) and a server certificate for `hosts` (plus {@link
 * defaultCertificateHosts}) when missing; returns the paths. Existing files are kept.
 * Throws when openssl is missing or fails, naming it.
 */
export async function ensureBrokerCertificate(
  dataDir: string,
  hosts: string[] = [],
): Promise<BrokerCertificateFiles> {
  ensureSecretsDir(dataDir);
  const files = brokerCertificatePaths(dataDir);
  const dir = join(dataDir, "secrets", "tls");
  Deno.mkdirSync(dir, { recursive: true, mode: SECRET_DIR_MODE });
  Deno.chmodSync(dir, SECRET_DIR_MODE);
  const curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  if (!existsSync(files.ca) || !existsSync(files.caKey)) {
    await openssl([
      "req",
      "-x509",
      ...curve,
      "-keyout",
      files.caKey,
      "-out",
      files.ca,
      "-days",
      String(CA_DAYS),
      "-subj",
      `/CN=NAILA local CA ${crypto.randomUUID().slice(0, 8)}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
  }
  if (!existsSync(files.cert) || !existsSync(files.key)) {
    const names = [...new Set([...hosts, ...defaultCertificateHosts()])];
    const san = names.map((name) => (/^[0-9.]+$|:/.test(name) ? `IP:${name}` : `DNS:${name}`));
    const request = join(dir, "server.csr");
    const extensions = join(dir, "server.ext");
    await openssl([
      "req",
      "-new",
      ...curve,
      "-keyout",
      files.key,
      "-out",
      request,
      "-subj",
      "/CN=NAILA MQTT broker",
    ]);
    Deno.writeTextFileSync(
      extensions,
      `basicConstraints=critical,CA:FALSE\nsubjectAltName=${san.join(",")}\n` +
        "extendedKeyUsage=serverAuth\n",
    );
    try {
      await openssl([
        "x509",
        "-req",
        "-in",
        request,
        "-CA",
        files.ca,
        "-CAkey",
        files.caKey,
        "-CAcreateserial",
        "-out",
        files.cert,
        "-days",
        String(SERVER_DAYS),
        "-extfile",
        extensions,
      ]);
    } finally {
      for (const path of [request, extensions, join(dir, "ca.srl")]) {
        if (existsSync(path)) Deno.removeSync(path);
      }
    }
  }
  for (const key of [files.caKey, files.key]) Deno.chmodSync(key, SECRET_FILE_MODE);
  return files;
}
