import assert from "node:assert/strict";
import {
  deviceFilter,
  parseTopic,
  type Topic,
  TOPIC_DELIVERY,
  topicFilter,
  topicString,
} from "./topics.ts";

const EXAMPLES: Array<[Topic, string]> = [
  [{ kind: "gateway_status" }, "naila/gateway/status"],
  [{ kind: "gateway_metrics" }, "naila/gateway/metrics"],
  [{ kind: "server_status" }, "naila/server/status"],
  [{ kind: "server_broadcast" }, "naila/server/broadcast"],
  [{ kind: "alert_all" }, "naila/alerts/all"],
  [{ kind: "device_status", device: "hub" }, "naila/devices/hub/status"],
  [{ kind: "device_command", device: "hub" }, "naila/devices/hub/command"],
  [{ kind: "device_offer", device: "hub" }, "naila/devices/hub/signaling/offer"],
  [{ kind: "device_answer", device: "hub" }, "naila/devices/hub/signaling/answer"],
  [{ kind: "device_ice", device: "hub" }, "naila/devices/hub/signaling/ice"],
  [{ kind: "device_snapshot", device: "hub" }, "naila/devices/hub/media/snapshot"],
  [{ kind: "device_media_request", device: "hub" }, "naila/devices/hub/media/request"],
  [{ kind: "device_events", device: "hub" }, "naila/devices/hub/events"],
  [
    { kind: "alert", zone: "front_door", alertType: "person_detected" },
    "naila/alerts/front_door/person_detected",
  ],
  [{ kind: "upload_image", session: "web_session_123" }, "naila/uploads/web_session_123/image"],
  [{ kind: "device_recording", device: "hub" }, "naila/devices/hub/media/recording"],
  [{ kind: "device_media_response", device: "hub" }, "naila/devices/hub/media/response"],
  [
    { kind: "upload_response", session: "web_session_123" },
    "naila/uploads/web_session_123/response",
  ],
  [{ kind: "gateway_presence", gateway: "g1a2b" }, "naila/gateways/g1a2b/status"],
];

Deno.test("topicString and parseTopic", async (t) => {
  await t.step("build every spec 8.1 topic and parse it back to the same value", () => {
    for (const [topic, text] of EXAMPLES) {
      assert.equal(topicString(topic), text);
      assert.deepEqual(parseTopic(text), { ok: true, value: topic });
    }
  });

  await t.step("builder rejects an invalid id, naming the field and the problem", () => {
    assert.throws(
      () => topicString({ kind: "device_status", device: "a/b" }),
      /topic device "a\/b" contains '\/' at index 1/,
    );
    assert.throws(() => topicString({ kind: "device_ice", device: "" }), /device "" is empty/);
    assert.throws(
      () => topicString({ kind: "alert", zone: "z", alertType: "+" }),
      /alertType "\+" contains '\+'/,
    );
    assert.throws(
      () => topicString({ kind: "upload_image", session: "x#" }),
      /session "x#" contains '#'/,
    );
  });

  await t.step("parser rejects wildcards and bad ids in the id level", () => {
    const r = parseTopic("naila/devices/+/status");
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.error : "", /device "\+" contains '\+'/);
    const space = parseTopic("naila/devices/a b/status");
    assert.match(!space.ok ? space.error : "", /device "a b" contains control or space/);
    const empty = parseTopic("naila/uploads//image");
    assert.match(!empty.ok ? empty.error : "", /session_id "" is empty/);
  });

  await t.step("parser rejects unknown and malformed topics with what was expected", () => {
    const cases: Array<[string, RegExp]> = [
      ["other/gateway/status", /does not start with "naila\/"/],
      ["naila", /unknown second level ""/],
      ["naila/foo/bar", /unknown second level "foo", expected gateway\|devices/],
      ["naila/gateway/stats", /not a known gateway topic, expected one of gateway\/status\|/],
      ["naila/devices/hub", /unknown device subtopic ""/],
      ["naila/devices/hub/signaling", /unknown device subtopic "signaling"/],
      ["naila/devices/hub/status/extra", /unknown device subtopic "status\/extra"/],
      ["naila/alerts/zone", /has 3 levels/],
      ["naila/alerts/zone/type/more", /has 5 levels/],
      ["naila/uploads/s1/video", /not naila\/uploads\/\{session_id\}\/image or/],
    ];
    for (const [topic, error] of cases) {
      const r = parseTopic(topic);
      assert.equal(r.ok, false, topic);
      assert.match(!r.ok ? r.error : "", error, topic);
    }
  });
});

Deno.test("topicFilter", async (t) => {
  await t.step("wildcards every id level by default (spec 9.2 subscriptions)", () => {
    assert.equal(topicFilter("device_status"), "naila/devices/+/status");
    assert.equal(topicFilter("device_answer"), "naila/devices/+/signaling/answer");
    assert.equal(topicFilter("device_ice"), "naila/devices/+/signaling/ice");
    assert.equal(topicFilter("alert"), "naila/alerts/+/+");
    assert.equal(topicFilter("upload_image"), "naila/uploads/+/image");
    assert.equal(topicFilter("gateway_status"), "naila/gateway/status");
  });

  await t.step("pins given ids and validates them", () => {
    assert.equal(topicFilter("alert", { zone: "kitchen" }), "naila/alerts/kitchen/+");
    assert.equal(topicFilter("device_events", { device: "d1" }), "naila/devices/d1/events");
    assert.throws(() => topicFilter("alert", { zone: "#" }), /zone "#" contains '#'/);
  });

  await t.step("deviceFilter covers every topic of one device", () => {
    assert.equal(deviceFilter("hub"), "naila/devices/hub/#");
    assert.throws(() => deviceFilter("h/b"), /device "h\/b"/);
  });
});

Deno.test("TOPIC_DELIVERY follows spec 8.3", () => {
  for (const [topic] of EXAMPLES) assert.ok(TOPIC_DELIVERY[topic.kind], topic.kind);
  assert.deepEqual(TOPIC_DELIVERY.device_status, { qos: 1, retain: true });
  assert.deepEqual(TOPIC_DELIVERY.gateway_status, { qos: 1, retain: true });
  assert.deepEqual(TOPIC_DELIVERY.server_status, { qos: 1, retain: true });
  for (const kind of ["device_offer", "device_answer", "device_ice"] as const) {
    assert.deepEqual(TOPIC_DELIVERY[kind], { qos: 1, retain: false }, kind);
  }
  assert.deepEqual(TOPIC_DELIVERY.device_command, { qos: 1, retain: false });
  assert.deepEqual(TOPIC_DELIVERY.alert, { qos: 1, retain: false });
  assert.deepEqual(TOPIC_DELIVERY.alert_all, { qos: 1, retain: false });
  assert.deepEqual(TOPIC_DELIVERY.device_events, { qos: 1, retain: false });
  assert.deepEqual(TOPIC_DELIVERY.gateway_metrics, { qos: 0, retain: false });
  assert.ok(Object.isFrozen(TOPIC_DELIVERY));
});

Deno.test("gateway presence: retained, filter by gateway, malformed topics refused", () => {
  assert.deepEqual(TOPIC_DELIVERY.gateway_presence, { qos: 1, retain: true });
  assert.equal(topicFilter("gateway_presence"), "naila/gateways/+/status");
  assert.equal(topicFilter("gateway_presence", { gateway: "g1" }), "naila/gateways/g1/status");
  const bad = parseTopic("naila/gateways/g1/other");
  assert.ok(!bad.ok && /naila\/gateways\/\{gateway_id\}\/status/.test(bad.error));
});
