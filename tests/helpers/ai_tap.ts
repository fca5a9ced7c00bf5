/** The AI-link relay of scripts/lib (shared with the turn-taking benchmark). */
export * from "../../scripts/lib/ai_tap.ts";
