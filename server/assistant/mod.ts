/**
 * The assistant: conversation memory, timers, tools, the offline engine and the LLM client.
 * `createAssistant` wires them for the server.
 */
import type { Logger } from "../../shared/log.ts";
import type { DeviceCommand } from "../../shared/messages.ts";
import { Assistant } from "./assistant.ts";
import { LlmClient } from "./llm_client.ts";
import { ConversationMemory, type TimerRecord } from "./memory.ts";
import { TimerService } from "./timers.ts";

export { Assistant, heardReply, LLM_FAILURE_REPLY } from "./assistant.ts";
export { FALLBACK_REPLY, matchIntent } from "./builtin_engine.ts";
export { LlmClient, LlmError } from "./llm_client.ts";
export { ConversationMemory, type TimerRecord, type TurnRecord } from "./memory.ts";
export { announceCommand, announcementText, TimerService } from "./timers.ts";
export { TOOLS } from "./tools.ts";

/** Options of {@link createAssistant}. */
export interface CreateAssistantOptions {
  /** SQLite file (or `:memory:`). */
  databasePath: string;
  publishCommand: (device: string, command: DeviceCommand) => void;
  /** Called when a timer is due (after it is stored as due). */
  onTimerDue: (timer: TimerRecord) => void;
  llm?: { url: string; model: string; apiKey?: string; timeoutMs?: number };
  log?: Logger;
  /** Visual questions (server/media), asked after the built-in intents. */
  visual?: (device: string, text: string) => Promise<string> | undefined;
}

/** Opens the memory, arms stored timers and returns the assistant; `close()` undoes it. */
export function createAssistant(
  options: CreateAssistantOptions,
): Assistant & { close(): void } {
  const memory = ConversationMemory.open(options.databasePath);
  const timers = new TimerService(memory, { onDue: options.onTimerDue });
  const llm = options.llm ? new LlmClient(options.llm) : undefined;
  const assistant = new Assistant({
    memory,
    timers,
    publishCommand: options.publishCommand,
    llm,
    log: options.log,
    visual: options.visual,
  });
  timers.start();
  return Object.assign(assistant, {
    close() {
      timers.stop();
      memory.close();
    },
  });
}
