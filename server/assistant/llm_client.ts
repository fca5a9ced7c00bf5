/**
 * A client for OpenAI-compatible chat completions (llama.cpp's `llama-server`, Ollama, vLLM, ...):
 * `POST {LLM_URL}/chat/completions` with `stream: true`, read as server-sent events, content
 * tokens yielded as they arrive, tool calls (function calling) assembled from their deltas. The
 * whole request is bounded by a timeout and by the turn's cancel signal.
 *
 * Wire format (OpenAI "Create chat completion", streaming): each event is `data: <json>` with
 * `choices[0].delta.content` (text) or `choices[0].delta.tool_calls[i]` (`index`, first `id`
 * and `function.name`, then `function.arguments` in pieces), `finish_reason` on the last chunk,
 * and `data: [DONE]` at the end. Events are split by npm:eventsource-parser; each chunk is checked
 * against {@link LlmChunk} (zod) before it is used.
 *
 * @example
 * ```ts
 * const llm = new LlmClient({ url: "http://127.0.0.1:8080/v1", model: "llama3.2" });
 * for await (const event of llm.stream([{ role: "user", content: "Hi" }])) {
 *   if (event.type === "token") console.log(event.text);
 * }
 * ```
 */

import { createParser } from "eventsource-parser";
import { z } from "zod";

/** Default bound on one request, first byte to `[DONE]`: a home LLM on CPU answers in seconds. */
export const DEFAULT_LLM_TIMEOUT_MS = 20_000;
/** Longest SSE event accepted; a chunk is a few hundred bytes, so this only stops a runaway peer. */
const MAX_SSE_EVENT_CHARS = 1024 * 1024;
/** Longest tool-call arguments accepted (JSON text). */
const MAX_TOOL_ARGUMENT_CHARS = 16 * 1024;
/** At most this many tool calls in one response. */
const MAX_TOOL_CALLS = 8;

/** A function the model asked to call. */
export interface ToolCall {
  id: string;
  name: string;
  /** JSON text, as the model wrote it. */
  arguments: string;
}

/** One chat message (the subset the assistant uses). */
export type ChatMessage =
  | { role: "system" | "user"; content: string }
  | { role: "assistant"; content: string | null; tool_calls?: WireToolCall[] }
  | { role: "tool"; tool_call_id: string; content: string };

/** A tool call as the wire carries it in an assistant message. */
export interface WireToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** A function offered to the model. */
export interface FunctionTool {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

/** What {@link LlmClient.stream} yields. */
export type LlmEvent =
  | { type: "token"; text: string }
  | { type: "tool_calls"; calls: ToolCall[] }
  | { type: "done"; finishReason: string };

/** Why the LLM could not answer. */
export type LlmErrorCode = "http" | "timeout" | "cancelled" | "network" | "protocol";

/** The LLM request failed: `code`, and the field/value that was wrong where there is one. */
export class LlmError extends Error {
  override name = "LlmError";
  constructor(readonly code: LlmErrorCode, message: string, readonly status?: number) {
    super(message);
  }
}

/** Options of {@link LlmClient}. */
export interface LlmClientOptions {
  /** Base URL ending in `/v1` (or the full `.../chat/completions` URL). */
  url: string;
  model: string;
  apiKey?: string;
  timeoutMs?: number;
  /** Sampling temperature; low by default so answers are stable. */
  temperature?: number;
}

/** Streams chat completions from an OpenAI-compatible server. */
export class LlmClient {
  readonly endpoint: string;
  readonly model: string;
  readonly timeoutMs: number;
  #apiKey: string | undefined;
  #temperature: number;

  constructor(options: LlmClientOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new RangeError(`LLM_URL ${JSON.stringify(options.url)} is not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new RangeError(`LLM_URL ${JSON.stringify(options.url)} is not http(s)`);
    }
    const base = url.href.replace(/\/+$/, "");
    this.endpoint = base.endsWith("/chat/completions") ? base : `${base}/chat/completions`;
    if (options.model.length === 0) throw new RangeError("LLM_MODEL is empty");
    this.model = options.model;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_LLM_TIMEOUT_MS;
    this.#apiKey = options.apiKey;
    this.#temperature = options.temperature ?? 0.2;
  }

  /** One streamed completion: tokens, then the tool calls (if any), then done. */
  async *stream(
    messages: ChatMessage[],
    options: { tools?: readonly FunctionTool[]; signal?: AbortSignal } = {},
  ): AsyncGenerator<LlmEvent> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const body: Record<string, unknown> = {
      model: this.model,
      messages,
      stream: true,
      temperature: this.#temperature,
    };
    if (options.tools && options.tools.length > 0) {
      body.tools = options.tools.map((tool) => ({ type: "function", function: tool }));
      body.tool_choice = "auto";
    }
    const headers: Record<string, string> = {
      "content-type": "application/json",
      accept: "text/event-stream",
    };
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    const failure = (error: unknown): LlmError => {
      if (error instanceof LlmError) return error;
      if (timeout.aborted) {
        return new LlmError("timeout", `LLM did not finish within ${this.timeoutMs} ms`);
      }
      if (signal.aborted) return new LlmError("cancelled", "LLM request was cancelled");
      return new LlmError(
        "network",
        `LLM request to ${this.endpoint} failed: ${(error as Error).message}`,
      );
    };
    let response: Response;
    try {
      response = await fetch(this.endpoint, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
        signal,
      });
    } catch (error) {
      throw failure(error);
    }
    if (!response.ok || response.body === null) {
      const text = (await response.text().catch(() => "")).slice(0, 200);
      throw new LlmError("http", `LLM answered HTTP ${response.status}: ${text}`, response.status);
    }
    const calls: { id: string; name: string; arguments: string }[] = [];
    let finishReason = "stop";
    try {
      for await (const data of sseData(response.body)) {
        if (data === "[DONE]") break;
        const choice = parseChunk(data).choices?.[0];
        if (!choice) continue;
        const delta = choice.delta ?? {};
        if (typeof delta.content === "string" && delta.content.length > 0) {
          yield { type: "token", text: delta.content };
        }
        for (const part of delta.tool_calls ?? []) addToolCallDelta(calls, part);
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
    } catch (error) {
      throw failure(error);
    } finally {
      // Stop the server generating when we stop reading (cancel, error, early return).
      await response.body.cancel().catch(() => {});
    }
    if (calls.length > 0) yield { type: "tool_calls", calls };
    yield { type: "done", finishReason };
  }
}

const ToolCallDelta = z.object({
  index: z.number().optional(),
  id: z.string().nullish(),
  function: z.object({ name: z.string().nullish(), arguments: z.string().nullish() }).nullish(),
});
type ToolCallDelta = z.infer<typeof ToolCallDelta>;

/**
 * One streamed chat-completion chunk, the fields NAILA reads (OpenAI "chat completion chunk");
 * other fields (`id`, `role`, `usage`, ...) are allowed and ignored.
 */
export const LlmChunk = z.object({
  choices: z.array(z.object({
    delta: z.object({
      content: z.string().nullish(),
      tool_calls: z.array(ToolCallDelta).nullish(),
    }).nullish(),
    finish_reason: z.string().nullish(),
  })).nullish(),
});
export type LlmChunk = z.infer<typeof LlmChunk>;

/** Parses and checks one event's data; a `protocol` {@link LlmError} names what was wrong. */
export function parseChunk(data: string): LlmChunk {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    throw new LlmError("protocol", `LLM event is not JSON: ${data.slice(0, 80)}`);
  }
  const result = LlmChunk.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue.path.length > 0 ? issue.path.join(".") : "(the chunk)";
    throw new LlmError(
      "protocol",
      `LLM chunk field ${path} is invalid: ${issue.message} (chunk ${data.slice(0, 80)})`,
    );
  }
  return result.data;
}

function addToolCallDelta(calls: ToolCall[], part: ToolCallDelta): void {
  const index = part.index ?? 0;
  if (!Number.isInteger(index) || index < 0 || index >= MAX_TOOL_CALLS) {
    throw new LlmError("protocol", `tool call index ${index} is not 0..${MAX_TOOL_CALLS - 1}`);
  }
  const call = calls[index] ??= { id: "", name: "", arguments: "" };
  if (part.id) call.id = part.id;
  if (part.function?.name) call.name += part.function.name;
  if (part.function?.arguments) call.arguments += part.function.arguments;
  if (call.arguments.length > MAX_TOOL_ARGUMENT_CHARS) {
    throw new LlmError(
      "protocol",
      `tool call ${call.name} arguments exceed ${MAX_TOOL_ARGUMENT_CHARS} characters`,
    );
  }
}

/**
 * The `data` of each server-sent event (fields joined by newlines, comments and other fields
 * skipped), split by npm:eventsource-parser. An event still open when the stream ends is
 * yielded too. Throws a `protocol` {@link LlmError} when one event exceeds 1 MiB.
 */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const events: string[] = [];
  let overflow = false;
  const parser = createParser({
    maxBufferSize: MAX_SSE_EVENT_CHARS,
    onEvent: (event) => events.push(event.data),
    // Unknown fields and a bad `retry` are ignored (the SSE spec); only an overflow is fatal.
    onError: (error) => overflow ||= error.type === "max-buffer-size-exceeded",
  });
  const check = () => {
    if (overflow) {
      throw new LlmError("protocol", `SSE event exceeds ${MAX_SSE_EVENT_CHARS} characters`);
    }
  };
  for await (const text of body.pipeThrough(new TextDecoderStream())) {
    parser.feed(text);
    check();
    yield* events.splice(0);
  }
  // Ends a last event the server did not close with a blank line.
  parser.feed("\n\n");
  check();
  yield* events.splice(0);
}
