/**
 * NAILA's MQTT users, kept in the data directory (NAILA_DATA_DIR) with owner-only permissions:
 * `secrets/` is 0700 and `secrets/mqtt_users.json` 0600, like an SSH key directory. The server
 * creates the `server` and `gateway` users on first start ({@link ensureRoleUsers}); `deno task
 * devices add <id>` adds one user per device. The embedded broker checks logins against this file
 * (re-read when it changes, so an added device can connect without a restart); for Mosquitto,
 * `mosquitto_files.ts` turns it into a password file.
 *
 * Passwords are kept readable (not only hashed) because the gateway and a device on the same
 * machine log in with them without any step; whoever can read the file owns the installation.
 *
 * @example
 * ```ts
 * import { addDevice, ensureRoleUsers, mqttUsersPath } from "@naila/shared/credentials";
 * ensureRoleUsers("./data");
 * const kitchen = addDevice("./data", "kitchen"); // { username: "kitchen", password: "…" }
 * ```
 */
import { timingSafeEqual } from "node:crypto";
import { join } from "node:path";
import type { MqttConfig } from "./config.ts";
import { idProblem } from "./ids.ts";
import { type MqttIdentity, type Role, ROLE_USERS } from "./mqtt_acl.ts";

/** Folder of secrets under the data directory. */
export const SECRETS_DIR = "secrets";
/** File of MQTT users under {@link SECRETS_DIR}. */
export const MQTT_USERS_FILE = "mqtt_users.json";
/** Owner-only directory (rwx------). */
export const SECRET_DIR_MODE = 0o700;
/** Owner-only file (rw-------). */
export const SECRET_FILE_MODE = 0o600;
/** 24 random bytes: 192 bits, far beyond guessing over a network. */
const PASSWORD_BYTES = 24;

/** One stored MQTT user. */
export interface StoredUser {
  role: Role;
  password: string;
  /** ISO 8601 creation time. */
  created: string;
}

/** The content of {@link MQTT_USERS_FILE}. */
export interface MqttUsersFile {
  version: 1;
  users: Record<string, StoredUser>;
}

/** A user name and password to log in with. */
export interface MqttLogin {
  username: string;
  password: string;
}

/** `dataDir/secrets`. */
export function secretsDir(dataDir: string): string {
  return join(dataDir, SECRETS_DIR);
}

/** `dataDir/secrets/mqtt_users.json`. */
export function mqttUsersPath(dataDir: string): string {
  return join(secretsDir(dataDir), MQTT_USERS_FILE);
}

/** Creates `dataDir/secrets` owner-only (0700), tightening it if it already exists. */
export function ensureSecretsDir(dataDir: string): string {
  const dir = secretsDir(dataDir);
  Deno.mkdirSync(dir, { recursive: true, mode: SECRET_DIR_MODE });
  Deno.chmodSync(dir, SECRET_DIR_MODE);
  return dir;
}

/** Writes `text` to `path` owner-only (0600), atomically (a reader never sees half a file). */
export function writeSecretFile(path: string, text: string): void {
  const temporary = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  Deno.writeTextFileSync(temporary, text, { mode: SECRET_FILE_MODE });
  Deno.chmodSync(temporary, SECRET_FILE_MODE);
  Deno.renameSync(temporary, path);
}

function newPassword(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(PASSWORD_BYTES));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}

/** Reads the users file, or undefined when it does not exist. Throws on a malformed file. */
export function readMqttUsers(dataDir: string): MqttUsersFile | undefined {
  const path = mqttUsersPath(dataDir);
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  const parsed = JSON.parse(text) as MqttUsersFile;
  if (parsed?.version !== 1 || typeof parsed.users !== "object" || parsed.users === null) {
    throw new Error(`${path} is not a NAILA users file (expected {"version":1,"users":{…}})`);
  }
  return parsed;
}

function writeMqttUsers(dataDir: string, file: MqttUsersFile): void {
  ensureSecretsDir(dataDir);
  writeSecretFile(mqttUsersPath(dataDir), JSON.stringify(file, null, 2) + "\n");
}

/**
 * Creates the users file with a `server` and a `gateway` user if they are missing (first start);
 * keeps existing passwords. Returns the file.
 */
export function ensureRoleUsers(dataDir: string): MqttUsersFile {
  const file = readMqttUsers(dataDir) ?? { version: 1, users: {} };
  let changed = false;
  for (const role of ["server", "gateway"] as const) {
    const name = ROLE_USERS[role];
    if (file.users[name]?.role === role) continue;
    file.users[name] = { role, password: newPassword(), created: new Date().toISOString() };
    changed = true;
  }
  if (changed) writeMqttUsers(dataDir, file);
  else ensureSecretsDir(dataDir);
  return file;
}

/** Why `id` cannot be a device's user name, or undefined when it can. */
export function deviceIdProblem(id: string): string | undefined {
  const problem = idProblem(id);
  if (problem !== undefined) return `device id ${JSON.stringify(id)} ${problem}`;
  if ((Object.values(ROLE_USERS) as string[]).includes(id)) {
    return `device id ${JSON.stringify(id)} is reserved for a NAILA role`;
  }
  return undefined;
}

/**
 * Adds a device user (or returns the existing one's login: adding twice is harmless).
 * Throws a TypeError when `id` is not a valid device id.
 */
export function addDevice(dataDir: string, id: string): MqttLogin {
  const problem = deviceIdProblem(id);
  if (problem !== undefined) throw new TypeError(problem);
  const file = ensureRoleUsers(dataDir);
  const existing = file.users[id];
  if (existing?.role === "device") return { username: id, password: existing.password };
  const user: StoredUser = {
    role: "device",
    password: newPassword(),
    created: new Date().toISOString(),
  };
  file.users[id] = user;
  writeMqttUsers(dataDir, file);
  return { username: id, password: user.password };
}

/** Removes a device user; returns false when there was none. */
export function removeDevice(dataDir: string, id: string): boolean {
  const file = readMqttUsers(dataDir);
  if (file?.users[id]?.role !== "device") return false;
  delete file.users[id];
  writeMqttUsers(dataDir, file);
  return true;
}

/** The stored login of a role, or of device `device`; undefined when there is none. */
export function storedLogin(
  dataDir: string,
  who: { role: "server" | "gateway" } | { role: "device"; device: string },
): MqttLogin | undefined {
  let file: MqttUsersFile | undefined;
  try {
    file = readMqttUsers(dataDir);
  } catch {
    return undefined;
  }
  const username = who.role === "device" ? who.device : ROLE_USERS[who.role];
  const user = file?.users[username];
  return user?.role === who.role ? { username, password: user.password } : undefined;
}

/**
 * The login of device `id` on the server's own machine: the stored one, or, when the data
 * directory has a users file (a server ran here) but no user for `id`, a new one (what `deno task
 * devices add` does; `say` tells the user). Undefined when `dataDir` has no users file.
 */
export function localDeviceLogin(
  dataDir: string,
  id: string,
  say: (line: string) => void = () => {},
): MqttLogin | undefined {
  const stored = storedLogin(dataDir, { role: "device", device: id });
  if (stored) return stored;
  if (storedLogin(dataDir, { role: "gateway" }) === undefined) return undefined;
  const login = addDevice(dataDir, id);
  say(`added MQTT user for device ${id} to ${mqttUsersPath(dataDir)}`);
  return login;
}

/**
 * `config` with the stored login of `who` when no MQTT_USERNAME was given (one machine: the
 * gateway finds the server's data directory), and the generated CA when TLS is on without
 * MQTT_CA. Returns `config` unchanged when nothing applies.
 */
export function withStoredLogin(
  config: MqttConfig,
  dataDir: string,
  who: { role: "server" | "gateway" } | { role: "device"; device: string },
): MqttConfig {
  let result = config;
  if (config.username === undefined) {
    const login = storedLogin(dataDir, who);
    if (login) result = { ...result, ...login };
  }
  if (config.tls && config.tls.ca === undefined) {
    const ca = join(secretsDir(dataDir), "tls", "ca.pem");
    try {
      Deno.statSync(ca);
      result = { ...result, tls: { ...config.tls, ca } };
    } catch {
      // no generated CA: the system's trust store applies
    }
  }
  return result;
}

/**
 * Checks logins against the users file of a data directory, re-reading it when it changes (an
 * added or removed device takes effect at its next connect).
 */
export class MqttUserDirectory {
  #path: string;
  #dataDir: string;
  #version = "";
  #users: Record<string, StoredUser> = {};

  constructor(dataDir: string) {
    this.#dataDir = dataDir;
    this.#path = mqttUsersPath(dataDir);
  }

  #refresh(): void {
    let version: string;
    try {
      // Every write is a rename onto the path: a new inode, even within one mtime tick.
      const stat = Deno.statSync(this.#path);
      version = `${stat.ino}:${stat.mtime?.getTime()}:${stat.size}`;
    } catch {
      this.#users = {};
      this.#version = "";
      return;
    }
    if (version === this.#version) return;
    try {
      this.#users = readMqttUsers(this.#dataDir)?.users ?? {};
      this.#version = version;
    } catch {
      // A broken file (edited by hand) keeps the last good users; a login never throws.
    }
  }

  /** The identity of `username` when `password` is right, else undefined (constant-time check). */
  verify(username: string | undefined, password: Uint8Array | undefined): MqttIdentity | undefined {
    if (username === undefined || password === undefined) return undefined;
    this.#refresh();
    const user = Object.hasOwn(this.#users, username) ? this.#users[username] : undefined;
    if (user === undefined) return undefined;
    const expected = new TextEncoder().encode(user.password);
    const ok = expected.length === password.length && timingSafeEqual(expected, password);
    return ok ? { role: user.role, user: username } : undefined;
  }
}
