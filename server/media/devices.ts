/**
 * Who can see where: the devices' retained statuses (spec 8.2) say which are online, which have
 * a camera (capability "camera") and, NAILA's addition, their zone; MEDIA_DEVICE_ZONES fills in
 * the zone of devices that do not say. Spec 11.10 steps 4 and 5 ask this directory.
 *
 * @example
 * ```ts
 * const devices = new DeviceDirectory({ front_cam: "front_door" });
 * devices.update("front_cam", { device_id: "front_cam", online: true, capabilities: ["camera"] });
 * devices.cameras("front_door"); // ["front_cam"]
 * ```
 */
import type { DeviceStatus } from "../../shared/messages.ts";

/** The capability a device with a camera announces in its status. */
export const CAMERA_CAPABILITY = "camera";
/** The capability of a device that streams video to the gateway over WebRTC (issue 13). */
export const VIDEO_CAPABILITY = "video";
/** The capability of a device that plays replies (spec 8.2's example status). */
export const SPEAKER_CAPABILITY = "speaker";
/** Most devices remembered: statuses beyond it are ignored (a flood of fake ids stays bounded). */
const MAX_DEVICES = 10_000;

interface Entry {
  online: boolean;
  camera: boolean;
  speaker: boolean;
  video: boolean;
  zone?: string;
}

/** Online devices, their cameras and zones. */
export class DeviceDirectory {
  #configured: Readonly<Record<string, string>>;
  #devices = new Map<string, Entry>();

  constructor(configuredZones: Readonly<Record<string, string>> = {}) {
    this.#configured = configuredZones;
  }

  /** Records a device's status (retained or new). */
  update(device: string, status: DeviceStatus): void {
    if (!this.#devices.has(device) && this.#devices.size >= MAX_DEVICES) return;
    this.#devices.set(device, {
      online: status.online,
      camera: status.capabilities?.includes(CAMERA_CAPABILITY) ?? false,
      speaker: status.capabilities?.includes(SPEAKER_CAPABILITY) ?? false,
      video: status.capabilities?.includes(VIDEO_CAPABILITY) ?? false,
      zone: status.zone,
    });
  }

  /** The device's zone: its status's, else the configured one. */
  zoneOf(device: string): string | undefined {
    return this.#devices.get(device)?.zone ?? this.#configured[device];
  }

  /** Whether the device is online with a camera. */
  hasCamera(device: string): boolean {
    const entry = this.#devices.get(device);
    return entry !== undefined && entry.online && entry.camera;
  }

  /** Whether the device is online with a speaker (a reply or alert can be spoken on it). */
  canSpeak(device: string): boolean {
    const entry = this.#devices.get(device);
    return entry !== undefined && entry.online && entry.speaker;
  }

  /**
   * Online devices streaming video whose live frame answers a question of `device` about
   * `zone` (spec 11.4, 11.10 step 3): the asking device itself when the question is about its
   * own zone (or none), then the video devices of `zone`.
   */
  liveCameras(device: string, zone: string | undefined): string[] {
    const streams = (d: string) => {
      const entry = this.#devices.get(d);
      return entry !== undefined && entry.online && entry.video;
    };
    const out: string[] = [];
    if (streams(device) && (zone === undefined || zone === this.zoneOf(device))) out.push(device);
    if (zone === undefined) return out;
    for (const other of this.#devices.keys()) {
      if (other !== device && streams(other) && this.zoneOf(other) === zone) out.push(other);
    }
    return out;
  }

  /** Every online camera. */
  allCameras(): string[] {
    return [...this.#devices.keys()].filter((device) => this.hasCamera(device));
  }

  /** Online cameras in `zone`. */
  cameras(zone: string): string[] {
    return [...this.#devices.keys()].filter((device) =>
      this.hasCamera(device) && this.zoneOf(device) === zone
    );
  }

  /** Online devices with a speaker in `zone` (they announce its alerts). */
  speakers(zone: string): string[] {
    return [...this.#devices.keys()].filter((device) =>
      this.canSpeak(device) && this.zoneOf(device) === zone
    );
  }

  /** Every zone known from statuses and configuration. */
  zones(): string[] {
    const zones = new Set(Object.values(this.#configured));
    for (const entry of this.#devices.values()) if (entry.zone) zones.add(entry.zone);
    return [...zones];
  }
}
