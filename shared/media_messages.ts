/**
 * The spec's media messages over MQTT: snapshot and recording requests and responses (11.5,
 * 11.6), uploads (11.9), visual context (11.11), and NAILA's answer to media (docs/media.md).
 * Each has a zod schema, an inferred type and a `parseX(input)` as in `messages.ts`, which
 * re-exports them all: import from there.
 */
import { z } from "zod";
import {
  AUDIO_FORMATS,
  base64Media,
  confidence,
  id,
  IMAGE_FORMATS,
  MAX_CONTROL_MESSAGE_CHARS,
  MAX_DURATION_MS,
  MAX_LIST_ITEMS,
  MAX_MEDIA_MESSAGE_CHARS,
  MAX_SAMPLE_RATE,
  name,
  type ParseResult,
  parseWith,
  pixels,
  text,
  timestamp,
  VIDEO_FORMATS,
} from "./message_fields.ts";

// ---- spec 11.5, 11.6: snapshot request and media responses --------------------------------------

const MediaRequestSchema = z.object({
  request_type: z.enum(["snapshot", "recording"]),
  request_id: id,
  params: z.object({
    resolution: z.string().regex(/^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$/, "expected WIDTHxHEIGHT")
      .optional(),
    format: z.enum([...IMAGE_FORMATS, ...AUDIO_FORMATS, ...VIDEO_FORMATS]).optional(),
    quality: z.int().min(1).max(100).optional(),
    duration_ms: z.int().min(1).max(MAX_DURATION_MS).optional(),
  }).optional(),
});
/** Media request on `naila/devices/{id}/media/request` (spec 11.5; "recording" for 11.6). */
export type MediaRequest = z.infer<typeof MediaRequestSchema>;

const SnapshotResponseSchema = z.object({
  request_id: id,
  media_type: z.literal("image"),
  format: z.enum(IMAGE_FORMATS),
  width: pixels,
  height: pixels,
  timestamp: timestamp,
  data: base64Media,
});
/** Snapshot on `naila/devices/{id}/media/snapshot` (spec 11.5). */
export type SnapshotResponse = z.infer<typeof SnapshotResponseSchema>;

const AudioRecordingSchema = z.object({
  request_id: id,
  media_type: z.literal("audio"),
  format: z.enum(AUDIO_FORMATS),
  duration_ms: z.int().min(0).max(MAX_DURATION_MS),
  sample_rate: z.int().min(1).max(MAX_SAMPLE_RATE).optional(),
  timestamp: timestamp,
  data: base64Media,
});
const VideoRecordingSchema = z.object({
  request_id: id,
  media_type: z.literal("video"),
  format: z.enum(VIDEO_FORMATS),
  duration_ms: z.int().min(0).max(MAX_DURATION_MS),
  width: pixels.optional(),
  height: pixels.optional(),
  timestamp: timestamp,
  data: base64Media,
});
const RecordingSchema = z.discriminatedUnion("media_type", [
  AudioRecordingSchema,
  VideoRecordingSchema,
]);
/** Audio or video clip (spec 11.6); the format must fit the media type. */
export type Recording = z.infer<typeof RecordingSchema>;

const MediaResponseSchema = z.discriminatedUnion("media_type", [
  SnapshotResponseSchema,
  AudioRecordingSchema,
  VideoRecordingSchema,
]);
/** Anything a device returns on `media/snapshot`: a snapshot or a recording, by media_type. */
export type MediaResponse = z.infer<typeof MediaResponseSchema>;

// ---- spec 11.9, 11.11 ---------------------------------------------------------------------------

const UploadSchema = z.object({
  session_id: id,
  media_type: z.literal("image"),
  format: z.enum(IMAGE_FORMATS),
  filename: z.string().min(1).max(255).optional(),
  context: text.optional(),
  conversation_id: id.optional(),
  data: base64Media,
});
/** Upload on `naila/uploads/{session_id}/image` (spec 11.9). */
export type Upload = z.infer<typeof UploadSchema>;

const DetectedObjectsSchema = z.array(z.object({
  label: name,
  confidence: confidence,
  // [x, y, width, height] in pixels, as the spec's example.
  bbox: z.tuple([
    z.number().min(0),
    z.number().min(0),
    z.number().min(0),
    z.number().min(0),
  ]),
})).max(MAX_LIST_ITEMS);

const VisualContextSchema = z.object({
  source: z.object({
    // NAILA adds mqtt_recording (a video clip's frame) and stored (an alert snapshot, 11.8).
    type: z.enum([
      "webrtc_stream",
      "mqtt_snapshot",
      "http_upload",
      "mqtt_upload",
      "mqtt_recording",
      "stored",
    ]),
    device_id: id.optional(),
    session_id: id.optional(),
  }),
  media: z.object({
    type: z.enum(["image", "video"]),
    format: z.enum([...IMAGE_FORMATS, ...VIDEO_FORMATS]),
    width: pixels,
    height: pixels,
    timestamp: timestamp,
  }),
  analysis: z.object({
    description: text.optional(),
    objects: DetectedObjectsSchema.optional(),
    scene_type: name.optional(),
    lighting: name.optional(),
    text_detected: z.array(text).max(MAX_LIST_ITEMS).optional(),
  }).optional(),
  user_context: text.optional(),
});
/** Visual context, normalized from any media source (spec 11.11). */
export type VisualContext = z.infer<typeof VisualContextSchema>;

// ---- NAILA's answers to media (docs/media.md) ---------------------------------------------------

/** Most video frames a clip's answer describes (server/media samples at most this many). */
export const MAX_ANSWER_FRAMES = 16;

const MediaAnswerSchema = z.object({
  // What was answered: a recording (11.6), an upload (11.7/11.9), a spoken visual question
  // (11.10), or a stored alert shown again (11.8, "show me the last alert").
  kind: z.enum(["recording", "upload", "visual_question", "history"]),
  ok: z.boolean(),
  timestamp: timestamp,
  request_id: id.optional(),
  session_id: id.optional(),
  conversation_id: id.optional(),
  // The question (an upload's context) or what STT heard in a recording.
  question: text.optional(),
  transcript: text.optional(),
  // The sentence that answers it, as spoken on the device.
  answer: text.optional(),
  visual_context: VisualContextSchema.optional(),
  // A video clip: what was seen in each sampled frame, at its time in the clip.
  frames: z.array(z.object({
    at_ms: z.number().min(0),
    description: text,
    objects: DetectedObjectsSchema,
  })).max(MAX_ANSWER_FRAMES).optional(),
  // An image to display ("show me the last alert from the backyard").
  image: z.object({
    format: z.enum(IMAGE_FORMATS),
    data: base64Media,
    media_id: z.int().min(1).optional(),
    zone: id.optional(),
    device_id: id.optional(),
    timestamp: timestamp.optional(),
  }).optional(),
  // Set when ok is false: a stable code and a sentence naming what was wrong.
  error: z.object({ code: name, message: text }).optional(),
});
/**
 * The server's answer on `naila/devices/{id}/media/response` (recordings, visual questions,
 * stored images) and `naila/uploads/{session_id}/response` (uploads). docs/media.md.
 */
export type MediaAnswer = z.infer<typeof MediaAnswerSchema>;

/** Parses a media (snapshot or recording) request. */
export function parseMediaRequest(input: unknown): ParseResult<MediaRequest> {
  return parseWith(MediaRequestSchema, input, MAX_CONTROL_MESSAGE_CHARS, "media request");
}
/** Parses a snapshot response (media_type "image"). */
export function parseSnapshotResponse(input: unknown): ParseResult<SnapshotResponse> {
  return parseWith(SnapshotResponseSchema, input, MAX_MEDIA_MESSAGE_CHARS, "snapshot response");
}
/** Parses a recording (media_type "audio" or "video"). */
export function parseRecording(input: unknown): ParseResult<Recording> {
  return parseWith(RecordingSchema, input, MAX_MEDIA_MESSAGE_CHARS, "recording");
}
/** Parses whatever arrives on `media/snapshot`: snapshot or recording. */
export function parseMediaResponse(input: unknown): ParseResult<MediaResponse> {
  return parseWith(MediaResponseSchema, input, MAX_MEDIA_MESSAGE_CHARS, "media response");
}
/** Parses an upload. */
export function parseUpload(input: unknown): ParseResult<Upload> {
  return parseWith(UploadSchema, input, MAX_MEDIA_MESSAGE_CHARS, "upload");
}
/** Parses a visual context. */
export function parseVisualContext(input: unknown): ParseResult<VisualContext> {
  return parseWith(VisualContextSchema, input, MAX_CONTROL_MESSAGE_CHARS, "visual context");
}
/** Parses a media answer (recording, upload, visual question or stored image). */
export function parseMediaAnswer(input: unknown): ParseResult<MediaAnswer> {
  return parseWith(MediaAnswerSchema, input, MAX_MEDIA_MESSAGE_CHARS, "media answer");
}
