/** Moved to scripts/lib (shared with the demo and the benchmarks); kept for existing imports. */
export * from "../../scripts/lib/ports.ts";
