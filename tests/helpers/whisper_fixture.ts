/** Moved to scripts/lib (a benchmark uses it too); kept for existing imports. */
export * from "../../scripts/lib/whisper_fixture_path.ts";
