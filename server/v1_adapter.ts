/**
 * Protocol v1 on the audio socket (spec 4.2/6.1): each request frame is answered by exactly one
 * frame with the same device and request ids, at 48000 Hz, in request order; an empty body means
 * nothing was heard (or nothing could be said: busy, error). A failed connection is simply
 * closed: v1 has no error message.
 */
import { type Decoded, encodeV1, maxPcmBytes, type V1Frame } from "../shared/frame_codec.ts";
import { concatBytes } from "../shared/audio.ts";
import type { ReplySink, Utterance } from "./pipeline.ts";
import { type ConnectionLink, logTurnError, type SocketProtocol } from "./socket_link.ts";

/** Spec 6.1: the Python `AudioInferenceServer` always answers at 48000 Hz. */
export const V1_REPLY_RATE = 48000;
/** v1 requests waiting for their answer on one connection; later ones are answered empty. */
const MAX_V1_PENDING = 4;

/** The v1 request chain of one connection. */
export class V1Adapter implements SocketProtocol {
  readonly pinged = false;
  #link: ConnectionLink;
  #chain: Promise<void> = Promise.resolve();
  #pending = 0;
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
    const { log, queue, pipeline } = this.#link.settings;
    if (this.#pending >= MAX_V1_PENDING) {
      log?.warn("v1 request answered empty: too many pending", {
        peer: this.#link.peer,
        request: frame.request,
      });
      this.#chain = this.#chain.then(() => this.#respond(frame, new Uint8Array(0)));
      return;
    }
    this.#pending++;
    const controller = new AbortController();
    this.#controllers.add(controller);
    const utterance: Utterance = {
      device: frame.device,
      turn: frame.request,
      pcm: frame.pcm,
      rate: frame.rate,
      endedAt: Date.now(),
    };
    this.#chain = this.#chain.then(async () => {
      const chunks: Uint8Array[] = [];
      const sink: ReplySink = {
        transcript: () => {},
        reply: () => {},
        audio: (pcm) => chunks.push(pcm),
      };
      let pcm: Uint8Array = new Uint8Array(0);
      try {
        const result = await queue.run(
          frame.request,
          (signal) => pipeline.run(utterance, sink, { signal, outputRate: V1_REPLY_RATE }),
          { signal: controller.signal },
        );
        if (!result.cancelled) pcm = concatBytes(chunks);
      } catch (error) {
        logTurnError(this.#link, frame.device, frame.request, error);
      } finally {
        this.#pending--;
        this.#controllers.delete(controller);
      }
      this.#respond(frame, pcm);
    }).catch((error) => log?.error("v1 request failed", { peer: this.#link.peer, error }));
  }
}
