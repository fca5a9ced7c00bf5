import assert from "node:assert/strict";
import { DeviceDirectory } from "./devices.ts";

Deno.test("DeviceDirectory: cameras and speakers by zone, from statuses and configured zones", () => {
  const devices = new DeviceDirectory({ porch_cam: "front_door", hub: "kitchen" });
  devices.update("front_cam", {
    device_id: "front_cam",
    online: true,
    capabilities: ["camera"],
    zone: "front_door",
  });
  devices.update("porch_cam", { device_id: "porch_cam", online: true, capabilities: ["camera"] });
  devices.update("hub", { device_id: "hub", online: true, capabilities: ["audio", "speaker"] });
  devices.update("door_bell", {
    device_id: "door_bell",
    online: true,
    capabilities: ["audio", "speaker", "camera"],
    zone: "front_door",
  });
  assert.deepEqual(devices.cameras("front_door").sort(), ["door_bell", "front_cam", "porch_cam"]);
  assert.deepEqual(devices.speakers("front_door"), ["door_bell"]);
  assert.deepEqual(devices.speakers("kitchen"), ["hub"]);
  assert.equal(devices.zoneOf("porch_cam"), "front_door", "configured zone");
  assert.equal(devices.canSpeak("front_cam"), false);
  assert.deepEqual(devices.zones().sort(), ["front_door", "kitchen"]);
  // Offline: no longer asked or announced to.
  devices.update("front_cam", { device_id: "front_cam", online: false });
  assert.equal(devices.hasCamera("front_cam"), false);
  assert.deepEqual(devices.cameras("front_door").sort(), ["door_bell", "porch_cam"]);
  assert.deepEqual(devices.allCameras().sort(), ["door_bell", "porch_cam"]);
});

Deno.test("live cameras: the asker when it streams and is asked about its own zone, then the zone's", () => {
  const devices = new DeviceDirectory({ porch_cam: "front_door" });
  const status = (id: string, capabilities: string[], zone?: string) =>
    devices.update(id, { device_id: id, online: true, capabilities, zone });
  status("hall_cam", ["audio", "video"], "hallway");
  status("hall_mic", ["audio"], "hallway");
  status("porch_cam", ["audio", "video"]);
  status("snap_cam", ["camera"], "hallway"); // an MQTT snapshot camera streams nothing
  assert.deepEqual(devices.liveCameras("hall_cam", undefined), ["hall_cam"]);
  assert.deepEqual(devices.liveCameras("hall_cam", "hallway"), ["hall_cam"]);
  assert.deepEqual(devices.liveCameras("hall_mic", "hallway"), ["hall_cam"]);
  assert.deepEqual(devices.liveCameras("hall_cam", "front_door"), ["porch_cam"]);
  assert.deepEqual(devices.liveCameras("hall_mic", undefined), []);
  devices.update("hall_cam", { device_id: "hall_cam", online: false });
  assert.deepEqual(devices.liveCameras("hall_mic", "hallway"), []);
});
