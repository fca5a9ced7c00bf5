import assert from "node:assert/strict";
import { readMqttUsers } from "./credentials.ts";
import { mosquittoPasswordHash, writeMosquittoFiles } from "./mosquitto_files.ts";

Deno.test("mosquittoPasswordHash equals mosquitto_passwd's own $7$ hash", async () => {
  const file = await Deno.makeTempFile();
  try {
    const out = await new Deno.Command("mosquitto_passwd", {
      args: ["-b", file, "kitchen", "s3cret pass"],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const line = (await Deno.readTextFile(file)).trim();
    const [, , iterations, salt] = line.split("$");
    const saltBytes = Uint8Array.from(atob(salt), (c) => c.charCodeAt(0));
    const ours = await mosquittoPasswordHash("s3cret pass", saltBytes, Number(iterations));
    assert.equal(`kitchen:${ours}`, line);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("writeMosquittoFiles writes owner-only passwd, acl and a config that uses them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "naila_mosquitto_files_" });
  try {
    const files = await writeMosquittoFiles(dir, `${dir}/out`, { port: 1884 });
    const users = Object.keys(readMqttUsers(dir)!.users);
    const passwd = await Deno.readTextFile(files.passwordFile);
    assert.deepEqual(passwd.trim().split("\n").map((l) => l.split(":")[0]), users);
    assert.match(passwd, /^naila-gateway:\$7\$101\$/m);
    assert.equal((await Deno.stat(files.passwordFile)).mode! & 0o777, 0o600);
    const conf = await Deno.readTextFile(files.config);
    assert.match(conf, /^allow_anonymous false$/m);
    assert.match(conf, new RegExp(`^password_file ${files.passwordFile}$`, "m"));
    assert.match(conf, new RegExp(`^acl_file ${files.aclFile}$`, "m"));
    assert.match(conf, /^max_packet_size \d+$/m);
    assert.match(conf, /^listener 1884$/m);
    assert.doesNotMatch(conf, /certfile/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
