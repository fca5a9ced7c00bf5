/**
 * Where the generated Whisper fixture model lives (`deno task models`, scripts/make_whisper_models.ts)
 * and whether it is there: tests that need it are skipped, not failed, on a checkout without it.
 */

/** models/whisper-fixture/, with a trailing slash. */
export const FIXTURE_DIR = new URL("../../models/whisper-fixture/", import.meta.url).pathname;

/** True when the fixture's ONNX files have been generated. */
export const hasFixture: boolean = (() => {
  try {
    return Deno.statSync(`${FIXTURE_DIR}onnx`).isDirectory;
  } catch {
    return false;
  }
})();
