/**
 * Real test photos for the vision tests (issue 12): Debian's python3-skimage package ships
 * astronaut.png (a person), chelsea.png (a cat), coffee.png (a cup), motorcycle_left.png (a
 * motorcycle) and page.png (printed text). It is fetched with `apt-get download` and unpacked
 * with `dpkg-deb -x` into test-data/ (git-ignored) without installing anything. Idempotent: does
 * nothing when the photos are there. Run by scripts/setup.ts.
 *
 * Usage: deno run -A scripts/test_photos.ts [--quiet]
 */
import { join } from "node:path";

/** Where the photos land, relative to the repository root. */
export const PHOTOS_DIR = "test-data/photos";
/** The photos the tests use; all of them must be present for set-up to be skipped. */
export const PHOTOS = [
  "astronaut.png",
  "chelsea.png",
  "coffee.png",
  "motorcycle_left.png",
  "page.png",
] as const;
/** The package's data folder inside the unpacked .deb. */
const SKIMAGE_DATA = "usr/lib/python3/dist-packages/skimage/data";
const PACKAGE = "python3-skimage";

/** The name of one test photo, without ".png". */
export type Photo = (typeof PHOTOS)[number] extends `${infer Name}.png` ? Name : never;

/** The absolute path of one test photo (after {@link ensureTestPhotos}). */
export function photoPath(name: Photo): string {
  return new URL(`../${PHOTOS_DIR}/${name}.png`, import.meta.url).pathname;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function run(command: string, args: string[], cwd: string): Promise<void> {
  const { success, code, stderr } = await new Deno.Command(command, {
    args,
    cwd,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(
      `${command} ${args.join(" ")} exited with ${code}: ${new TextDecoder().decode(stderr)}`,
    );
  }
}

/**
 * Downloads and unpacks python3-skimage's photos into `root`/test-data/photos unless they are all
 * there. Throws when apt-get or dpkg-deb fail (no network to the Debian mirror, say).
 */
export async function ensureTestPhotos(root: string, quiet = false): Promise<void> {
  const target = join(root, PHOTOS_DIR);
  const present = await Promise.all(PHOTOS.map((name) => exists(join(target, name))));
  if (present.every(Boolean)) return;
  if (!quiet) console.error(`setup: fetching test photos from Debian's ${PACKAGE}`);
  const work = await Deno.makeTempDir({ prefix: "naila-skimage-" });
  try {
    await run("apt-get", ["download", "-qq", PACKAGE], work);
    const deb = [...Deno.readDirSync(work)].find((entry) => entry.name.endsWith(".deb"));
    if (deb === undefined) throw new Error(`apt-get download ${PACKAGE} left no .deb`);
    await run("dpkg-deb", ["-x", deb.name, "unpacked"], work);
    await Deno.mkdir(target, { recursive: true });
    for (const name of PHOTOS) {
      // Copy beside, then rename (atomic): a test process running in parallel never reads half a file.
      const partial = join(target, `.${name}.${Deno.pid}.partial`);
      await Deno.copyFile(join(work, "unpacked", SKIMAGE_DATA, name), partial);
      await Deno.rename(partial, join(target, name));
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

if (import.meta.main) {
  await ensureTestPhotos(new URL("..", import.meta.url).pathname, Deno.args.includes("--quiet"));
}
