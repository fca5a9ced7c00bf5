/**
 * The parts of a `MediaAnswer` (docs/media.md) built from a vision result or an error: spec
 * 11.11's wire form of the visual context, and the error code and message of a failed job.
 */
import type { VisualContext as WireVisualContext } from "../../shared/messages.ts";
import { ImageError, VisionBusyError, type VisualContext } from "../vision/mod.ts";
import { MediaError } from "./link.ts";

/** Error code and message for a failed media job. */
export function describeError(error: unknown): { code: string; message: string } {
  if (error instanceof MediaError || error instanceof ImageError) {
    return { code: error.code, message: error.message };
  }
  if (error instanceof VisionBusyError) return { code: "busy", message: error.message };
  return { code: "internal", message: `internal error: ${(error as Error)?.message ?? error}` };
}

/** The spec 11.11 wire form of a vision result. */
export function wireContext(
  context: VisualContext,
  source: WireVisualContext["source"],
  timestamp: string,
  userContext?: string,
): WireVisualContext {
  const wire: WireVisualContext = {
    source,
    media: { type: "image", format: context.media.format, ...size(context), timestamp },
    analysis: {
      description: context.description,
      objects: context.objects.map((object) => ({
        label: object.label,
        confidence: object.confidence,
        bbox: object.bbox.map((v) => Math.max(0, v)) as [number, number, number, number],
      })),
    },
  };
  if (context.text_detected) wire.analysis!.text_detected = context.text_detected;
  if (userContext !== undefined) wire.user_context = userContext;
  return wire;
}

function size(context: VisualContext): { width: number; height: number } {
  return { width: context.media.width, height: context.media.height };
}

/** The `ok: false` part of an answer. */
export function failure(error: unknown): { ok: false; error: { code: string; message: string } } {
  const { code, message } = describeError(error);
  return { ok: false, error: { code, message: message.slice(0, 4000) } };
}
