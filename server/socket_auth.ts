/**
 * The audio socket's authentication step for v2 (docs/protocol.md "Authentication", spec 17.2):
 * sits in front of the v2 turn table and lets nothing but the `hello` and the `auth` through
 * until the gateway proved the shared secret with HMAC-SHA256 over both sides' nonces
 * (shared/audio_auth.ts). A wrong or missing proof gets an `auth_failed` / `auth_required` error
 * and the connection closes; nothing else is answered, so an unauthenticated client gets no
 * transcript, no turn and no reply.
 */
import {
  gatewayProof,
  newNonce,
  proofMatches,
  secretProblem,
  serverProof,
} from "../shared/audio_auth.ts";
import type { Decoded } from "../shared/frame_codec.ts";
import type { ConnectionLink, SocketProtocol } from "./socket_link.ts";

/** A peer this long without authenticating is closed: a LAN round trip takes milliseconds. */
export const DEFAULT_AUTH_TIMEOUT_MS = 3_000;

/** Where the secret comes from, for error messages a gateway's operator can act on. */
const SECRET_HINT =
  "the gateway's AI_SERVER_SECRET (or AI_SERVER_SECRET_FILE) must equal the server's NAILA_DATA_DIR/secrets/audio_socket_secret";

/** What the gate tells its connection. */
export interface AuthGateEvents {
  /** The peer proved the secret: turns may flow, and the connection holds a full slot. */
  authenticated(): void;
  /** A security event for the audit log (failed authentication, refused message). */
  audit(event: string, detail: string): void;
}

/** v2 behind authentication; see the module doc. */
export class V2AuthGate implements SocketProtocol {
  readonly pinged: boolean;
  #link: ConnectionLink;
  #inner: SocketProtocol;
  #secret: string;
  #events: AuthGateEvents;
  #serverNonce = newNonce();
  #gatewayNonce: string | undefined;
  #authenticated = false;

  /** Throws a TypeError when `secret` is not a usable secret (too short, white space). */
  constructor(link: ConnectionLink, inner: SocketProtocol, secret: string, events: AuthGateEvents) {
    const problem = secretProblem(secret);
    if (problem !== undefined) throw new TypeError(`audio-socket secret ${problem}`);
    this.#link = link;
    this.#inner = inner;
    this.#secret = secret;
    this.#events = events;
    this.pinged = inner.pinged;
  }

  get authenticated(): boolean {
    return this.#authenticated;
  }

  /** The server hello's `nonce` and `proof` (once the gateway's hello gave its nonce). */
  helloFields(): { nonce: string; proof?: string } {
    if (this.#gatewayNonce === undefined) return { nonce: this.#serverNonce };
    return {
      nonce: this.#serverNonce,
      proof: serverProof(this.#secret, this.#gatewayNonce, this.#serverNonce),
    };
  }

  receive(item: Decoded): void {
    if (this.#authenticated) return this.#inner.receive(item);
    if (item.version !== 2) throw new Error("v1 frame on a v2 connection");
    const message = item.message;
    if (message.type === "hello" && this.#gatewayNonce === undefined) {
      if (message.nonce === undefined) {
        this.#refuse(
          "auth_required",
          `this server requires authentication: the hello must carry a nonce (${SECRET_HINT})`,
        );
        return;
      }
      this.#gatewayNonce = message.nonce;
      // The turn table answers with the server's hello, which carries helloFields().
      this.#inner.receive(item);
      return;
    }
    if (message.type === "auth" && this.#gatewayNonce !== undefined) {
      const expected = gatewayProof(this.#secret, this.#serverNonce, this.#gatewayNonce);
      if (!proofMatches(expected, message.proof)) {
        this.#refuse(
          "auth_failed",
          `auth proof does not match the server's secret: ${SECRET_HINT}`,
        );
        return;
      }
      this.#authenticated = true;
      this.#events.authenticated();
      return;
    }
    this.#refuse(
      "auth_required",
      `${message.type} before authentication: send hello (with a nonce), then auth`,
    );
  }

  fail(code: string, message: string): void {
    this.#inner.fail(code, message);
  }

  stop(reason: string): void {
    this.#inner.stop(reason);
  }

  #refuse(code: string, message: string): void {
    this.#events.audit(code, message);
    this.#inner.fail(code, message);
  }
}
