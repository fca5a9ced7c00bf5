import assert from "node:assert/strict";
import {
  MAX_CONTROL_MESSAGE_CHARS,
  MAX_MEDIA_BASE64_CHARS,
  MAX_MEDIA_BYTES,
  MAX_SDP_CHARS,
  parseAlert,
  parseDeviceCommand,
  parseDeviceEvent,
  parseDeviceStatus,
  parseGatewayMetrics,
  parseGatewayStatus,
  parseIceCandidate,
  parseMediaAnswer,
  parseMediaRequest,
  parseMediaResponse,
  parseMessageFor,
  parseRecording,
  type ParseResult,
  parseSdpAnswer,
  parseSdpOffer,
  parseServerStatus,
  parseSnapshotResponse,
  parseUpload,
  parseVisualContext,
} from "./messages.ts";

const TS = "2025-01-15T10:30:00Z";
const JPEG_B64 = btoa("\xff\xd8\xff\xe0 fake jpeg");

function errorOf<T>(r: ParseResult<T>): string {
  assert.equal(r.ok, false, `expected a parse error, got ${JSON.stringify(r)}`);
  return r.ok ? "" : r.error;
}

function valueOf<T>(r: ParseResult<T>): T {
  if (!r.ok) assert.fail(r.error);
  return r.value;
}

Deno.test("spec 8.2 messages", async (t) => {
  await t.step("device status example parses from JSON text", () => {
    const json = JSON.stringify({
      device_id: "living_room_hub",
      online: true,
      capabilities: ["audio", "speaker"],
      firmware_version: "1.2.0",
      timestamp: TS,
    });
    assert.deepEqual(valueOf(parseDeviceStatus(json)), JSON.parse(json));
    assert.deepEqual(valueOf(parseDeviceStatus({ device_id: "d", online: false })), {
      device_id: "d",
      online: false,
    });
    // A device that cancels its own echo says so (gateway/README.md "Echo guard").
    const aec = { device_id: "phone", online: true, echo_cancellation: true };
    assert.deepEqual(valueOf(parseDeviceStatus(aec)), aec);
    assert.match(
      errorOf(parseDeviceStatus({ device_id: "d", online: true, echo_cancellation: "yes" })),
      /echo_cancellation: .*expected boolean/,
    );
  });

  await t.step("device status errors name the field, the problem and the value", () => {
    const e = errorOf(parseDeviceStatus({ device_id: "a/b", online: "yes" }));
    assert.match(e, /device_id: contains '\/' at index 1 \(got "a\/b"\)/);
    assert.match(e, /online: .*expected boolean.*\(got "yes"\)/);
    assert.match(errorOf(parseDeviceStatus({ online: true })), /device_id: .*\(got missing\)/);
    assert.match(
      errorOf(parseDeviceStatus({ device_id: "d", online: true, timestamp: "yesterday" })),
      /timestamp: Invalid ISO datetime/,
    );
  });

  await t.step("SDP offer and answer, bounded and typed", () => {
    const offer = { type: "offer", sdp: "v=0\r\no=- 123456 ...", session_id: "abc123" };
    assert.deepEqual(valueOf(parseSdpOffer(offer)), offer);
    const answer = { ...offer, type: "answer" };
    assert.deepEqual(valueOf(parseSdpAnswer(answer)), answer);
    assert.match(errorOf(parseSdpOffer(answer)), /type: .*expected "offer"/);
    assert.match(
      errorOf(parseSdpOffer({ ...offer, sdp: "x".repeat(MAX_SDP_CHARS + 1) })),
      new RegExp(`sdp: Too big: .*${MAX_SDP_CHARS}`),
    );
    assert.match(errorOf(parseSdpAnswer({ ...answer, sdp: "" })), /sdp: Too small/);
  });

  await t.step("ICE candidate: sender mark and end-of-candidates", () => {
    const ice = {
      candidate: "candidate:1 1 UDP 2130706431 192.168.1.2 5000 typ host",
      sdpMid: "audio",
      sdpMLineIndex: 0,
      session_id: "abc123",
    };
    assert.deepEqual(valueOf(parseIceCandidate(ice)), ice);
    assert.equal(valueOf(parseIceCandidate({ ...ice, from: "device" })).from, "device");
    assert.equal(valueOf(parseIceCandidate({ candidate: "", session_id: "s" })).candidate, "");
    assert.equal(valueOf(parseIceCandidate({ candidate: null, session_id: "s" })).candidate, null);
    assert.match(
      errorOf(parseIceCandidate({ ...ice, from: "server" })),
      /from: Invalid option: expected one of "gateway"\|"device"/,
    );
    assert.match(errorOf(parseIceCandidate({ ...ice, sdpMLineIndex: -1 })), /sdpMLineIndex/);
    assert.match(errorOf(parseIceCandidate({ session_id: "s" })), /candidate: /);
  });

  await t.step("alert", () => {
    const alert = {
      alert_type: "person_detected",
      zone: "front_door",
      confidence: 0.92,
      source_device: "front_camera",
      timestamp: TS,
    };
    assert.deepEqual(valueOf(parseAlert(alert)), alert);
    assert.match(errorOf(parseAlert({ ...alert, confidence: 1.5 })), /confidence: Too big.*1/);
    assert.match(errorOf(parseAlert({ ...alert, zone: "front door" })), /zone: contains control/);
  });
});

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

Deno.test("NAILA's own messages", async (t) => {
  await t.step("gateway and server status keep extra fields", () => {
    const status = { online: true, timestamp: TS, sessions: 2, build: "abc" };
    assert.deepEqual(valueOf(parseGatewayStatus(status)), status);
    assert.match(errorOf(parseGatewayStatus({ online: true })), /timestamp: /);
    const server = { online: false, timestamp: TS, pipeline: "echo", protocol: "v2" };
    assert.deepEqual(valueOf(parseServerStatus(server)), server);
    assert.match(errorOf(parseServerStatus({ ...server, protocol: "v3" })), /protocol: /);
  });

  await t.step("the server status carries its load", () => {
    const load = {
      queued_turns: 3,
      queued_audio_s: 5.4,
      active_devices: 4,
      wait_ms: 900,
      turn_ms: 300,
      capacity_turns_per_min: 200,
    };
    const server = { online: true, timestamp: TS, load };
    assert.deepEqual(valueOf(parseServerStatus(server)), server);
    assert.match(
      errorOf(parseServerStatus({ ...server, load: { ...load, queued_turns: -1 } })),
      /load\.queued_turns: /,
    );
    assert.match(
      errorOf(parseServerStatus({ ...server, load: { ...load, active_devices: undefined } })),
      /load\.active_devices: /,
    );
  });

  await t.step("gateway metrics", () => {
    assert.equal(valueOf(parseGatewayMetrics({ timestamp: TS, sessions: 3 })).sessions, 3);
    assert.match(errorOf(parseGatewayMetrics({ timestamp: TS, sessions: -1 })), /sessions: /);
  });

  await t.step("device events are a discriminated union on type", () => {
    const interrupted = valueOf(
      parseDeviceEvent({ type: "interrupted", turn: "t1", played_ms: 1200, extra: 1 }),
    );
    assert.equal(interrupted.type, "interrupted");
    if (interrupted.type === "interrupted") assert.equal(interrupted.played_ms, 1200);
    assert.equal(valueOf(parseDeviceEvent({ type: "timeout", turn: "t2" })).type, "timeout");
    assert.equal(valueOf(parseDeviceEvent({ type: "error", message: "mic lost" })).type, "error");
    assert.equal(valueOf(parseDeviceEvent({ type: "turn", turn: "t3" })).type, "turn");
    assert.match(
      errorOf(parseDeviceEvent({ type: "interrupted", turn: "t1" })),
      /played_ms: .*\(got missing\)/,
    );
    assert.match(
      errorOf(parseDeviceEvent({ type: "reboot" })),
      /type: .*'interrupted' \| 'timeout' \| 'error' \| 'turn'/,
    );
    assert.match(errorOf(parseDeviceEvent({ type: "turn", turn: "a|b" })), /turn: contains '\|'/);
  });

  await t.step("device command", () => {
    const command = { command: "set_volume", params: { level: 40 }, request_id: "r1" };
    assert.deepEqual(valueOf(parseDeviceCommand(command)), command);
    assert.match(
      errorOf(parseDeviceCommand({ command: "Set Volume" })),
      /command: expected a snake_case command name/,
    );
  });
});

Deno.test("JSON text input", async (t) => {
  await t.step("length is bounded before JSON.parse", () => {
    const huge = " ".repeat(MAX_CONTROL_MESSAGE_CHARS + 1);
    assert.match(
      errorOf(parseDeviceStatus(huge)),
      new RegExp(
        `device status is ${huge.length} characters, at most ${MAX_CONTROL_MESSAGE_CHARS}`,
      ),
    );
  });

  await t.step("malformed JSON and non-objects are reported", () => {
    assert.match(errorOf(parseSdpOffer("{bad")), /SDP offer is not JSON: /);
    assert.match(errorOf(parseAlert("[]")), /alert: \(message\): .*expected object/);
    assert.match(errorOf(parseAlert(null)), /alert: \(message\): /);
  });
});

Deno.test("parseMessageFor picks the schema of the topic kind", () => {
  const ice = { candidate: "", session_id: "s", from: "gateway" };
  assert.deepEqual(valueOf(parseMessageFor("device_ice", JSON.stringify(ice))), ice);
  assert.equal(parseMessageFor("device_offer", ice).ok, false);
  const command = { command: "reboot" };
  assert.ok(parseMessageFor("server_broadcast", command).ok);
  assert.ok(parseMessageFor("device_command", command).ok);
  assert.equal(parseMessageFor("device_status", command).ok, false);
});
