/**
 * A software camera (issue 13, docs/video.md): VP8 frames of an IVF file sent as RTP on a
 * werift video transceiver at the file's frame rate (or `fps`), looped, so
 * `deno task device --video FILE.ivf` and benchmarks load a gateway with real cameras. A
 * keyframe request (RTCP PLI) restarts the file at its first frame, its keyframe: a file cannot
 * encode a new one.
 *
 * @example
 * ```ts
 * const camera = new IvfVideoSender(transceiver, readIvf(await Deno.readFile("walk.ivf")));
 * camera.start();
 * ```
 */
import { Buffer } from "node:buffer";
import { type RTCRtpTransceiver, RtpHeader, RtpPacket } from "werift";
import type { Ivf } from "../shared/video/ivf.ts";
import { Vp8Packetizer } from "../shared/video/vp8_packetizer.ts";
import { VP8_CLOCK_RATE } from "../shared/video/vp8_payload.ts";

/** Chrome's usual VP8 payload type; werift rewrites it as negotiated. */
const VP8_PAYLOAD_TYPE = 96;
/** Used when the IVF's time base gives no usable rate. */
const FALLBACK_FPS = 15;
const UINT32 = 0x1_0000_0000;

/** Options of {@link IvfVideoSender}. */
export interface IvfVideoSenderOptions {
  /** Frames per second; default the file's (from its time base and timestamps). */
  fps?: number;
  /** Start again at the first frame after the last (default true). */
  loop?: boolean;
  /** Called after frame `index` of the file was sent (benchmarks time motion from it). */
  onFrame?: (index: number) => void;
}

/** See the module doc. */
export class IvfVideoSender {
  framesSent = 0;
  keyframeRequests = 0;
  readonly fps: number;
  #transceiver: RTCRtpTransceiver;
  #ivf: Ivf;
  #loop: boolean;
  #onFrame: ((index: number) => void) | undefined;
  #packetizer = new Vp8Packetizer();
  #next = 0;
  #timestamp = Math.floor(Math.random() * UINT32);
  #timer: ReturnType<typeof setInterval> | undefined;

  /** Throws RangeError when the file has no frames. */
  constructor(transceiver: RTCRtpTransceiver, ivf: Ivf, options: IvfVideoSenderOptions = {}) {
    if (ivf.frames.length === 0) throw new RangeError("the IVF file has no frames");
    this.#transceiver = transceiver;
    this.#ivf = ivf;
    this.#loop = options.loop ?? true;
    this.#onFrame = options.onFrame;
    this.fps = options.fps ?? fileFps(ivf);
    transceiver.setDirection("sendonly");
    transceiver.sender.onPictureLossIndication.subscribe(() => {
      this.keyframeRequests++;
      this.#next = 0;
    });
  }

  /** Starts sending (idempotent). */
  start(): void {
    this.#timer ??= setInterval(() => this.#send(), 1000 / this.fps);
  }

  /** Stops sending. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #send(): void {
    if (this.#next >= this.#ivf.frames.length) {
      if (!this.#loop) return this.stop();
      this.#next = 0;
    }
    const index = this.#next++;
    const frame = this.#ivf.frames[index];
    this.#timestamp = (this.#timestamp + Math.round(VP8_CLOCK_RATE / this.fps)) % UINT32;
    for (const packet of this.#packetizer.packetize(frame.data, this.#timestamp)) {
      const header = new RtpHeader({
        payloadType: VP8_PAYLOAD_TYPE,
        sequenceNumber: packet.sequenceNumber,
        timestamp: packet.timestamp,
        marker: packet.marker,
      });
      const payload = Buffer.from(
        packet.payload.buffer,
        packet.payload.byteOffset,
        packet.payload.byteLength,
      );
      this.#transceiver.sender.sendRtp(new RtpPacket(header, payload)).catch(() => {});
    }
    this.framesSent++;
    this.#onFrame?.(index);
  }
}

/** The file's frame rate from its time base (ffmpeg writes 1/fps) or its timestamps. */
function fileFps(ivf: Ivf): number {
  const { timeBaseDenominator: den, timeBaseNumerator: num } = ivf.header;
  const frames = ivf.frames;
  if (frames.length > 1 && num > 0) {
    const span = ((frames[frames.length - 1].timestamp - frames[0].timestamp) * num) / den;
    if (span > 0) return clampFps((frames.length - 1) / span);
  }
  return num > 0 && den > 0 ? clampFps(den / num) : FALLBACK_FPS;
}

function clampFps(fps: number): number {
  return Number.isFinite(fps) && fps >= 1 && fps <= 60 ? fps : FALLBACK_FPS;
}
