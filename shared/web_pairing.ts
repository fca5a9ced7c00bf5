/**
 * Pairing of browsers with the gateway's device page (issue 10): the gateway keeps a pairing
 * code and, per paired browser device id, the SHA-256 of that browser's token, in
 * `NAILA_DATA_DIR/secrets/web_pairing.json` (0600, its folder 0700). The user opens the pairing
 * link once (`http://gateway:8080/?pair=CODE`, printed at the gateway's start and by
 * `deno task devices pair`); the page trades the code for a device id and a token it keeps in
 * localStorage, and shows the token on every signaling connection. An id that has a token can
 * only be used (or taken over by a second tab) with that token.
 *
 * @example
 * ```ts
 * const pairing = WebPairing.open("./data");
 * const { device, token } = pairing.pair(pairing.code);
 * pairing.verify(device, token); // true
 * ```
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { join } from "node:path";
import { idProblem } from "./ids.ts";
import { BROWSER_DEVICE_PREFIX } from "./mqtt_acl.ts";
import { ensureSecretsDir, secretsDir, writeSecretFile } from "./secret_files.ts";

/** The file under `secrets/`. */
export const WEB_PAIRING_FILE = "web_pairing.json";
/** Browser device ids start with this, so a page can never take over a hardware device's id. */
export const BROWSER_ID_PREFIX = BROWSER_DEVICE_PREFIX; // the broker's ACL uses the same prefix
/** 16 random bytes for the code (typed once from a link), 32 for a token (kept by the page). */
const CODE_BYTES = 16;
const TOKEN_BYTES = 32;
/** Random letters of a new browser id: web_ + 8 hex digits. */
const NEW_ID_BYTES = 4;
/** Paired browsers kept at most: a household's phones and laptops, not a flood. */
export const MAX_PAIRED_BROWSERS = 64;

interface PairingFile {
  version: 1;
  code: string;
  devices: Record<string, { token_sha256: string; created: string }>;
}

/** Why a pairing or a token was refused, in words the page shows. */
export class PairingError extends Error {
  constructor(readonly code: "bad_code" | "taken" | "full" | "bad_id", message: string) {
    super(message);
    this.name = "PairingError";
  }
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function random(bytes: number): string {
  return hex(crypto.getRandomValues(new Uint8Array(bytes)));
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function sameText(a: string, b: string): boolean {
  const encoder = new TextEncoder();
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `dataDir/secrets/web_pairing.json`. */
export function webPairingPath(dataDir: string): string {
  return join(secretsDir(dataDir), WEB_PAIRING_FILE);
}

/** The pairing store of one data directory; see the module doc. */
export class WebPairing {
  #dataDir: string;
  #path: string;
  #file: PairingFile;
  /** mtime and size of the file as last read or written: another process (the CLI) may change it. */
  #stamp = "";

  private constructor(dataDir: string, file: PairingFile) {
    this.#dataDir = dataDir;
    this.#path = webPairingPath(dataDir);
    this.#file = file;
    this.#stamp = this.#statStamp();
  }

  #statStamp(): string {
    try {
      const stat = Deno.statSync(this.#path);
      return `${stat.mtime?.getTime()}:${stat.size}`;
    } catch {
      return "";
    }
  }

  /** Re-reads the file when another process changed it (a browser paired by the CLI). */
  #refresh(): void {
    const stamp = this.#statStamp();
    if (stamp === this.#stamp || stamp === "") return;
    try {
      const file = JSON.parse(Deno.readTextFileSync(this.#path)) as PairingFile;
      if (file?.version === 1 && typeof file.devices === "object") this.#file = file;
    } catch {
      // Half-written by hand, or gone: keep what we had.
    }
    this.#stamp = stamp;
  }

  /** Opens (or creates, with a new code) the store. Throws when the file is malformed. */
  static open(dataDir: string): WebPairing {
    const path = webPairingPath(dataDir);
    let file: PairingFile;
    try {
      file = JSON.parse(Deno.readTextFileSync(path));
      if (
        file?.version !== 1 || typeof file.code !== "string" || typeof file.devices !== "object"
      ) {
        throw new Error(`${path} is not a NAILA pairing file`);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      file = { version: 1, code: random(CODE_BYTES), devices: {} };
      const pairing = new WebPairing(dataDir, file);
      pairing.#save();
      return pairing;
    }
    return new WebPairing(dataDir, file);
  }

  /** The pairing code (32 hex digits). */
  get code(): string {
    return this.#file.code;
  }

  /** Paired browser ids. */
  devices(): string[] {
    this.#refresh();
    return Object.keys(this.#file.devices);
  }

  /** The link a user opens once per browser. */
  link(pageUrl: string): string {
    return `${pageUrl.replace(/\/$/, "")}/?pair=${this.code}`;
  }

  /**
   * Trades the pairing code for a browser id and its token. `wanted` is kept when it is a free
   * browser id; an id that is already paired is refused (taking it over needs its token).
   * Throws a {@link PairingError}.
   */
  pair(code: string, wanted?: string): { device: string; token: string } {
    this.#refresh();
    if (!sameText(code, this.#file.code)) {
      throw new PairingError(
        "bad_code",
        "the pairing code is wrong: open the gateway's link again",
      );
    }
    if (this.devices().length >= MAX_PAIRED_BROWSERS) {
      throw new PairingError(
        "full",
        `${MAX_PAIRED_BROWSERS} browsers are paired already: remove one first`,
      );
    }
    let device = wanted;
    if (device !== undefined) {
      const problem = idProblem(device) ??
        (device.startsWith(BROWSER_ID_PREFIX)
          ? undefined
          : `does not start with ${BROWSER_ID_PREFIX}`);
      if (problem !== undefined) {
        throw new PairingError("bad_id", `device ${JSON.stringify(device)} ${problem}`);
      }
      if (Object.hasOwn(this.#file.devices, device)) {
        throw new PairingError(
          "taken",
          `device ${device} is paired with another browser; pair without an id for a new one`,
        );
      }
    }
    while (device === undefined || Object.hasOwn(this.#file.devices, device)) {
      device = `${BROWSER_ID_PREFIX}${random(NEW_ID_BYTES)}`;
    }
    const token = random(TOKEN_BYTES);
    this.#file.devices[device] = { token_sha256: sha256(token), created: new Date().toISOString() };
    this.#save();
    return { device, token };
  }

  /** Whether `token` is the token of browser id `device` (constant-time on the hashes). */
  verify(device: string, token: string | null | undefined): boolean {
    if (typeof token !== "string" || token.length === 0 || token.length > 2 * TOKEN_BYTES) {
      return false;
    }
    this.#refresh();
    const entry = Object.hasOwn(this.#file.devices, device)
      ? this.#file.devices[device]
      : undefined;
    return entry !== undefined && sameText(entry.token_sha256, sha256(token));
  }

  /** Forgets a paired browser; false when there was none. */
  remove(device: string): boolean {
    if (!Object.hasOwn(this.#file.devices, device)) return false;
    delete this.#file.devices[device];
    this.#save();
    return true;
  }

  #save(): void {
    ensureSecretsDir(this.#dataDir);
    writeSecretFile(this.#path, JSON.stringify(this.#file, null, 2) + "\n");
    this.#stamp = this.#statStamp();
  }
}
