/**
 * `deno task bundle:pi`: a self-contained gateway bundle for a Raspberry Pi (arm64 Linux), built
 * on any x86 or arm64 machine: dist/naila-gateway-arm64.tar.gz.
 *
 * `deno compile` would be the natural tool, but it downloads a `denort` runtime from the internet
 * for every target, and no npm package ships one (ENVIRONMENT.md). So the bundle is the arm64 Deno
 * binary from npm (`@deno/linux-arm64-glibc`, the same version as ours), the source, the Silero
 * model and the npm dependencies as `deno install` laid them out, trimmed to what the gateway
 * loads. On the Pi: `tar xzf naila-gateway-arm64.tar.gz && naila/gateway.sh` — no network needed.
 *
 * Usage: deno task bundle:pi [--arch arm64|x64] [--out DIR]   (x64: a bundle to test here)
 */
import { type Cli, parseCli } from "./lib/cli.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** Must match the Deno that resolved deno.lock (ENVIRONMENT.md: arm64 builds stop at 2.9.5). */
const DENO_VERSION = "2.9.5";
const DENO_PACKAGES: Record<string, string> = {
  arm64: "@deno/linux-arm64-glibc",
  x64: "@deno/linux-x64-glibc",
};
/** Source the gateway process runs. */
const SOURCE = ["deno.lock", "shared", "gateway"];
/** The npm packages the gateway and shared/ import; the bundle's import map has only these. */
const GATEWAY_PACKAGES = [
  "mqtt",
  "onnxruntime-node",
  // Camera frames to JPEG (gateway/video/jpeg.ts, loaded on first use).
  "sharp",
  "werift",
  "ws",
  "@types/ws",
  "zod",
];

async function run(command: string, args: string[], cwd?: string): Promise<void> {
  const output = await new Deno.Command(command, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr).trim()}`,
    );
  }
}

/** Copies `from` to `to` (files or folders), skipping tests and anything `skip` matches. */
async function copy(from: string, to: string, skip: (name: string) => boolean = () => false) {
  const info = await Deno.lstat(from);
  if (info.isSymlink) {
    await Deno.symlink(await Deno.readLink(from), to);
  } else if (info.isDirectory) {
    await Deno.mkdir(to, { recursive: true });
    for await (const entry of Deno.readDir(from)) {
      if (!skip(entry.name)) await copy(`${from}/${entry.name}`, `${to}/${entry.name}`, skip);
    }
  } else {
    await Deno.copyFile(from, to);
  }
}

/** Keeps only the onnxruntime native binaries for `arch` Linux (the package ships six platforms). */
async function trimOnnxRuntime(modules: string, arch: string) {
  for await (const entry of Deno.readDir(modules)) {
    if (!entry.name.startsWith("onnxruntime-node@")) continue;
    const bin = `${modules}/${entry.name}/node_modules/onnxruntime-node/bin/napi-v6`;
    for await (const platform of Deno.readDir(bin)) {
      for await (const cpu of Deno.readDir(`${bin}/${platform.name}`)) {
        if (platform.name !== "linux" || cpu.name !== arch) {
          await Deno.remove(`${bin}/${platform.name}/${cpu.name}`, { recursive: true });
        }
      }
    }
  }
}

const LAUNCHER = `#!/bin/sh
# Starts the NAILA gateway from this bundle. Configure with the environment (README), e.g.
#   MQTT_HOST=main-server.local AI_SERVER_HOST=main-server.local ./gateway.sh
cd "$(dirname "$0")" || exit 1
export DENO_DIR="\${DENO_DIR:-$PWD/.deno-cache}"
exec ./bin/deno run -A --cached-only gateway/main.ts "$@"
`;

/** Builds the bundle; returns the path of the .tar.gz. */
export async function bundle(options: { arch: string; out: string }): Promise<string> {
  const { arch, out } = options;
  const denoPackage = DENO_PACKAGES[arch];
  if (!denoPackage) {
    throw new Error(`--arch ${arch} is not one of ${Object.keys(DENO_PACKAGES).join("|")}`);
  }
  await run(Deno.execPath(), ["install", "--quiet"], ROOT);
  await run(Deno.execPath(), ["run", "-A", "scripts/models.ts", "--no-whisper", "--quiet"], ROOT);
  const work = await Deno.makeTempDir({ prefix: "naila_bundle_" });
  try {
    const target = `${work}/naila`;
    await Deno.mkdir(`${target}/bin`, { recursive: true });
    await run("npm", ["pack", "--silent", `${denoPackage}@${DENO_VERSION}`], work);
    const tarball = [...Deno.readDirSync(work)].find((e) => e.name.endsWith(".tgz"))!.name;
    await run("tar", ["xzf", tarball, "-C", work], work);
    await Deno.rename(`${work}/package/deno`, `${target}/bin/deno`);
    await Deno.chmod(`${target}/bin/deno`, 0o755);
    for (const path of SOURCE) {
      await copy(`${ROOT}${path}`, `${target}/${path}`, (name) => name.endsWith("_test.ts"));
    }
    await Deno.mkdir(`${target}/models`);
    await Deno.copyFile(`${ROOT}models/silero_vad_v5.onnx`, `${target}/models/silero_vad_v5.onnx`);
    await Deno.copyFile(`${ROOT}models/manifest.json`, `${target}/models/manifest.json`);
    // A workspace of just shared/ and gateway/, whose node_modules `deno install` lays out from
    // the local npm cache: Deno runs it offline with --cached-only.
    const rootConfig = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
    const imports = Object.fromEntries(
      GATEWAY_PACKAGES.map((name) => [name, rootConfig.imports[name]]),
    );
    await Deno.writeTextFile(
      `${target}/deno.json`,
      JSON.stringify(
        { workspace: ["./shared", "./gateway"], nodeModulesDir: "auto", imports },
        null,
        2,
      ),
    );
    // For the target CPU: sharp's native package is an optional dependency per platform, and a
    // plain install would lay out this machine's (x64 on an x64 build host), not the Pi's.
    await run(Deno.execPath(), ["install", "--quiet", "--os", "linux", "--arch", arch], target);
    await trimOnnxRuntime(`${target}/node_modules/.deno`, arch);
    await Deno.writeTextFile(`${target}/gateway.sh`, LAUNCHER);
    await Deno.chmod(`${target}/gateway.sh`, 0o755);
    await Deno.mkdir(out, { recursive: true });
    const archive = `${out}/naila-gateway-${arch}.tar.gz`;
    await run("tar", ["czf", archive, "-C", work, "naila"]);
    return archive;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

if (import.meta.main) {
  const cli: Cli = {
    command: "bundle:pi",
    usage: "usage: deno task bundle:pi [--arch arm64|x64] [--out DIR]",
  };
  const values = parseCli(cli, {
    arch: { type: "string", default: "arm64" },
    out: { type: "string", default: `${ROOT}dist` },
  });
  const archive = await bundle({ arch: values.arch, out: values.out });
  const size = (await Deno.stat(archive)).size / 1024 / 1024;
  console.log(
    `wrote ${archive} (${size.toFixed(0)} MB): copy it to the Pi, tar xzf, run naila/gateway.sh`,
  );
}
