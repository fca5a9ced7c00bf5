/**
 * The media side of the AI server (spec 11.3 "Media Input Handler"): everything that arrives
 * over MQTT besides voice.
 *
 * - `naila/devices/+/status` → the device directory (cameras, zones).
 * - `naila/devices/+/media/snapshot` → the answer to a snapshot request, by request_id (11.5);
 *   an unknown request_id is reported on the device's `events` topic and dropped.
 * - `naila/devices/+/media/recording` (and recordings on media/snapshot) → audio: ffmpeg → PCM →
 *   STT → assistant like a spoken turn, answered on `media/response` and spoken on the device;
 *   video: sampled frames → detection → alerts, answered on `media/response` (11.6).
 * - `naila/uploads/+/image` → analysis → the answer to its `context` question on
 *   `naila/uploads/{session_id}/response` (11.7, 11.9).
 * Every analysed camera frame goes through the alert rules (10.1); fired alerts are published on
 * `naila/alerts/{zone}/{type}` and `naila/alerts/all`, stored when MEDIA_STORAGE=alerts, and
 * spoken by the zone's devices. Bad input gets an error naming what was wrong on the response or
 * events topic; nothing here throws into the MQTT client.
 */
import type { Logger } from "../../shared/log.ts";
import {
  type MediaAnswer,
  parseDeviceStatus,
  parseMediaResponse,
  parseRecording,
  parseUpload,
  type Recording,
  type Upload,
} from "../../shared/messages.ts";
import { topicFilter } from "../../shared/topics.ts";
import type { DetectedObject, Vision, VisualContext } from "../vision/mod.ts";
import { type AlertFrame, AlertRules, type FiredAlert } from "./alerts.ts";
import { describeError, failure, wireContext } from "./answers.ts";
import type { MediaConfig, MediaFormat } from "./config.ts";
import { DeviceDirectory } from "./devices.ts";
import { decodeAudio, FRAME_INTERVAL_MS, sampleVideoFrames } from "./ffmpeg.ts";
import { decodeMedia, encodeMedia, MediaError, type MediaLink } from "./link.ts";
import { countLabels, countOf, sceneSentence, whereIn } from "./phrases.ts";
import { type ReceivedSnapshot, SnapshotRequester } from "./snapshots.ts";
import type { MediaStore, StoredMedia } from "./store.ts";
import { VisualQuestions } from "./visual_questions.ts";

/** Recordings and uploads processed at once; more get a "busy" error instead of a backlog. */
export const MAX_MEDIA_JOBS = 4;
/** Where a camera without a zone raises its alerts. */
export const UNASSIGNED_ZONE = "unassigned";

/** A spoken turn run on decoded audio (server/pipeline.ts behind it). */
export type VoiceTurn = (
  device: string,
  audio: { pcm: Uint8Array; rate: number },
) => Promise<{ transcript: string; reply: string }>;

/** Options of {@link MediaService}. */
export interface MediaServiceOptions {
  link: MediaLink;
  config: MediaConfig;
  /** The vision core, started on first use. */
  vision: () => Promise<Vision>;
  store?: MediaStore;
  /** Runs a recording's audio as a spoken turn; absent: recordings get an "unavailable" error. */
  voiceTurn?: VoiceTurn;
  /** Speaks `text` on `device` if it is connected (announce command + pull turn). */
  speak?: (device: string, text: string) => void;
  /** Spec 11.10 step 3: a frame of a live video stream (see VisualQuestionsOptions). */
  liveFrame?: (device: string, zone: string | undefined) => Promise<Uint8Array | undefined>;
  log?: Logger;
}

/** An analysed camera frame and the alerts it raised. */
export interface AnalysedFrame {
  context: VisualContext;
  alerts: FiredAlert[];
}

/** Snapshots, recordings, uploads, alerts and visual questions over MQTT. */
export class MediaService {
  readonly devices: DeviceDirectory;
  readonly snapshots: SnapshotRequester;
  readonly alerts: AlertRules;
  readonly questions: VisualQuestions;
  #o: MediaServiceOptions;
  #jobs = 0;
  #poll: ReturnType<typeof setInterval> | undefined;
  /** Cameras with a poll snapshot in flight: a slow camera is not asked again meanwhile. */
  #polling = new Set<string>();

  constructor(options: MediaServiceOptions) {
    this.#o = options;
    const { config } = options;
    this.devices = new DeviceDirectory(config.deviceZones);
    this.snapshots = new SnapshotRequester(options.link, {
      timeoutMs: config.snapshotTimeoutMs,
      maxBytes: config.maxUploadBytes,
    });
    this.alerts = new AlertRules({
      rules: config.alertRules,
      cooldownMs: config.alertCooldownMs,
      minConfidence: config.alertMinConfidence,
    });
    this.questions = new VisualQuestions({
      vision: options.vision,
      devices: this.devices,
      store: options.store,
      ruleZones: config.alertRules.map((rule) => rule.zone),
      snapshot: async (camera, { ocr }) => (await this.snapshot(camera, { ocr })).context,
      show: (device, media, answer) => this.#show(device, media, answer),
      liveFrame: options.liveFrame,
      log: options.log,
    });
  }

  /**
   * Subscribes to the media topics (call before the MQTT link starts or any time after), and
   * polls the cameras when MEDIA_CAMERA_POLL_MS is set.
   */
  start(): void {
    const { link } = this.#o;
    if (this.#o.config.cameraPollMs > 0) {
      this.#poll = setInterval(() => this.#pollCameras(), this.#o.config.cameraPollMs);
    }
    // One handler for every media topic: each handler sees (and decodes) every message, and a
    // media message can be megabytes.
    const filters =
      (["device_status", "device_snapshot", "device_recording", "upload_image"] as const)
        .map((kind) => topicFilter(kind));
    link.subscribe(filters, (topic, payload) => {
      switch (topic.kind) {
        case "device_status": {
          const status = parseDeviceStatus(payload);
          if (status.ok) this.devices.update(topic.device, status.value);
          return;
        }
        case "device_snapshot":
          return this.#onSnapshot(topic.device, payload);
        case "device_recording":
          return this.#onRecordingMessage(topic.device, payload);
        case "upload_image":
          return this.#onUploadMessage(topic.session, payload);
      }
    });
  }

  #onRecordingMessage(device: string, payload: string): void {
    const recording = parseRecording(payload);
    if (!recording.ok) return this.#deviceError(device, recording.error);
    this.#job(
      () => this.#onRecording(device, recording.value),
      (error) =>
        this.#answerDevice(device, {
          kind: "recording",
          request_id: recording.value.request_id,
          ...failure(error),
        }),
    );
  }

  #onUploadMessage(session: string, payload: string): void {
    const upload = parseUpload(payload);
    if (!upload.ok) {
      this.#o.log?.warn("bad upload", { session, error: upload.error });
      this.#answerUpload(session, {
        kind: "upload",
        session_id: session,
        ...failure(new MediaError("bad_message", upload.error)),
      }).catch((error) => this.#o.log?.warn("upload error not published", { error }));
      return;
    }
    this.#job(
      () => this.#onUpload(session, upload.value),
      (error) =>
        this.#answerUpload(session, {
          kind: "upload",
          session_id: session,
          ...failure(error),
        }),
    );
  }

  /**
   * Spec 11.5 and 10.1 in one: request a snapshot from `camera`, detect, run the alert rules.
   * @throws {MediaError} timeout or a bad answer; {@link ImageError} a bad image.
   */
  async snapshot(
    camera: string,
    options: { ocr?: boolean } = {},
  ): Promise<AnalysedFrame & { received: ReceivedSnapshot }> {
    const received = await this.snapshots.request(camera, { format: "jpeg" });
    const analysed = await this.analyseCameraFrame(camera, received.image, {
      format: received.snapshot.format,
      // The server's clock, not the device's: history and retention must not trust a camera's.
      at: Date.now(),
      source: `mqtt_snapshot:${camera}`,
      ocr: options.ocr,
    });
    return { ...analysed, received };
  }

  /** Detects objects in a camera's frame, then publishes (and stores) the alerts it raises. */
  async analyseCameraFrame(
    camera: string,
    image: Uint8Array,
    frame: { format: "jpeg" | "png" | "webp"; at: number; source: string; ocr?: boolean },
  ): Promise<AnalysedFrame> {
    this.#checkFormat(frame.format);
    const vision = await this.#o.vision();
    const context = await vision.analyze(image, { source: frame.source, ocr: frame.ocr });
    const zone = this.devices.zoneOf(camera) ?? UNASSIGNED_ZONE;
    const alertFrame: AlertFrame = { device: camera, zone, objects: context.objects, at: frame.at };
    const alerts = this.alerts.evaluate(alertFrame);
    if (alerts.length > 0) await this.#raise(alerts, context, image, frame.format);
    return { context, alerts };
  }

  /**
   * A spoken visual question's answer, or undefined when `text` is not one (assistant hook).
   * Never rejects: a failure is said ("Sorry, I couldn't look: …").
   */
  answerQuestion(device: string, text: string): Promise<string> | undefined {
    return this.questions.answer(device, text)?.catch((error) => {
      this.#o.log?.warn("visual question failed", { device, error });
      return `Sorry, I couldn't look: ${describeError(error).message}.`;
    });
  }

  /** Stops polling and fails every waiting snapshot request. */
  close(): void {
    clearInterval(this.#poll);
    this.snapshots.close();
  }

  /** One snapshot from each online camera not still busy with the last one; alerts follow. */
  #pollCameras(): void {
    for (const camera of this.devices.allCameras()) {
      if (this.#polling.has(camera)) continue;
      this.#polling.add(camera);
      this.snapshot(camera).catch((error) =>
        this.#o.log?.debug("camera poll failed", { camera, error: describeError(error).message })
      ).finally(() => this.#polling.delete(camera));
    }
  }

  async #raise(
    alerts: FiredAlert[],
    context: VisualContext,
    image: Uint8Array,
    format: "jpeg" | "png" | "webp",
  ): Promise<void> {
    const { link, store, speak, log } = this.#o;
    let mediaId: number | undefined;
    if (store !== undefined) {
      try {
        mediaId = await store.add({
          at: alerts[0].at,
          zone: alerts[0].zone,
          device: alerts[0].device,
          objects: context.objects,
          description: context.description,
          format,
          image,
        });
      } catch (error) {
        log?.warn("alert snapshot not stored", { error });
      }
    }
    for (const alert of alerts) {
      const message = {
        alert_type: alert.alertType,
        zone: alert.zone,
        confidence: alert.confidence,
        source_device: alert.device,
        timestamp: new Date(alert.at).toISOString(),
        label: alert.label,
        count: alert.count,
        description: sceneSentence(context.objects, alert.zone),
        ...(mediaId !== undefined ? { media_id: mediaId } : {}),
      };
      log?.info("alert", { zone: alert.zone, type: alert.alertType, device: alert.device });
      await Promise.all([
        link.publish({ kind: "alert", zone: alert.zone, alertType: alert.alertType }, message),
        link.publish({ kind: "alert_all" }, message),
      ]).catch((error) => log?.warn("alert not published", { error }));
      // The zone's speakers announce it.
      for (const device of this.devices.speakers(alert.zone)) {
        if (device !== alert.device) {
          speak?.(device, `Alert: ${countOf(alert.count, alert.label)} ${whereIn(alert.zone)}.`);
        }
      }
    }
  }

  #onSnapshot(device: string, payload: string): void {
    const response = parseMediaResponse(payload);
    if (!response.ok) return this.#deviceError(device, response.error);
    const value = response.value;
    if (value.media_type !== "image") {
      // A clip answering on media/snapshot (a "recording" request): handled as a recording.
      this.#job(() => this.#onRecording(device, value), (error) =>
        this.#answerDevice(device, {
          kind: "recording",
          request_id: value.request_id,
          ...failure(error),
        }));
      return;
    }
    try {
      this.snapshots.accept(device, value);
    } catch (error) {
      this.#deviceError(device, describeError(error).message);
    }
  }

  async #onRecording(device: string, recording: Recording): Promise<void> {
    this.#checkFormat(recording.format);
    const data = decodeMedia(recording.data, this.#o.config.maxUploadBytes, "recording");
    const limits = {
      timeoutMs: this.#o.config.decodeTimeoutMs,
      maxMs: this.#o.config.maxClipMs,
    };
    const base = { kind: "recording" as const, request_id: recording.request_id };
    if (recording.media_type === "audio") {
      const audio = await decodeAudio(data, recording.format, limits);
      const voiceTurn = this.#o.voiceTurn;
      if (voiceTurn === undefined) {
        throw new MediaError("unavailable", "recordings need the speech pipeline (PIPELINE=full)");
      }
      const { transcript, reply } = await voiceTurn(device, audio);
      if (reply.length > 0 && this.devices.canSpeak(device)) this.#o.speak?.(device, reply);
      await this.#answerDevice(device, { ...base, ok: true, transcript, answer: reply });
      return;
    }
    const frames = await sampleVideoFrames(data, recording.format, limits);
    // Frames are dated on the server's clock (received now), as snapshots are.
    const start = Date.now() - frames.length * FRAME_INTERVAL_MS;
    const analysed = [];
    for (const frame of frames) {
      const { context } = await this.analyseCameraFrame(device, frame.jpeg, {
        format: "jpeg",
        at: start + frame.atMs,
        source: `mqtt_recording:${device}`,
      });
      analysed.push({ at_ms: frame.atMs, description: context.description, context });
    }
    // The most of each label seen in any one frame: "a cat" throughout is one cat, not three.
    const most = new Map<string, number>();
    for (const { context } of analysed) {
      for (const [label, count] of countLabels(context.objects)) {
        most.set(label, Math.max(most.get(label) ?? 0, count));
      }
    }
    const objects: DetectedObject[] = [...most].flatMap(([label, count]) =>
      Array.from({ length: count }, () => ({ label, confidence: 1, bbox: [0, 0, 0, 0] }))
    );
    const best = analysed.reduce((a, b) =>
      b.context.objects.length > a.context.objects.length ? b : a
    );
    await this.#answerDevice(device, {
      ...base,
      ok: true,
      answer: `In the clip ${sceneSentence(objects)}`,
      visual_context: wireContext(
        best.context,
        { type: "mqtt_recording", device_id: device },
        new Date(start + best.at_ms).toISOString(),
      ),
      frames: analysed.map(({ at_ms, description, context }) => ({
        at_ms,
        description,
        objects: wireContext(context, { type: "mqtt_recording" }, recording.timestamp).analysis!
          .objects!,
      })),
    });
  }

  async #onUpload(session: string, upload: Upload): Promise<void> {
    this.#checkFormat(upload.format);
    const image = decodeMedia(upload.data, this.#o.config.maxUploadBytes, "upload");
    const question = upload.context?.trim() || "What do you see?";
    const { answer, context } = await this.questions.answerAttached(
      image,
      question,
      `mqtt_upload:${session}`,
    );
    const timestamp = new Date().toISOString();
    await this.#answerUpload(session, {
      kind: "upload",
      ok: true,
      session_id: session,
      ...(upload.conversation_id ? { conversation_id: upload.conversation_id } : {}),
      question,
      answer,
      visual_context: wireContext(
        context,
        { type: "mqtt_upload", session_id: session },
        timestamp,
        question,
      ),
    });
  }

  async #show(device: string, media: StoredMedia, answer: string): Promise<void> {
    const image = await this.#o.store!.readImage(media);
    await this.#answerDevice(device, {
      kind: "history",
      ok: true,
      answer,
      image: {
        format: media.format,
        data: encodeMedia(image),
        media_id: media.id,
        zone: media.zone,
        device_id: media.device,
        timestamp: new Date(media.at).toISOString(),
      },
    });
  }

  #checkFormat(format: MediaFormat): void {
    if (!this.#o.config.formats.includes(format)) {
      throw new MediaError(
        "unsupported_format",
        `format ${format} is not accepted here (MEDIA_FORMATS=${this.#o.config.formats.join(",")})`,
      );
    }
  }

  /** Runs a recording or upload job, bounded by {@link MAX_MEDIA_JOBS}; errors go to `onError`. */
  #job(run: () => Promise<void>, onError: (error: unknown) => Promise<void>): void {
    if (this.#jobs >= MAX_MEDIA_JOBS) {
      onError(new MediaError("busy", `${MAX_MEDIA_JOBS} media jobs are running; try again`))
        .catch(() => {});
      return;
    }
    this.#jobs++;
    run().catch((error) => {
      if (describeError(error).code === "internal") {
        this.#o.log?.error("media job failed", { error });
      }
      return onError(error);
    }).catch((error) => this.#o.log?.warn("media error not published", { error }))
      .finally(() => this.#jobs--);
  }

  #deviceError(device: string, message: string): void {
    this.#o.log?.warn("bad media message", { device, error: message });
    this.#o.link.publish({ kind: "device_events", device }, {
      type: "error",
      message: message.slice(0, 4000),
      timestamp: new Date().toISOString(),
    }).catch((error) => this.#o.log?.warn("error event not published", { error }));
  }

  #answerDevice(
    device: string,
    answer: Omit<MediaAnswer, "timestamp">,
  ): Promise<void> {
    return this.#o.link.publish({ kind: "device_media_response", device }, {
      ...answer,
      timestamp: new Date().toISOString(),
    });
  }

  #answerUpload(session: string, answer: Omit<MediaAnswer, "timestamp">): Promise<void> {
    return this.#o.link.publish({ kind: "upload_response", session }, {
      ...answer,
      timestamp: new Date().toISOString(),
    });
  }
}
