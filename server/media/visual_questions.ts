/**
 * Answers visual questions (spec 11.10, 11.12), choosing the source in 11.10's order:
 * 1. media attached to the question (an upload: {@link VisualQuestions.answerAttached});
 * 2. history, when the question is about the past (the alert store, 11.8);
 * 3. a live frame of a WebRTC video stream (the hook `liveFrame`: server/camera_frames.ts);
 * 4. an MQTT snapshot from the asking device, if it has a camera and the question is about its
 *    own zone;
 * 5. a camera in the zone asked about (or the asking device's zone);
 * 6. otherwise it says that nothing can see there.
 * Every answer is one or two spoken sentences: "I see two people and a dog at the front door."
 */
import type { Logger } from "../../shared/log.ts";
import type { Vision, VisualContext } from "../vision/mod.ts";
import type { DeviceDirectory } from "./devices.ts";
import { MediaError } from "./link.ts";
import {
  countOf,
  describeObjects,
  joinAnd,
  plural,
  sceneSentence,
  spokenTime,
  whereIn,
  zoneName,
} from "./phrases.ts";
import { parseVisualQuestion, type VisualQuestion } from "./questions.ts";
import type { MediaStore, StoredMedia } from "./store.ts";

/** Stored alerts a history answer names at most: more is too long to listen to. */
const MAX_SPOKEN_EVENTS = 3;

/** What {@link VisualQuestions} needs from the rest of the media side. */
export interface VisualQuestionsOptions {
  vision: () => Promise<Vision>;
  devices: DeviceDirectory;
  /** The alert store; absent when MEDIA_STORAGE=none. */
  store?: MediaStore;
  /** Zones named by alert rules (known even before any camera announces one). */
  ruleZones: readonly string[];
  /** Requests a snapshot from `camera`, analyses it (alerts included) and returns its context. */
  snapshot(camera: string, options: { ocr: boolean }): Promise<VisualContext>;
  /** Shows a stored alert's image to `device` (publishes it on its media/response topic). */
  show(device: string, media: StoredMedia, answer: string): Promise<void>;
  /**
   * Spec 11.10 step 3: a JPEG frame of a live WebRTC video stream that can answer `device`'s
   * question about `zone` (its own, or one in that zone), or undefined when none streams.
   * Absent, the step is skipped.
   */
  liveFrame?: (device: string, zone: string | undefined) => Promise<Uint8Array | undefined>;
  now?: () => Date;
  log?: Logger;
}

/** The spoken answer to `question` about what `context` shows, `zone` where it was seen. */
export function answerFromContext(
  question: VisualQuestion,
  context: VisualContext,
  zone?: string,
): string {
  const where = zone === undefined ? "" : ` ${whereIn(zone)}`;
  const label = question.label ?? "person";
  const matching = context.objects.filter((object) => object.label === label).length;
  switch (question.kind) {
    case "count":
      return matching === 0
        ? `I don't see any ${plural(label)}${where}.`
        : `I see ${countOf(matching, label)}${where}.`;
    case "presence":
      if (matching > 0) return `Yes, I see ${countOf(matching, label)}${where}.`;
      return `No, I don't see ${label === "person" ? "anyone" : `any ${plural(label)}`}${where}.`;
    case "read": {
      const lines = context.text_detected ?? [];
      return lines.length === 0
        ? "I don't see any text I can read."
        : `It says: ${lines.join(". ").replace(/\.*$/, ".")}`;
    }
    default:
      return sceneSentence(context.objects, zone);
  }
}

/** Parses and answers visual questions. */
export class VisualQuestions {
  #o: VisualQuestionsOptions;
  #now: () => Date;

  constructor(options: VisualQuestionsOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
  }

  /** The visual question in `text`, or undefined when it asks for none. */
  parse(text: string): VisualQuestion | undefined {
    const zones = new Set([
      ...this.#o.devices.zones(),
      ...this.#o.ruleZones.filter((zone) => zone !== "*"),
      ...(this.#o.store?.zones() ?? []),
    ]);
    return parseVisualQuestion(text, { zones: [...zones], now: this.#now() });
  }

  /** 11.10 step 1: answers `text` about an attached image (an upload). */
  async answerAttached(
    image: Uint8Array,
    text: string,
    source: string,
  ): Promise<{ answer: string; context: VisualContext }> {
    const question = this.parse(text) ?? { kind: "describe" };
    const ask = question.kind.startsWith("history") ? { kind: "describe" as const } : question;
    const vision = await this.#o.vision();
    const context = await vision.analyze(image, { source, ocr: ask.kind === "read" });
    return { answer: answerFromContext(ask, context), context };
  }

  /**
   * Answers a spoken question from `device`, or returns undefined when it is not a visual
   * question (then the assistant's other engines answer it).
   */
  answer(device: string, text: string): Promise<string> | undefined {
    const question = this.parse(text);
    if (question === undefined) return undefined;
    return question.kind.startsWith("history")
      ? this.#history(device, question)
      : this.#live(device, question);
  }

  async #history(device: string, question: VisualQuestion): Promise<string> {
    const store = this.#o.store;
    if (store === undefined) {
      return "I don't keep any camera history: media storage is off. Set MEDIA_STORAGE to alerts to keep alert snapshots.";
    }
    const now = this.#now();
    const place = question.zone !== undefined
      ? ` ${whereIn(question.zone)}`
      : question.place
      ? ` ${whereIn(question.place.replaceAll(" ", "_"))}`
      : "";
    if (question.place !== undefined && question.zone === undefined) {
      return `I have no camera history${place}: no camera there has raised an alert.`;
    }
    const range = { zone: question.zone, from: question.from, to: question.to };
    switch (question.kind) {
      case "history_when": {
        const label = question.label ?? "person";
        const last = store.latest({ ...range, label });
        const who = label === "person" ? "anyone" : `any ${plural(label)}`;
        if (last === undefined) return `I have no record of ${who}${place}.`;
        const subject = label === "person" ? "Someone" : countOf(1, label).replace(/^a/, "A");
        return `${subject} was last seen ${whereIn(last.zone)} at ${spokenTime(last.at, now)}.`;
      }
      case "history_show": {
        const last = store.latest(range);
        if (last === undefined) return `I have no stored alert${place}.`;
        const answer = `Here is the last alert from ${zoneName(last.zone)}: ${
          describeObjects(last.objects) || "nothing I recognize"
        } at ${spokenTime(last.at, now)}.`;
        await this.#o.show(device, last, answer);
        return answer;
      }
      default: {
        const events = store.find({ ...range, label: question.label });
        const when = question.period ?? "recently";
        const where = question.zone ? `${zoneName(question.zone)} camera` : "the cameras";
        if (events.length === 0) return `${capitalize(where)} saw nothing ${when}.`;
        const spoken = events.slice(0, MAX_SPOKEN_EVENTS).reverse().map((event) =>
          `${describeObjects(event.objects) || "something"} at ${spokenTime(event.at, now)}`
        );
        const more = events.length > MAX_SPOKEN_EVENTS
          ? `, and ${events.length - MAX_SPOKEN_EVENTS} more alerts`
          : "";
        return `${capitalize(when)}, ${where} saw ${joinAnd(spoken)}${more}.`;
      }
    }
  }

  async #live(device: string, question: VisualQuestion): Promise<string> {
    const { devices } = this.#o;
    const ownZone = devices.zoneOf(device);
    if (question.place !== undefined && question.zone === undefined) {
      return `I can't see ${zoneName(question.place.replaceAll(" ", "_"))}: no camera is there.`;
    }
    const zone = question.zone ?? ownZone;
    const ocr = question.kind === "read";
    // Step 3: a live frame of a video stream (server/camera_frames.ts).
    const live = await this.#o.liveFrame?.(device, question.zone ?? ownZone);
    if (live !== undefined) {
      const vision = await this.#o.vision();
      const context = await vision.analyze(live, { source: `webrtc_stream:${device}`, ocr });
      return answerFromContext(question, context, zone);
    }
    // Steps 4 and 5: the asking device's camera when the question is about its own zone, then
    // the cameras of the zone asked about.
    const candidates: string[] = [];
    if (devices.hasCamera(device) && (question.zone === undefined || question.zone === ownZone)) {
      candidates.push(device);
    }
    if (zone !== undefined) {
      for (const camera of devices.cameras(zone)) {
        if (!candidates.includes(camera)) candidates.push(camera);
      }
    }
    if (candidates.length === 0) {
      return zone === undefined
        ? "I can't see from here: this device has no camera, and I don't know which room it is in."
        : `I can't see ${zoneName(zone)}: no camera there is online.`;
    }
    const failures: string[] = [];
    for (const camera of candidates) {
      try {
        const context = await this.#o.snapshot(camera, { ocr });
        return answerFromContext(question, context, zone);
      } catch (error) {
        if (!(error instanceof MediaError)) throw error;
        failures.push(error.message);
        this.#o.log?.warn("camera did not answer a visual question", { camera, error });
      }
    }
    return `I couldn't get a picture from ${
      zone === undefined ? "the camera" : `${zoneName(zone)} camera`
    }: it did not answer in time.`;
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
