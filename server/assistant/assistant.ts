/**
 * The orchestrator of spec 6.2: takes what the user said on a device and streams back what to
 * say. The built-in engine answers what it recognizes (fast, offline, deterministic); anything
 * else goes to the LLM when LLM_URL is set (with the same tools as function calls and the
 * device's recent turns as context), or gets a polite fallback. Due timers are spoken first.
 *
 * Turns are stored by the caller once their audio is known ({@link Assistant.record}), so the
 * memory holds the real timings and, after a barge-in, how much of the reply was heard.
 */
import type { DeviceCommand } from "../../shared/messages.ts";
import type { Logger } from "../../shared/log.ts";
import { FALLBACK_REPLY, type Intent, matchIntents } from "./builtin_engine.ts";
import { type ChatMessage, type LlmClient, LlmError } from "./llm_client.ts";
import type { ConversationMemory, NewTurn, TurnRecord } from "./memory.ts";
import { announcementText, type TimerService } from "./timers.ts";
import { StagedEffects } from "./staged_effects.ts";
import { isToolName, runTool, type ToolContext, ToolError, TOOLS } from "./tools.ts";

/** Past turns given to the LLM as context: enough for follow-ups, short enough to stay fast. */
export const HISTORY_TURNS = 6;
/** Tool-call rounds per turn before the model must answer in words. */
export const MAX_TOOL_ROUNDS = 3;
/** Texts waiting to be spoken per device (alerts, recording answers); the oldest drop first. */
export const MAX_PENDING_SPEECH = 5;
/** Said when the LLM fails before it said anything. */
export const LLM_FAILURE_REPLY = "Sorry, I couldn't reach my language model. Please try again.";

/** Options of {@link Assistant}. */
export interface AssistantOptions {
  memory: ConversationMemory;
  timers: TimerService;
  publishCommand: (device: string, command: DeviceCommand) => void;
  /** The LLM for what the built-in engine does not recognize; none → polite fallback. */
  llm?: LlmClient;
  now?: () => Date;
  log?: Logger;
  /**
   * Answers questions that need eyes (server/media: "is anyone at the front door?"); returns
   * undefined when `text` is not one. Asked after the built-in intents, before the LLM.
   */
  visual?: (device: string, text: string) => Promise<string> | undefined;
}

/** The part of a reply the user heard, when they cut it off after `playedMs`. */
export function heardReply(turn: TurnRecord): string {
  if (!turn.interrupted || turn.playedMs === null) return turn.reply;
  if (turn.replyAudioMs === null || turn.replyAudioMs <= 0) return turn.reply;
  const share = Math.min(1, turn.playedMs / turn.replyAudioMs);
  if (share >= 1) return turn.reply;
  const words = turn.reply.split(/\s+/);
  const heard = words.slice(0, Math.floor(words.length * share)).join(" ");
  return `${heard}… (interrupted)`;
}

/** Answers transcripts for devices, remembering every turn. */
export class Assistant {
  readonly memory: ConversationMemory;
  readonly timers: TimerService;
  #publish: (device: string, command: DeviceCommand) => void;
  #llm: LlmClient | undefined;
  #now: () => Date;
  #log: Logger | undefined;
  #visual: AssistantOptions["visual"];
  #pendingSpeech = new Map<string, string[]>();

  constructor(options: AssistantOptions) {
    this.memory = options.memory;
    this.timers = options.timers;
    this.#publish = options.publishCommand;
    this.#llm = options.llm;
    this.#now = options.now ?? (() => new Date());
    this.#log = options.log;
    this.#visual = options.visual;
  }

  /**
   * Queues `text` to be said on `device`'s next pull (the empty turn the gateway sends after an
   * `announce` command, as for timers): an alert, or a recording's answer.
   */
  say(device: string, text: string): void {
    const queue = this.#pendingSpeech.get(device) ?? [];
    queue.push(text);
    if (queue.length > MAX_PENDING_SPEECH) queue.shift();
    this.#pendingSpeech.set(device, queue);
  }

  /**
   * Streams the reply to `transcript` as text pieces (whole sentences from the built-in engine,
   * tokens from the LLM). An empty transcript yields nothing, unless a timer is waiting to be
   * announced: then it yields the announcement, so a gateway can fetch it with an empty turn.
   * A request that joins several commands ("turn on the kitchen lights and set a timer for five
   * minutes") runs every one (`matchIntents`). With `effects` (a turn that may still be
   * continued, {@link stage}) nothing is done yet: timers, device commands and announcements
   * are staged there and happen at its commit.
   */
  async *respond(
    device: string,
    transcript: string,
    options: { signal?: AbortSignal; effects?: StagedEffects } = {},
  ): AsyncGenerator<string> {
    const effects = options.effects;
    const text = transcript.trim();
    // Queued speech only on a pull (an empty turn): a voice message's own turn must not start
    // with the answer to the previous one.
    const queued = text.length === 0 ? this.#pendingSpeech.get(device) ?? [] : [];
    if (text.length === 0) this.#pendingSpeech.delete(device);
    // A staged turn marks the due timers it speaks as announced only at its commit.
    const due = effects
      ? this.timers.dueAnnouncements(device)
      : this.timers.takeAnnouncements(device);
    effects?.announced(device, due);
    const announcements = [...queued, ...due.map(announcementText)];
    if (announcements.length > 0) yield announcements.join(" ") + " ";
    if (text.length === 0) return;
    const context = effects?.context ?? this.#context(device);
    const intents = matchIntents(text);
    if (intents.length > 0) {
      yield intents.map((intent) => this.#answer(intent, context)).join(" ");
      return;
    }
    const seen = this.#visual?.(device, text);
    if (seen !== undefined) {
      yield await seen;
      return;
    }
    if (this.#llm === undefined) {
      yield FALLBACK_REPLY;
      return;
    }
    yield* this.#converse(this.#llm, text, context, options.signal);
  }

  /** A turn's effects, staged against this assistant's real tools until applied. */
  stage(device: string): StagedEffects {
    return new StagedEffects({
      context: this.#context(device),
      markAnnounced: (ids) => this.timers.markAnnounced(ids),
    });
  }

  #context(device: string): ToolContext {
    return {
      device,
      now: this.#now(),
      memory: this.memory,
      timers: this.timers,
      publishCommand: this.#publish,
    };
  }

  /** The built-in engine's answer to one intent (a tool refusing says why). */
  #answer(intent: Intent, context: ToolContext): string {
    if ("text" in intent) return intent.text;
    try {
      return runTool(intent, context).text;
    } catch (error) {
      if (!(error instanceof ToolError)) throw error;
      this.#log?.warn("tool refused", {
        device: context.device,
        tool: intent.tool,
        error: error.message,
      });
      return `Sorry, I couldn't do that: ${error.message}.`;
    }
  }

  /** Stores a finished (or cancelled) turn; returns its id for {@link markInterrupted}. */
  record(turn: NewTurn): number {
    return this.memory.addTurn(turn);
  }

  /** Records that only `playedMs` of the reply of turn `id` was heard. */
  markInterrupted(id: number, playedMs: number): boolean {
    return this.memory.markInterrupted(id, playedMs);
  }

  async *#converse(
    llm: LlmClient,
    text: string,
    context: ToolContext,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<string> {
    const messages: ChatMessage[] = [
      {
        role: "system",
        content: "You are NAILA, a home voice assistant. Your words are spoken aloud: answer in " +
          "one to three short sentences, no lists, no markdown. Use the tools for time, date, " +
          `timers, devices and past conversations. The local time is ${context.now.toString()}. ` +
          `The user is speaking to the device "${context.device}".`,
      },
    ];
    for (const turn of this.memory.recent(context.device, HISTORY_TURNS)) {
      if (turn.transcript.length === 0) continue;
      messages.push({ role: "user", content: turn.transcript });
      messages.push({ role: "assistant", content: heardReply(turn) });
    }
    messages.push({ role: "user", content: text });
    let spoke = false;
    try {
      for (let round = 0; round < MAX_TOOL_ROUNDS; round++) {
        let calls: { id: string; name: string; arguments: string }[] = [];
        let content = "";
        for await (const event of llm.stream(messages, { tools: TOOLS, signal })) {
          if (event.type === "token") {
            content += event.text;
            spoke = true;
            yield event.text;
          } else if (event.type === "tool_calls") {
            calls = event.calls;
          }
        }
        if (calls.length === 0) return;
        messages.push({
          role: "assistant",
          content: content.length > 0 ? content : null,
          tool_calls: calls.map((call) => ({
            id: call.id,
            type: "function",
            function: { name: call.name, arguments: call.arguments },
          })),
        });
        for (const call of calls) {
          messages.push({
            role: "tool",
            tool_call_id: call.id,
            content: JSON.stringify(this.#callTool(call.name, call.arguments, context)),
          });
        }
      }
      this.#log?.warn("LLM kept calling tools", {
        device: context.device,
        rounds: MAX_TOOL_ROUNDS,
      });
    } catch (error) {
      if (!(error instanceof LlmError) || error.code === "cancelled") throw error;
      this.#log?.warn("LLM failed", {
        device: context.device,
        code: error.code,
        error: error.message,
      });
      if (!spoke) yield LLM_FAILURE_REPLY;
    }
  }

  #callTool(name: string, rawArguments: string, context: ToolContext): Record<string, unknown> {
    if (!isToolName(name)) return { error: `unknown tool ${JSON.stringify(name)}` };
    let args: unknown;
    try {
      args = rawArguments.trim().length === 0 ? {} : JSON.parse(rawArguments);
    } catch {
      return { error: `arguments are not JSON: ${rawArguments.slice(0, 80)}` };
    }
    if (args === null || typeof args !== "object" || Array.isArray(args)) {
      return { error: "arguments are not a JSON object" };
    }
    try {
      const result = runTool({ tool: name, args: args as Record<string, unknown> }, context);
      return { say: result.text, ...result.data };
    } catch (error) {
      if (error instanceof ToolError) return { error: error.message };
      throw error;
    }
  }
}
