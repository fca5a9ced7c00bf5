import assert from "node:assert/strict";
import { errorOf, TS, valueOf } from "./testing.ts";
import {
  MAX_SDP_CHARS,
  parseAlert,
  parseDeviceCommand,
  parseDeviceEvent,
  parseDeviceStatus,
  parseGatewayMetrics,
  parseGatewayStatus,
  parseIceCandidate,
  parseMessageFor,
  parseSdpAnswer,
  parseSdpOffer,
  parseServerStatus,
} from "./messages.ts";

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

Deno.test("parseMessageFor picks the schema of the topic kind", () => {
  const ice = { candidate: "", session_id: "s", from: "gateway" };
  assert.deepEqual(valueOf(parseMessageFor("device_ice", JSON.stringify(ice))), ice);
  assert.equal(parseMessageFor("device_offer", ice).ok, false);
  const command = { command: "reboot" };
  assert.ok(parseMessageFor("server_broadcast", command).ok);
  assert.ok(parseMessageFor("device_command", command).ok);
  assert.equal(parseMessageFor("device_status", command).ok, false);
});
