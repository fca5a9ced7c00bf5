/**
 * Alert rules (spec 10.1 "YOLO → Detections → Alert", 8.2 alert message): a rule names a zone
 * (or `*`) and a detection label; a frame from a camera in that zone with that label at or above
 * the minimum confidence raises `{label}_detected`. A cooldown keeps one person standing at the
 * door one alert: while the label keeps being seen in the zone (each sighting within the
 * cooldown of the previous one) nothing new fires; unseen for the cooldown, it may fire again.
 * This is Frigate's "one event per object presence", by zone instead of by tracked object.
 *
 * @example
 * ```ts
 * const alerts = new AlertRules({ rules: [{ zone: "*", label: "person" }], cooldownMs: 60_000, minConfidence: 0.5 });
 * alerts.evaluate({ device: "front_cam", zone: "front_door", objects, at: Date.now() });
 * // [{ zone: "front_door", alertType: "person_detected", label: "person", count: 1, ... }]
 * ```
 */
import type { DetectedObject } from "../vision/mod.ts";
import type { AlertRule } from "./config.ts";

/** Options of {@link AlertRules}. */
export interface AlertRulesOptions {
  rules: readonly AlertRule[];
  cooldownMs: number;
  /** Detections below this score (0..1) are ignored. */
  minConfidence: number;
}

/** One analysed frame from a camera. */
export interface AlertFrame {
  device: string;
  zone: string;
  objects: readonly DetectedObject[];
  /** When the frame was taken, ms since the epoch. */
  at: number;
}

/** An alert to publish. */
export interface FiredAlert {
  zone: string;
  /** `{label}_detected`, spaces as underscores ("person_detected", "teddy_bear_detected"). */
  alertType: string;
  label: string;
  /** The highest score among the matching detections. */
  confidence: number;
  /** How many matching detections the frame had. */
  count: number;
  device: string;
  at: number;
}

/** The alert type a label raises. */
export function alertTypeOf(label: string): string {
  return `${label.replaceAll(" ", "_")}_detected`;
}

/** Evaluates frames against the rules, with a per zone and label cooldown. */
export class AlertRules {
  #options: AlertRulesOptions;
  /** `zone|label` → when it was last seen (ms since the epoch). */
  #lastSeen = new Map<string, number>();

  constructor(options: AlertRulesOptions) {
    this.#options = options;
  }

  /** The alerts `frame` raises (none while its labels are in their cooldown). */
  evaluate(frame: AlertFrame): FiredAlert[] {
    const fired: FiredAlert[] = [];
    const labels = new Set(
      this.#options.rules.filter((rule) => rule.zone === "*" || rule.zone === frame.zone)
        .map((rule) => rule.label),
    );
    for (const label of labels) {
      const matches = frame.objects.filter((object) =>
        object.label === label && object.confidence >= this.#options.minConfidence
      );
      if (matches.length === 0) continue;
      const key = `${frame.zone}|${label}`;
      const last = this.#lastSeen.get(key);
      this.#lastSeen.set(key, Math.max(last ?? frame.at, frame.at));
      if (last !== undefined && frame.at - last < this.#options.cooldownMs) continue;
      fired.push({
        zone: frame.zone,
        alertType: alertTypeOf(label),
        label,
        confidence: Math.max(...matches.map((object) => object.confidence)),
        count: matches.length,
        device: frame.device,
        at: frame.at,
      });
    }
    return fired;
  }
}
