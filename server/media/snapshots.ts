/**
 * Snapshots on demand (spec 11.5): publish a request with a fresh request_id on
 * `naila/devices/{id}/media/request`, and match the device's answer on `media/snapshot` to it by
 * request_id. Several requests may be in flight (to one or many devices); each ends with the
 * image, or a {@link MediaError} "timeout" after MediaConfig's snapshot timeout.
 *
 * @example
 * ```ts
 * const snapshots = new SnapshotRequester(link, { timeoutMs: 5000 });
 * const { image, snapshot } = await snapshots.request("front_cam", { format: "jpeg" });
 * ```
 */
import type { MediaRequest, SnapshotResponse } from "../../shared/messages.ts";
import { decodeMedia, MediaError, type MediaLink } from "./link.ts";

/** Options of {@link SnapshotRequester}. */
export interface SnapshotRequesterOptions {
  /** How long a device has to answer (MEDIA_SNAPSHOT_TIMEOUT_MS). */
  timeoutMs: number;
  /** Largest decoded image (MEDIA_MAX_UPLOAD_BYTES). */
  maxBytes: number;
}

/** A received snapshot: the message, its decoded bytes, and the request → answer time. */
export interface ReceivedSnapshot {
  device: string;
  snapshot: SnapshotResponse;
  image: Uint8Array;
  /** From publishing the request to receiving the answer, in ms. */
  roundTripMs: number;
}

interface Pending {
  device: string;
  startedAt: number;
  resolve: (snapshot: ReceivedSnapshot) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Requests snapshots and correlates the answers by request_id. */
export class SnapshotRequester {
  #link: MediaLink;
  #options: SnapshotRequesterOptions;
  #pending = new Map<string, Pending>();
  #sequence = 0;
  // Makes request ids unguessable, so another client cannot answer a request it never saw.
  #nonce = crypto.randomUUID().slice(0, 8);

  constructor(link: MediaLink, options: SnapshotRequesterOptions) {
    this.#link = link;
    this.#options = options;
  }

  /** Requests now in flight. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Asks `device` for a snapshot and waits for it.
   * @throws {MediaError} "timeout" when no answer comes in time, "bad_message"/"too_large" when
   * the answer is unusable; "unavailable" when the requester is closed.
   */
  request(
    device: string,
    params: NonNullable<MediaRequest["params"]> = {},
  ): Promise<ReceivedSnapshot> {
    const requestId = `snap_${this.#nonce}_${++this.#sequence}`;
    const timeoutMs = this.#options.timeoutMs;
    return new Promise<ReceivedSnapshot>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(
          new MediaError(
            "timeout",
            `device ${
              JSON.stringify(device)
            } sent no snapshot for request ${requestId} within ${timeoutMs} ms (MEDIA_SNAPSHOT_TIMEOUT_MS)`,
          ),
        );
      }, timeoutMs);
      this.#pending.set(requestId, {
        device,
        startedAt: performance.now(),
        resolve,
        reject,
        timer,
      });
      this.#link.publish({ kind: "device_media_request", device }, {
        request_type: "snapshot",
        request_id: requestId,
        params,
      }).catch((error) => this.#fail(requestId, error as Error));
    });
  }

  /**
   * Hands a snapshot received from `device` to the request it answers.
   * @throws {MediaError} "unknown_request" when no request of this device is waiting for its
   * request_id (never sent, already timed out, or sent to another device); "too_large".
   */
  accept(device: string, snapshot: SnapshotResponse): ReceivedSnapshot {
    const pending = this.#pending.get(snapshot.request_id);
    if (pending === undefined || pending.device !== device) {
      throw new MediaError(
        "unknown_request",
        `snapshot request_id ${JSON.stringify(snapshot.request_id)} from device ${
          JSON.stringify(device)
        } answers no waiting request (never sent, timed out, or meant for another device)`,
      );
    }
    this.#pending.delete(snapshot.request_id);
    clearTimeout(pending.timer);
    let image: Uint8Array;
    try {
      image = decodeMedia(snapshot.data, this.#options.maxBytes, "snapshot");
    } catch (error) {
      pending.reject(error as Error);
      throw error;
    }
    const received = {
      device,
      snapshot,
      image,
      roundTripMs: performance.now() - pending.startedAt,
    };
    pending.resolve(received);
    return received;
  }

  /** Fails the request `requestId` (a device reported an error for it); false if none waits. */
  fail(device: string, requestId: string, message: string): boolean {
    const pending = this.#pending.get(requestId);
    if (pending === undefined || pending.device !== device) return false;
    this.#fail(
      requestId,
      new MediaError("unavailable", `device ${JSON.stringify(device)}: ${message}`),
    );
    return true;
  }

  /** Rejects every waiting request. */
  close(): void {
    for (const id of [...this.#pending.keys()]) {
      this.#fail(id, new MediaError("unavailable", "the media service is shutting down"));
    }
  }

  #fail(requestId: string, error: Error): void {
    const pending = this.#pending.get(requestId);
    if (pending === undefined) return;
    this.#pending.delete(requestId);
    clearTimeout(pending.timer);
    pending.reject(error);
  }
}
