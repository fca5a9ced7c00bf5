/**
 * Throwaway TLS material for tests: a self-signed certificate made by the openssl CLI (Debian's
 * `openssl` package, which `ca-certificates` depends on), trusted by a Deno client that is told
 * about it and by nothing else.
 *
 * @example
 * ```ts
 * const { cert, key } = await selfSignedCertificate(dir);
 * const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(cert)] });
 * ```
 */

/** Writes `cert.pem` and `key.pem` (P-256, for localhost and 127.0.0.1, valid 1 day) into `dir`. */
export async function selfSignedCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/cert.pem`;
  const key = `${dir}/key.pem`;
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      // An end-entity certificate: rustls refuses a CA certificate as a server's own.
      "-addext",
      "basicConstraints=critical,CA:FALSE",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`openssl failed: ${new TextDecoder().decode(out.stderr)}`);
  return { cert, key };
}
