/**
 * The gateway's link to its AI server(s) (spec 4.4, docs/scaling.md), made once at start by
 * gateway.ts: an `AiServers` with every `AI_SERVER_HOST` entry (one, usually). How it proves
 * itself (docs/protocol.md "Authentication"): AI_SERVER_SECRET(_FILE) if given, else the data
 * dir's secret, read at each connect.
 *
 * @example
 * ```ts
 * const ai = createAiLink(config, { log, aiLog });
 * ai.start();
 * ```
 */
import type { Config } from "../shared/config.ts";
import type { Logger } from "../shared/log.ts";
import { audioSecretPath, readAudioSecret } from "../shared/audio_auth.ts";
import { AiServers, type AiServersOptions } from "./ai_servers.ts";
import type { GatewayConfig } from "./config.ts";

/** Options of {@link createAiLink}. */
export interface AiLinkOptions {
  /** AI_SERVER_AUTH / _SECRET / _TLS; default: authenticate with the data dir's secret. */
  aiServer?: GatewayConfig["aiServer"];
  /** AI_SERVER_TIMEOUT_MS: response timeout (spec 4.4: 10 s). */
  responseTimeoutMs?: number;
  /** The gateway's log (a missing or unreadable secret). */
  log: Logger;
  /** The link's own log. */
  aiLog: Logger;
}

/** The link (not yet started) to `config.aiServer`'s server(s). */
export function createAiLink(config: Config, options: AiLinkOptions): AiServers {
  return new AiServers({
    servers: config.aiServer.servers ?? [config.aiServer],
    protocol: config.aiServer.protocol,
    log: options.aiLog,
    responseTimeoutMs: options.responseTimeoutMs,
    access: aiServerAccess(config, options.aiServer ?? { auth: true }, options.log),
  });
}

/**
 * The AI connection's secret and TLS: AI_SERVER_SECRET(_FILE) if given, else the data dir's
 * secret read at each connect (on one machine the server may create it after the gateway
 * starts). Warns once at start when there is none to be found.
 */
export function aiServerAccess(
  config: Config,
  access: GatewayConfig["aiServer"],
  log: Logger,
): AiServersOptions["access"] {
  if (!access.auth) return { tls: access.tls };
  if (access.secret !== undefined) return { secret: access.secret, tls: access.tls };
  const fromDataDir = () => {
    try {
      return readAudioSecret(config.dataDir);
    } catch (error) {
      log.error("audio-socket secret unreadable", { error: (error as Error).message });
      return undefined;
    }
  };
  if (fromDataDir() === undefined && config.aiServer.protocol === "v2") {
    log.warn(
      `no audio-socket secret yet (AI_SERVER_SECRET, AI_SERVER_SECRET_FILE or ` +
        `${audioSecretPath(config.dataDir)}): the AI server refuses the gateway until one is found`,
    );
  }
  return { secret: fromDataDir, tls: access.tls };
}
