/**
 * Protocol v1 on the audio socket (spec 4.2/6.1): each request frame is answered by exactly one
 * frame with the same device and request ids, at 48000 Hz, in request order; an empty body means
 * nothing was heard (or nothing could be said: an error). A failed connection is simply closed:
 * v1 has no error message.
 *
 * Every request enters the shared {@link InferenceQueue} as it arrives (fair across devices, so
 * one device's burst does not hold back another's request), and the answers are written in
 * request order. Nothing is answered empty for being one request too many: a request is refused
 * only when the server is overloaded, and then its answer is the spoken apology
 * (notices.ts).
 */
import { type Decoded, encodeV1, maxPcmBytes, type V1Frame } from "../shared/frame_codec.ts";
import { concatBytes } from "../shared/audio.ts";
import { QueueError } from "./inference_queue.ts";
import type { ReplySink, Utterance } from "./pipeline.ts";
import { type ConnectionLink, logTurnError, type SocketProtocol } from "./socket_link.ts";

/** Spec 6.1: the Python `AudioInferenceServer` always answers at 48000 Hz. */
export const V1_REPLY_RATE = 48000;

/** The v1 request chain of one connection. */
export class V1Adapter implements SocketProtocol {
  readonly pinged = false;
  #link: ConnectionLink;
  /** Resolves once every answer so far is written: answers go out in request order. */
  #chain: Promise<void> = Promise.resolve();
  #controllers = new Set<AbortController>();

  constructor(link: ConnectionLink) {
    this.#link = link;
  }

  receive(item: Decoded): void {
    // The connection's first byte chose v1, and the decoder picks its version from that byte.
    if (item.version !== 1) throw new Error("v2 message on a v1 connection");
    this.#request(item.frame);
  }

  fail(code: string, message: string): void {
    this.#link.close(`${code}: ${message}`);
  }

  stop(reason: string): void {
    for (const controller of this.#controllers) controller.abort(new Error(reason));
  }

  #respond(frame: V1Frame, pcm: Uint8Array): void {
    const { limits, log } = this.#link.settings;
    // A reply longer than one frame may carry is cut, never refused.
    const max = maxPcmBytes(V1_REPLY_RATE, limits);
    const body = pcm.length > max ? pcm.subarray(0, max) : pcm;
    try {
      this.#link.send(encodeV1(
        { device: frame.device, rate: V1_REPLY_RATE, request: frame.request, pcm: body },
        limits,
      ));
    } catch (error) {
      log?.error("cannot encode v1 reply", { peer: this.#link.peer, error });
      this.#link.close("cannot encode a reply");
    }
  }

  #request(frame: V1Frame): void {
    const { log } = this.#link.settings;
    const answer = this.#answer(frame);
    this.#chain = this.#chain
      .then(() => answer)
      .then((pcm) => this.#respond(frame, pcm))
      .catch((error) => log?.error("v1 request failed", { peer: this.#link.peer, error }));
  }

  /** The request's reply audio: the pipeline's, the apology when overloaded, else empty. */
  async #answer(frame: V1Frame): Promise<Uint8Array> {
    const { queue, pipeline, notices, log } = this.#link.settings;
    const bytes = frame.pcm.length;
    if (!queue.reserve(bytes)) {
      log?.warn("v1 request refused: audio buffers full", { peer: this.#link.peer });
      return await notices?.speech("busy", V1_REPLY_RATE) ?? new Uint8Array(0);
    }
    const controller = new AbortController();
    this.#controllers.add(controller);
    const utterance: Utterance = {
      device: frame.device,
      turn: frame.request,
      pcm: frame.pcm,
      rate: frame.rate,
      endedAt: Date.now(),
    };
    const chunks: Uint8Array[] = [];
    const sink: ReplySink = {
      transcript: () => {},
      reply: () => {},
      audio: (pcm) => chunks.push(pcm),
    };
    try {
      const result = await queue.run(
        frame.request,
        (signal) =>
          pipeline.run(utterance, sink, {
            signal,
            outputRate: V1_REPLY_RATE,
            upcoming: (limit) => queue.upcoming(limit) as Utterance[],
          }),
        {
          payload: utterance,
          signal: controller.signal,
          device: frame.device,
          audioMs: (bytes / 2 / frame.rate) * 1000,
        },
      );
      return result.cancelled ? new Uint8Array(0) : concatBytes(chunks);
    } catch (error) {
      logTurnError(this.#link, frame.device, frame.request, error);
      if (error instanceof QueueError && error.code === "busy") {
        return await notices?.speech("busy", V1_REPLY_RATE) ?? new Uint8Array(0);
      }
      return new Uint8Array(0);
    } finally {
      queue.release(bytes);
      this.#controllers.delete(controller);
    }
  }
}
