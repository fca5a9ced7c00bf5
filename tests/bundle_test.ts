/**
 * The Pi bundle (scripts/bundle_pi.ts) is self-contained: built for x64 it starts the gateway in a
 * network namespace with nothing but loopback (no npm registry, no internet) and loads Silero; built
 * for arm64 it carries an aarch64 Deno. (Running the arm64 build needs a Pi; qemu-user's emulation
 * crashes onnxruntime's arm64 addon, ENVIRONMENT.md.)
 */
import assert from "node:assert/strict";
import { bundle } from "../scripts/bundle_pi.ts";
import { canCreateTestHost } from "./helpers/netns.ts";

/** ELF e_machine values (the ELF specification). */
const EM_AARCH64 = 0xb7;
const EM_X86_64 = 0x3e;

async function elfMachine(path: string): Promise<number> {
  const file = await Deno.open(path);
  try {
    const header = new Uint8Array(20);
    await file.read(header);
    assert.deepEqual([...header.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], `${path} is not ELF`);
    return header[18] | (header[19] << 8);
  } finally {
    file.close();
  }
}

async function unpack(archive: string, into: string): Promise<string> {
  const result = await new Deno.Command("tar", { args: ["xzf", archive, "-C", into] }).output();
  assert.ok(result.success, `tar xzf ${archive}`);
  return `${into}/naila`;
}

Deno.test({
  name: "the Pi bundle runs the gateway offline and ships an arm64 Deno",
  ignore: !(await canCreateTestHost()),
  fn: async () => {
    const temp = await Deno.makeTempDir({ prefix: "naila_bundle_test_" });
    const namespace = `naila_offline_${Deno.pid}`;
    let mosquitto: Deno.ChildProcess | undefined;
    try {
      const arm = await unpack(
        await bundle({ arch: "arm64", out: `${temp}/dist` }),
        await Deno.makeTempDir({ dir: temp }),
      );
      assert.equal(await elfMachine(`${arm}/bin/deno`), EM_AARCH64);
      const armAddon =
        `${arm}/node_modules/.deno/onnxruntime-node@1.30.0/node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/onnxruntime_binding.node`;
      assert.equal(await elfMachine(armAddon), EM_AARCH64);
      // sharp (camera JPEGs) for the Pi's CPU, not the build host's.
      const armSharp =
        `${arm}/node_modules/.deno/@img+sharp-linux-arm64@0.35.5/node_modules/@img/sharp-linux-arm64/lib/sharp-linux-arm64-0.35.5.node`;
      assert.equal(await elfMachine(armSharp), EM_AARCH64);

      const x64 = await unpack(
        await bundle({ arch: "x64", out: `${temp}/dist` }),
        await Deno.makeTempDir({ dir: temp }),
      );
      assert.equal(await elfMachine(`${x64}/bin/deno`), EM_X86_64);
      for (
        const args of [["netns", "add", namespace], ["-n", namespace, "link", "set", "lo", "up"]]
      ) {
        assert.ok(
          (await new Deno.Command("ip", { args }).output()).success,
          `ip ${args.join(" ")}`,
        );
      }
      const inNamespace = (command: string, args: string[], options: Deno.CommandOptions = {}) =>
        new Deno.Command("ip", {
          ...options,
          args: ["netns", "exec", namespace, command, ...args],
        });
      const port = 18830;
      await Deno.writeTextFile(
        `${temp}/mosquitto.conf`,
        `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`,
      );
      mosquitto = inNamespace("/usr/sbin/mosquitto", ["-c", `${temp}/mosquitto.conf`], {
        stdout: "null",
        stderr: "null",
      })
        .spawn();
      const gateway = await inNamespace("timeout", ["20", `${x64}/gateway.sh`], {
        env: { MQTT_HOST: "127.0.0.1", MQTT_PORT: String(port), GATEWAY_WEB: "off", HOME: temp },
        stdout: "null",
        stderr: "piped",
      }).spawn();
      let log = "";
      for await (const chunk of gateway.stderr.pipeThrough(new TextDecoderStream())) {
        log += chunk;
        if (log.includes('"signaling ready"')) break;
      }
      try {
        gateway.kill("SIGTERM");
      } catch { /* already gone */ }
      await gateway.status;
      assert.match(log, /"mode":"silero"/, "onnxruntime and the Silero model load from the bundle");
      assert.match(log, /"signaling ready"/, log.slice(-500));
    } finally {
      try {
        mosquitto?.kill("SIGKILL");
      } catch { /* gone */ }
      await mosquitto?.status;
      await new Deno.Command("ip", { args: ["netns", "del", namespace] }).output();
      await Deno.remove(temp, { recursive: true });
    }
  },
});
