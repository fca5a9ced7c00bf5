/**
 * Camera frames from gateways (issue 13, spec 10.2 and 11.4; docs/video.md, docs/protocol.md
 * "Camera frames"): the server's side of the v2 `image` and `frame_request` messages.
 *
 * - **Motion frames** (`image`, reason `motion`) are analysed by the media side's detector and
 *   alert rules ({@link CameraFramesOptions.analyse}, i.e. `MediaService.analyseCameraFrame`),
 *   one at a time per device. At most {@link MAX_PENDING_FRAMES} wait per device; a newer frame
 *   replaces the oldest waiting one (frames are samples of a stream: the latest matters), and
 *   the drops are counted.
 * - **Live frame grabs** ({@link CameraFrames.liveFrame}): a `frame_request` to the gateway
 *   connections that announced `image`, newest first, answered by an `image` of reason `grab`
 *   with the same `request`, or an `error` naming it; {@link GRAB_TIMEOUT_MS} without either
 *   fails that request only. At most {@link MAX_OUTSTANDING_REQUESTS} per connection.
 *
 * Who may send frames: only a gateway on the audio socket that said hello with `image`; a frame
 * answering no request of that connection is dropped with a log line.
 *
 * @example
 * ```ts
 * const cameras = new CameraFrames({ analyse: (d, jpeg, f) => media.analyseCameraFrame(d, jpeg, f) });
 * const channel = cameras.open("127.0.0.1:50000", (message) => send(encodeV2(message)));
 * channel.receive(imageMessage);
 * const jpeg = await cameras.liveFrame(["hallway"]); // undefined when no gateway has it
 * ```
 */
import type {
  ErrorMessage,
  FrameRequestMessage,
  ImageMessage,
  V2Message,
} from "../shared/frame_codec.ts";
import type { Logger } from "../shared/log.ts";

/** Unanalysed motion frames kept per device (docs/video.md). */
export const MAX_PENDING_FRAMES = 2;
/** Frame requests waiting for an answer on one connection (docs/protocol.md). */
export const MAX_OUTSTANDING_REQUESTS = 4;
/** The gateway's own grab timeout is 2.5 s; its answer needs a little longer to arrive. */
export const GRAB_TIMEOUT_MS = 3000;
/** A live frame older than this is not "live" (the gateway's MAX_GRAB_AGE_MS). */
export const LIVE_MAX_AGE_MS = 1000;

/** What a camera frame is analysed with (the media side). */
export interface CameraFramesOptions {
  /** Detects and runs the alert rules on one JPEG frame of `device`. */
  analyse(
    device: string,
    jpeg: Uint8Array,
    frame: { format: "jpeg"; at: number; source: string },
  ): Promise<unknown>;
  log?: Logger;
  /** Default {@link GRAB_TIMEOUT_MS}. */
  grabTimeoutMs?: number;
}

/** Counters for logs, metrics and benchmarks. */
export interface CameraFrameStats {
  received: number;
  analysed: number;
  /** Replaced while waiting (the device sent faster than the detector runs). */
  dropped: number;
  failed: number;
  grabs: number;
  grabFailures: number;
  /** Of the last motion frame: ms from the gateway's `capture_ts` to its receipt here. */
  lastTransitMs?: number;
  /** Of the last motion frame analysed: ms from its receipt to the start of its analysis. */
  lastQueueMs?: number;
}

/** A live grab that got no frame: the gateway's error, or no answer in time. */
export class FrameRequestError extends Error {
  override name = "FrameRequestError";
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

interface DeviceQueue {
  running: boolean;
  waiting: { image: ImageMessage; receivedAt: number }[];
}

/** Every gateway connection's camera frames; see the module doc. */
export class CameraFrames {
  readonly stats: CameraFrameStats = {
    received: 0,
    analysed: 0,
    dropped: 0,
    failed: 0,
    grabs: 0,
    grabFailures: 0,
  };
  #o: CameraFramesOptions;
  #channels: CameraChannel[] = [];
  #queues = new Map<string, DeviceQueue>();

  constructor(options: CameraFramesOptions) {
    this.#o = options;
  }

  /** A gateway connection that announced `image`; `send` writes one v2 message to it. */
  open(peer: string, send: (message: V2Message) => void): CameraChannel {
    const channel = new CameraChannel(this, peer, send, this.#o.grabTimeoutMs ?? GRAB_TIMEOUT_MS);
    this.#channels.push(channel);
    return channel;
  }

  /** @internal The channel's connection closed. */
  closed(channel: CameraChannel): void {
    this.#channels = this.#channels.filter((c) => c !== channel);
  }

  /**
   * The latest frame of the first of `devices` some gateway streams (spec 11.4), as JPEG, or
   * undefined when none does (then the caller falls back to an MQTT snapshot). Never rejects.
   */
  async liveFrame(devices: readonly string[]): Promise<ImageMessage | undefined> {
    for (const device of devices) {
      // Newest connection first: a restarted gateway's old connection may linger.
      for (const channel of [...this.#channels].reverse()) {
        this.stats.grabs++;
        try {
          return await channel.request(device);
        } catch (error) {
          this.stats.grabFailures++;
          this.#o.log?.info("no live frame", {
            device,
            peer: channel.peer,
            error: (error as Error).message,
          });
        }
      }
    }
    return undefined;
  }

  /** @internal A motion frame from a gateway: queued for analysis. */
  motion(image: ImageMessage): void {
    this.stats.received++;
    const receivedAt = Date.now();
    // Same host in tests and benchmarks; across hosts it includes the clock offset.
    this.stats.lastTransitMs = receivedAt - image.capture_ts;
    let queue = this.#queues.get(image.device);
    if (queue === undefined) {
      queue = { running: false, waiting: [] };
      this.#queues.set(image.device, queue);
    }
    queue.waiting.push({ image, receivedAt });
    if (queue.waiting.length > MAX_PENDING_FRAMES) {
      queue.waiting.shift();
      this.stats.dropped++;
      this.#o.log?.debug("camera frame dropped: the detector is behind", {
        device: image.device,
      });
    }
    if (!queue.running) void this.#drain(image.device, queue);
  }

  async #drain(device: string, queue: DeviceQueue): Promise<void> {
    queue.running = true;
    try {
      for (let next = queue.waiting.shift(); next; next = queue.waiting.shift()) {
        const { image, receivedAt } = next;
        this.stats.lastQueueMs = Date.now() - receivedAt;
        try {
          // Dated on the server's clock, as snapshots are (docs/media.md).
          await this.#o.analyse(device, image.jpeg, {
            format: "jpeg",
            at: Date.now(),
            source: `webrtc_stream:${device}`,
          });
          this.stats.analysed++;
        } catch (error) {
          this.stats.failed++;
          this.#o.log?.warn("camera frame not analysed", {
            device,
            error: (error as Error).message,
          });
        }
      }
    } finally {
      queue.running = false;
      if (queue.waiting.length === 0) this.#queues.delete(device);
    }
  }
}

interface Outstanding {
  device: string;
  resolve: (image: ImageMessage) => void;
  reject: (error: FrameRequestError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** One gateway connection's camera messages. */
export class CameraChannel {
  readonly peer: string;
  #frames: CameraFrames;
  #send: (message: V2Message) => void;
  #timeoutMs: number;
  #outstanding = new Map<string, Outstanding>();
  #nextRequest = 1;
  #closed = false;

  constructor(
    frames: CameraFrames,
    peer: string,
    send: (message: V2Message) => void,
    timeoutMs: number,
  ) {
    this.#frames = frames;
    this.peer = peer;
    this.#send = send;
    this.#timeoutMs = timeoutMs;
  }

  /** An `image`, or an `error` with `request`, from the gateway. Never throws. */
  receive(message: ImageMessage | ErrorMessage): void {
    if (message.type === "image" && message.reason === "motion") {
      this.#frames.motion(message);
      return;
    }
    const request = message.request;
    const waiting = request === undefined ? undefined : this.#outstanding.get(request);
    if (waiting === undefined || (message.type === "image" && message.device !== waiting.device)) {
      this.#frames.stats.failed++;
      this.#send({
        type: "error",
        ...(request !== undefined ? { request } : {}),
        code: "unknown_request",
        message: `${message.type} answers no waiting frame request (${request ?? "no request"})`,
        ts: Date.now(),
      });
      return;
    }
    this.#outstanding.delete(request!);
    clearTimeout(waiting.timer);
    if (message.type === "image") waiting.resolve(message);
    else waiting.reject(new FrameRequestError(message.code, message.message));
  }

  /** Asks the gateway for `device`'s latest frame. Rejects with {@link FrameRequestError}. */
  request(device: string): Promise<ImageMessage> {
    if (this.#closed) {
      return Promise.reject(new FrameRequestError("closed", "the gateway connection closed"));
    }
    if (this.#outstanding.size >= MAX_OUTSTANDING_REQUESTS) {
      return Promise.reject(
        new FrameRequestError("busy", `${MAX_OUTSTANDING_REQUESTS} frame requests are waiting`),
      );
    }
    const request = `g${this.#nextRequest++}`;
    const message: FrameRequestMessage = {
      type: "frame_request",
      request,
      device,
      max_age_ms: LIVE_MAX_AGE_MS,
      ts: Date.now(),
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#outstanding.delete(request);
        reject(
          new FrameRequestError(
            "timeout",
            `no frame of ${device} from ${this.peer} within ${this.#timeoutMs} ms`,
          ),
        );
      }, this.#timeoutMs);
      this.#outstanding.set(request, { device, resolve, reject, timer });
      this.#send(message);
    });
  }

  /** The connection is gone: waiting requests fail at once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#frames.closed(this);
    for (const waiting of this.#outstanding.values()) {
      clearTimeout(waiting.timer);
      waiting.reject(new FrameRequestError("closed", "the gateway connection closed"));
    }
    this.#outstanding.clear();
  }
}
