/**
 * One-time set-up, run by `deno task test` and `deno task demo` before anything else, so a fresh
 * Debian machine with only Node.js and npm needs no other step: the Debian packages NAILA runs
 * (installed with apt-get when running as root, otherwise named for the user to install), the npm
 * dependencies (`deno install`), the model files (`deno task models`) and the generated
 * Whisper-shaped models (scripts/make_whisper_models.ts). Idempotent and quick
 * when everything is present.
 */

import { type Cli, parseCli } from "./lib/cli.ts";

/** Debian package → a command it provides, which tells whether it is installed. */
const DEBIAN_PACKAGES: Record<string, string> = {
  mosquitto: "/usr/sbin/mosquitto", // the production MQTT broker; tests run it too
  "espeak-ng": "/usr/bin/espeak-ng", // the built-in text-to-speech voice and the tests' speech
  chromium: "/usr/bin/chromium", // headless browser for the browser device page test
  python3: "/usr/bin/python3", // runs the spec's own Python v1 server and client in the interop test
  ffmpeg: "/usr/bin/ffmpeg", // decodes recordings (Opus/WAV/MP3 → PCM) and samples video frames
  libvpx7: `/usr/lib/${Deno.build.arch}-linux-gnu/libvpx.so.7`, // the gateway's VP8 decoder (FFI)
  libopus0: `/usr/lib/${Deno.build.arch}-linux-gnu/libopus.so.0`, // every Opus encoder and decoder (FFI)
  openssl: "/usr/bin/openssl", // generates the private CA and certificates for MQTT/audio TLS
};

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function run(command: string, args: string[], env?: Record<string, string>): Promise<void> {
  const status = await new Deno.Command(command, {
    args,
    env,
    stdout: "inherit",
    stderr: "inherit",
  })
    .spawn().status;
  if (!status.success) throw new Error(`${command} ${args.join(" ")} exited with ${status.code}`);
}

async function installDebianPackages(): Promise<void> {
  const missing: string[] = [];
  for (const [name, path] of Object.entries(DEBIAN_PACKAGES)) {
    if (!await exists(path)) missing.push(name);
  }
  if (missing.length === 0) return;
  if (Deno.uid() !== 0) {
    console.error(
      `NAILA needs these Debian packages: sudo apt-get install -y ${missing.join(" ")}`,
    );
    Deno.exit(1);
  }
  console.error(`setup: installing Debian packages: ${missing.join(" ")}`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  await run("apt-get", ["update", "-qq"], env);
  await run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], env);
}

if (import.meta.main) {
  const cli: Cli = { command: "setup", usage: "usage: deno task setup   (no options)" };
  parseCli(cli, {});
  const root = new URL("..", import.meta.url).pathname;
  Deno.chdir(root);
  await installDebianPackages();
  await run(Deno.execPath(), ["install", "--quiet"]);
  await run(Deno.execPath(), ["run", "-A", "scripts/models.ts", "--quiet"]);
  // The whisper-tiny-shaped random model (145 MB, ~1.5 s) for the STT batch test and benchmarks:
  // made once here, so parallel test files never generate it at the same time.
  await run(Deno.execPath(), ["run", "-A", "scripts/make_whisper_models.ts"]);
  await run(Deno.execPath(), ["run", "-A", "scripts/test_photos.ts", "--quiet"]);
}
