import assert from "node:assert/strict";
import {
  addDevice,
  ensureRoleUsers,
  localDeviceLogin,
  MqttUserDirectory,
  mqttUsersPath,
  removeDevice,
  secretsDir,
  storedLogin,
  withStoredLogin,
} from "./credentials.ts";

async function withDir(run: (dir: string) => Promise<void> | void) {
  const dir = await Deno.makeTempDir({ prefix: "naila_credentials_" });
  try {
    await run(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ensureRoleUsers creates owner-only role logins once and keeps them", () =>
  withDir((dir) => {
    const first = ensureRoleUsers(dir);
    assert.deepEqual(Object.keys(first.users).sort(), ["naila-gateway", "naila-server"]);
    assert.equal(Deno.statSync(secretsDir(dir)).mode! & 0o777, 0o700);
    assert.equal(Deno.statSync(mqttUsersPath(dir)).mode! & 0o777, 0o600);
    const again = ensureRoleUsers(dir);
    assert.equal(again.users["naila-gateway"].password, first.users["naila-gateway"].password);
    assert.ok(first.users["naila-gateway"].password.length >= 32);
    assert.notEqual(first.users["naila-gateway"].password, first.users["naila-server"].password);
  }));

Deno.test("devices: add (idempotent), verify, remove; bad and reserved ids are refused", () =>
  withDir((dir) => {
    const users = new MqttUserDirectory(dir);
    const kitchen = addDevice(dir, "kitchen");
    assert.deepEqual(addDevice(dir, "kitchen"), kitchen);
    const pw = (text: string) => new TextEncoder().encode(text);
    assert.deepEqual(users.verify("kitchen", pw(kitchen.password)), {
      role: "device",
      user: "kitchen",
    });
    assert.equal(users.verify("kitchen", pw("wrong")), undefined);
    assert.equal(users.verify("kitchen", undefined), undefined);
    assert.equal(users.verify("__proto__", pw("x")), undefined);
    assert.throws(() => addDevice(dir, "a/b"), /device id "a\/b" contains '\/'/);
    assert.throws(() => addDevice(dir, "naila-gateway"), /reserved/);
    assert.equal(removeDevice(dir, "kitchen"), true);
    assert.equal(removeDevice(dir, "kitchen"), false);
    // The directory sees the removal at the next login (the file changed).
    assert.equal(users.verify("kitchen", pw(kitchen.password)), undefined);
    // A file broken by hand keeps the last good users instead of throwing in the broker.
    const hall = addDevice(dir, "hall");
    assert.ok(users.verify("hall", pw(hall.password)));
    Deno.writeTextFileSync(mqttUsersPath(dir), "{ not json");
    assert.ok(users.verify("hall", pw(hall.password)));
  }));

Deno.test("withStoredLogin fills a missing login; localDeviceLogin adds a device on the server's machine", () =>
  withDir((dir) => {
    const config = { embedded: false, host: "127.0.0.1", port: 1883 };
    assert.deepEqual(withStoredLogin(config, dir, { role: "gateway" }), config);
    assert.equal(localDeviceLogin(dir, "kitchen"), undefined); // no server ran here
    ensureRoleUsers(dir);
    const gateway = withStoredLogin(config, dir, { role: "gateway" });
    assert.deepEqual(gateway, { ...config, ...storedLogin(dir, { role: "gateway" }) });
    const given = { ...config, username: "me", password: "pw" };
    assert.deepEqual(withStoredLogin(given, dir, { role: "gateway" }), given);
    const said: string[] = [];
    const login = localDeviceLogin(dir, "kitchen", (line) => said.push(line));
    assert.equal(login?.username, "kitchen");
    assert.equal(said.length, 1);
    assert.deepEqual(localDeviceLogin(dir, "kitchen"), login);
  }));
