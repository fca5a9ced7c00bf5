import assert from "node:assert/strict";
import { errorOf, TS, valueOf } from "./testing.ts";
import { MAX_MEDIA_BASE64_CHARS, MAX_MEDIA_BYTES } from "./message_fields.ts";
import {
  parseMediaAnswer,
  parseMediaRequest,
  parseMediaResponse,
  parseRecording,
  parseSnapshotResponse,
  parseUpload,
  parseVisualContext,
} from "./media_messages.ts";

const JPEG_B64 = btoa("\xff\xd8\xff\xe0 fake jpeg");

Deno.test("spec 11 media messages", async (t) => {
  const snapshot = {
    request_id: "req_456",
    media_type: "image",
    format: "jpeg",
    width: 1280,
    height: 720,
    timestamp: "2024-01-15T10:30:00Z",
    data: JPEG_B64,
  };

  await t.step("snapshot request and response (11.5)", () => {
    const request = {
      request_type: "snapshot",
      request_id: "req_456",
      params: { resolution: "1280x720", format: "jpeg", quality: 85 },
    };
    assert.deepEqual(valueOf(parseMediaRequest(request)), request);
    assert.match(
      errorOf(parseMediaRequest({ ...request, params: { resolution: "big" } })),
      /params\.resolution: expected WIDTHxHEIGHT/,
    );
    assert.match(
      errorOf(parseMediaRequest({ ...request, params: { quality: 101 } })),
      /params\.quality: Too big/,
    );
    assert.deepEqual(valueOf(parseSnapshotResponse(snapshot)), snapshot);
    assert.match(
      errorOf(parseSnapshotResponse({ ...snapshot, format: "gif" })),
      /format: Invalid option: expected one of "jpeg"\|"png"\|"webp"/,
    );
  });

  await t.step("base64 media is checked for charset, length and decoded size", () => {
    assert.match(
      errorOf(parseSnapshotResponse({ ...snapshot, data: "ab$d" })),
      /data: has characters outside A-Z a-z 0-9 \+ \//,
    );
    assert.match(
      errorOf(parseSnapshotResponse({ ...snapshot, data: "abc" })),
      /data: has length 3, not a multiple of 4/,
    );
    assert.match(errorOf(parseSnapshotResponse({ ...snapshot, data: "" })), /data: is empty/);
    // Largest allowed payload: exactly MAX_MEDIA_BYTES decoded.
    const maxChars = 4 * Math.ceil(MAX_MEDIA_BYTES / 3);
    assert.equal(MAX_MEDIA_BASE64_CHARS, maxChars);
    const padding = 3 - (MAX_MEDIA_BYTES % 3 || 3);
    const atLimit = "A".repeat(maxChars - padding) + "=".repeat(padding);
    assert.ok(parseSnapshotResponse({ ...snapshot, data: atLimit }).ok);
    if (padding > 0) {
      assert.match(
        errorOf(parseSnapshotResponse({ ...snapshot, data: "A".repeat(maxChars) })),
        new RegExp(
          `data: decodes to ${MAX_MEDIA_BYTES + padding} bytes, at most ${MAX_MEDIA_BYTES}`,
        ),
      );
    }
    assert.match(
      errorOf(parseSnapshotResponse({ ...snapshot, data: "A".repeat(maxChars + 4) })),
      new RegExp(`data: is ${maxChars + 4} base64 characters, at most ${maxChars}`),
    );
    // The same payload sent as JSON text also passes the text-length bound.
    assert.ok(parseSnapshotResponse(JSON.stringify({ ...snapshot, data: atLimit })).ok);
  });

  await t.step("recording (11.6): format must fit media_type", () => {
    const clip = {
      request_id: "req_789",
      media_type: "audio",
      format: "opus",
      duration_ms: 5000,
      sample_rate: 48000,
      timestamp: "2024-01-15T10:30:00Z",
      data: btoa("opus bytes"),
    };
    assert.deepEqual(valueOf(parseRecording(clip)), clip);
    assert.match(
      errorOf(parseRecording({ ...clip, format: "mp4" })),
      /format: Invalid option: expected one of "opus"\|"wav"\|"mp3"/,
    );
    const video = { ...clip, media_type: "video", format: "webm", sample_rate: undefined };
    assert.equal(valueOf(parseRecording(video)).format, "webm");
    assert.equal(valueOf(parseMediaResponse(clip)).media_type, "audio");
    assert.equal(valueOf(parseMediaResponse(snapshot)).media_type, "image");
    assert.match(errorOf(parseRecording(snapshot)), /media_type/);
  });

  await t.step("upload (11.9)", () => {
    const upload = {
      session_id: "web_session_123",
      media_type: "image",
      format: "jpeg",
      filename: "photo.jpg",
      context: "What's in this picture?",
      conversation_id: "conv_456",
      data: JPEG_B64,
    };
    assert.deepEqual(valueOf(parseUpload(upload)), upload);
    assert.match(errorOf(parseUpload({ ...upload, session_id: "a+b" })), /session_id: contains/);
  });

  await t.step("visual context (11.11)", () => {
    const context = {
      source: {
        type: "webrtc_stream",
        device_id: "living_room_camera",
        session_id: "web_session_123",
      },
      media: { type: "image", format: "jpeg", width: 1280, height: 720, timestamp: TS },
      analysis: {
        description: "Office desk with laptop and accessories",
        objects: [
          { label: "laptop", confidence: 0.95, bbox: [100, 100, 400, 300] },
          { label: "coffee mug", confidence: 0.88, bbox: [450, 200, 100, 120] },
        ],
        scene_type: "indoor_office",
        lighting: "natural",
        text_detected: ["NAILA", "Meeting at 3pm"],
      },
      user_context: "What's on my desk?",
    };
    assert.deepEqual(valueOf(parseVisualContext(context)), context);
    const badBox = structuredClone(context);
    (badBox.analysis.objects[1] as { bbox: number[] }).bbox = [1, 2, 3];
    assert.match(errorOf(parseVisualContext(badBox)), /analysis\.objects\.1\.bbox/);
    assert.match(
      errorOf(parseVisualContext({ ...context, source: { type: "fax" } })),
      /source\.type: Invalid option/,
    );
  });

  await t.step("media answer (NAILA's, docs/media.md): ok with an answer, or an error", () => {
    const answer = {
      kind: "upload",
      ok: true,
      timestamp: TS,
      session_id: "web_session_123",
      conversation_id: "conv_456",
      question: "Is there a cup?",
      answer: "Yes, I see a cup.",
      visual_context: {
        source: { type: "mqtt_upload", session_id: "web_session_123" },
        media: { type: "image", format: "jpeg", width: 640, height: 480, timestamp: TS },
        analysis: { objects: [{ label: "cup", confidence: 0.6, bbox: [1, 2, 3, 4] }] },
      },
    };
    assert.deepEqual(valueOf(parseMediaAnswer(answer)), answer);
    const shown = {
      kind: "history",
      ok: true,
      timestamp: TS,
      answer: "Here is the last alert from the backyard.",
      image: { format: "jpeg", data: JPEG_B64, media_id: 3, zone: "backyard" },
    };
    assert.deepEqual(valueOf(parseMediaAnswer(shown)), shown);
    const failed = {
      kind: "recording",
      ok: false,
      timestamp: TS,
      request_id: "r1",
      error: { code: "not_audio", message: "mp3 recording could not be decoded" },
    };
    assert.deepEqual(valueOf(parseMediaAnswer(failed)), failed);
    assert.match(errorOf(parseMediaAnswer({ ...failed, kind: "fax" })), /kind: Invalid option/);
    assert.match(
      errorOf(parseMediaAnswer({ ...shown, image: { format: "gif", data: JPEG_B64 } })),
      /image\.format/,
    );
  });
});
