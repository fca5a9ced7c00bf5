import assert from "node:assert/strict";
import {
  MAX_CONTROL_PACKET_BYTES,
  MAX_MEDIA_PACKET_BYTES,
  mayPublish,
  maySubscribe,
  mosquittoAcl,
  type MqttIdentity,
  packetLimitFor,
  TOPIC_ACCESS,
} from "./mqtt_acl.ts";
import { TOPIC_DELIVERY } from "./topics.ts";

const kitchen: MqttIdentity = { role: "device", user: "kitchen" };
const gateway: MqttIdentity = { role: "gateway", user: "naila-gateway" };
const server: MqttIdentity = { role: "server", user: "naila-server" };

Deno.test("TOPIC_ACCESS covers every topic kind of the topic table", () => {
  assert.deepEqual(Object.keys(TOPIC_ACCESS).sort(), Object.keys(TOPIC_DELIVERY).sort());
});

Deno.test("mayPublish: a device writes only its own status, answer, ICE and snapshot", () => {
  for (const suffix of ["status", "signaling/answer", "signaling/ice", "media/snapshot"]) {
    assert.equal(mayPublish(kitchen, `naila/devices/kitchen/${suffix}`), undefined, suffix);
    assert.match(
      mayPublish(kitchen, `naila/devices/hall/${suffix}`)!,
      /^device kitchen may not publish on naila\/devices\/hall\//,
    );
  }
  for (const suffix of ["command", "signaling/offer", "events", "media/request"]) {
    assert.ok(mayPublish(kitchen, `naila/devices/kitchen/${suffix}`), suffix);
  }
  assert.ok(mayPublish(kitchen, "naila/server/status"));
  assert.ok(mayPublish(kitchen, "naila/alerts/all"));
  assert.match(mayPublish(kitchen, "other/topic")!, /outside NAILA's topics/);
});

Deno.test("mayPublish: the gateway acts for browser devices only; the server commands", () => {
  assert.equal(mayPublish(gateway, "naila/devices/kitchen/signaling/offer"), undefined);
  assert.equal(mayPublish(gateway, "naila/devices/kitchen/events"), undefined);
  assert.equal(mayPublish(gateway, "naila/devices/web_phone/signaling/answer"), undefined);
  assert.equal(mayPublish(gateway, "naila/devices/web_phone/status"), undefined);
  assert.ok(mayPublish(gateway, "naila/devices/kitchen/signaling/answer"));
  assert.ok(mayPublish(gateway, "naila/devices/kitchen/status"));
  assert.ok(mayPublish(gateway, "naila/devices/kitchen/command"));
  assert.ok(mayPublish(gateway, "naila/server/status"));
  assert.equal(mayPublish(server, "naila/devices/kitchen/command"), undefined);
  assert.equal(mayPublish(server, "naila/server/status"), undefined);
  assert.ok(mayPublish(server, "naila/devices/kitchen/signaling/offer"));
  assert.ok(mayPublish(server, "naila/gateway/status"));
});

Deno.test("maySubscribe: a filter must lie inside what the login may read", () => {
  assert.equal(maySubscribe(kitchen, "naila/devices/kitchen/signaling/offer"), undefined);
  assert.equal(maySubscribe(kitchen, "naila/devices/kitchen/events"), undefined);
  assert.equal(maySubscribe(kitchen, "naila/server/broadcast"), undefined);
  for (
    const filter of [
      "naila/#",
      "#",
      "naila/devices/hall/events",
      "naila/devices/+/events",
      "naila/devices/kitchen/+",
      "naila/devices/kitchen/#",
      "naila/server/audit",
      "naila/gateway/status",
    ]
  ) {
    assert.match(maySubscribe(kitchen, filter)!, /may not subscribe/, filter);
  }
  assert.equal(maySubscribe(gateway, "naila/devices/+/signaling/answer"), undefined);
  assert.equal(maySubscribe(gateway, "naila/devices/web_phone/signaling/offer"), undefined);
  assert.ok(maySubscribe(gateway, "naila/devices/+/signaling/offer"));
  assert.ok(maySubscribe(gateway, "naila/server/audit"));
  assert.equal(maySubscribe(server, "naila/server/audit"), undefined);
  assert.equal(maySubscribe(server, "naila/devices/+/events"), undefined);
  assert.ok(maySubscribe(server, "naila/devices/+/signaling/answer"));
});

Deno.test("packetLimitFor: 1 MiB on control topics, the media limit on media topics", () => {
  assert.equal(packetLimitFor("naila/devices/kitchen/status"), MAX_CONTROL_PACKET_BYTES);
  assert.equal(packetLimitFor("naila/devices/kitchen/media/snapshot"), MAX_MEDIA_PACKET_BYTES);
  assert.equal(packetLimitFor("naila/uploads/s1/image"), MAX_MEDIA_PACKET_BYTES);
  assert.equal(packetLimitFor("elsewhere"), MAX_CONTROL_PACKET_BYTES);
});

Deno.test("mosquittoAcl: user blocks for the roles, %u patterns for devices", () => {
  const acl = mosquittoAcl();
  const block = (user: string) => acl.split(`user ${user}\n`)[1].split("\n\n")[0];
  assert.match(block("naila-server"), /^topic write naila\/devices\/\+\/command$/m);
  assert.doesNotMatch(block("naila-server"), /signaling\/offer/);
  assert.match(block("naila-gateway"), /^topic write naila\/devices\/\+\/signaling\/offer$/m);
  assert.match(acl, /^pattern write naila\/devices\/%u\/signaling\/answer$/m);
  assert.match(acl, /^pattern read naila\/devices\/%u\/events$/m);
  assert.doesNotMatch(acl, /^pattern write naila\/devices\/%u\/events$/m);
  assert.doesNotMatch(acl, /^pattern .*naila\/devices\/\+\//m);
});

Deno.test("gateway presence: gateways write and read it, the server reads it, devices neither", () => {
  const topic = "naila/gateways/g1/status";
  assert.equal(mayPublish({ role: "gateway", user: "naila-gateway" }, topic), undefined);
  assert.match(mayPublish({ role: "server", user: "naila-server" }, topic) ?? "", /may not/);
  assert.match(mayPublish({ role: "device", user: "g1" }, topic) ?? "", /may not/);
  assert.equal(
    maySubscribe({ role: "gateway", user: "naila-gateway" }, "naila/gateways/+/status"),
    undefined,
  );
  assert.equal(
    maySubscribe({ role: "server", user: "naila-server" }, "naila/gateways/+/status"),
    undefined,
  );
  assert.match(
    maySubscribe({ role: "device", user: "kitchen" }, "naila/gateways/+/status") ?? "",
    /may not/,
  );
});
