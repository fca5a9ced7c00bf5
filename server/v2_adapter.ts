/**
 * Protocol v2 on the audio socket (docs/protocol.md), the connection's side of it: the hello
 * exchange (the capabilities both sides agree on), `ping`/`pong`, camera frames (`image`,
 * `frame_request`, camera_frames.ts), the gateway's connection-level `error`s, and every turn
 * message handed to the turn table of {@link V2Turns} (v2_turns.ts). A connection-level failure
 * is told to the peer as an `error` before the connection closes. The v1 counterpart is
 * `v1_adapter.ts`.
 */
import { type Decoded, errorMessage, V2_CAPABILITIES } from "../shared/frame_codec.ts";
import type { CameraChannel } from "./camera_frames.ts";
import type { ConnectionLink, SocketProtocol, SocketSettings } from "./socket_link.ts";
import { V2Output } from "./v2_output.ts";
import { V2Turns } from "./v2_turns.ts";

/**
 * The capabilities the server announces: all of {@link V2_CAPABILITIES}, except `speculate`
 * without a pipeline with STT to start early on a pause, `eot` without that STT's transcript
 * being judged, and `image` without camera frames.
 */
export function serverCapabilities(
  settings: Pick<SocketSettings, "pipeline" | "cameras">,
): string[] {
  const { pipeline, cameras } = settings;
  return V2_CAPABILITIES.filter((c) =>
    ((c !== "speculate" && c !== "eot") ||
      (pipeline.speculate !== undefined &&
        (c === "speculate" || pipeline.endOfTurn !== undefined))) &&
    (c !== "image" || cameras !== undefined)
  );
}

/** The v2 protocol of one connection. */
export class V2Adapter implements SocketProtocol {
  readonly pinged = true;
  #link: ConnectionLink;
  /** The gateway's capabilities, from its hello (plus `hello` once it came). */
  #capabilities = new Set<string>();
  /** What goes to the gateway: messages, reply audio, spoken notices. */
  #out: V2Output;
  #turns: V2Turns;
  /** Camera frames of this gateway, when both hellos announced `image` (camera_frames.ts). */
  #camera: CameraChannel | undefined;

  constructor(link: ConnectionLink) {
    this.#link = link;
    this.#out = new V2Output(link, this.#capabilities);
    this.#turns = new V2Turns(link, this.#out, this.#capabilities);
  }

  fail(code: string, message: string): void {
    this.#out.send(errorMessage(code, message));
    this.#link.closeAfterWrites(`${code}: ${message}`);
  }

  stop(reason: string): void {
    this.#camera?.close();
    this.#turns.stop(reason);
  }

  receive(item: Decoded): void {
    // The connection's first byte chose v2, and the decoder picks its version from that byte.
    if (item.version !== 2) throw new Error("v1 frame on a v2 connection");
    const message = item.message;
    const turns = this.#turns;
    switch (message.type) {
      case "hello":
        return this.#hello(message.role, message.capabilities);
      case "start":
        return turns.start(message.turn, message.device, message.rate, message.continues);
      case "audio":
        return turns.audio(message.turn, message.seq, message.rate, message.pcm);
      case "pause":
        return turns.pause(message.turn);
      case "end":
        return turns.end(message.turn);
      case "cancel":
        return turns.cancel(message.turn, message.played_ms);
      case "commit":
        return turns.commit(message.turn);
      case "ping":
        this.#out.send({ type: "pong", id: message.id, ts: Date.now() });
        return;
      case "pong":
        return;
      case "image":
        if (this.#camera) return this.#camera.receive(message);
        return this.#out.error(undefined, "unsupported", "image needs the image capability");
      case "frame_request":
        return this.#out.error(undefined, "unsupported", "frame_request is sent by the server");
      case "error":
        if (message.request !== undefined && this.#camera) return this.#camera.receive(message);
        this.#link.settings.log?.warn("gateway reported an error", {
          peer: this.#link.peer,
          ...message,
        });
        return;
      case "text":
        this.#out.error(message.turn, "unsupported", "text input is not supported");
        return;
      case "state":
      case "eot":
        this.#out.error(message.turn, "unsupported", `${message.type} is sent by the server only`);
        return;
    }
  }

  /** The gateway's hello: its capabilities, then ours (with the authentication fields). */
  #hello(role: string, capabilities: readonly string[]): void {
    if (this.#capabilities.size > 0 || role !== "gateway") {
      this.#out.error(undefined, "bad_frame", `unexpected hello from ${role}`);
      return;
    }
    for (const capability of capabilities) this.#capabilities.add(capability);
    this.#capabilities.add("hello");
    const { cameras } = this.#link.settings;
    if (capabilities.includes("image") && cameras) {
      this.#camera = cameras.open(this.#link.peer, (m) => this.#out.send(m));
    }
    this.#out.send({
      type: "hello",
      version: 2,
      role: "server",
      capabilities: serverCapabilities(this.#link.settings),
      ts: Date.now(),
      ...this.#link.helloFields(),
    });
  }
}
