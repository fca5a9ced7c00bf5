/**
 * The media side of the AI server (spec 10.1, 11): snapshots on demand, recordings, uploads,
 * alerts with opt-in storage, and visual questions. `MediaService` wires them to MQTT;
 * docs/media.md documents the topics and messages.
 */
export { AlertRules, alertTypeOf, type FiredAlert } from "./alerts.ts";
export { wireContext } from "./answers.ts";
export { loadMediaConfig, MEDIA_FORMATS, type MediaConfig, type MediaFormat } from "./config.ts";
export { CAMERA_CAPABILITY, DeviceDirectory } from "./devices.ts";
export { decodeAudio, hasFfmpeg, sampleVideoFrames } from "./ffmpeg.ts";
export { MediaError, type MediaLink } from "./link.ts";
export { parseVisualQuestion, type VisualQuestion } from "./questions.ts";
export {
  type AnalysedFrame,
  MAX_MEDIA_JOBS,
  MediaService,
  type MediaServiceOptions,
  UNASSIGNED_ZONE,
  type VoiceTurn,
} from "./service.ts";
export { SnapshotRequester } from "./snapshots.ts";
export { MediaStore, type StoredMedia } from "./store.ts";
export { VisualQuestions } from "./visual_questions.ts";
