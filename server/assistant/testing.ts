/**
 * A local HTTP server speaking the OpenAI chat-completions streaming wire format, for tests of
 * the LLM client and the assistant (no model needed). Each request is answered by the next
 * scripted response: text tokens and/or tool calls, sent as `data:` events, then `[DONE]`.
 * Also the real assistant on an in-memory store, for tests of what runs around it.
 */
import type { DeviceCommand } from "../../shared/messages.ts";
import { Assistant } from "./assistant.ts";
import { ConversationMemory } from "./memory.ts";
import { TimerService } from "./timers.ts";

/** The real assistant on an in-memory SQLite memory, and what it did. */
export interface TestAssistant {
  assistant: Assistant;
  memory: ConversationMemory;
  timers: TimerService;
  /** Device commands it published, in order. */
  commands: DeviceCommand[];
  /** Stops the timers and closes the memory. */
  close(): void;
}

/** A {@link TestAssistant}: no LLM, real clock, due timers ignored. */
export function testAssistant(): TestAssistant {
  const memory = ConversationMemory.open(":memory:");
  const timers = new TimerService(memory, { onDue: () => {} });
  const commands: DeviceCommand[] = [];
  const assistant = new Assistant({
    memory,
    timers,
    publishCommand: (_device, command) => commands.push(command),
  });
  return {
    assistant,
    memory,
    timers,
    commands,
    close: () => {
      timers.stop();
      memory.close();
    },
  };
}

/** One scripted answer. */
export interface FakeLlmResponse {
  /** Content pieces, one event each. */
  tokens?: string[];
  /** Tool calls; the arguments are sent in two pieces, as real servers split them. */
  toolCalls?: { id: string; name: string; arguments: string }[];
  /** Wait this long before answering (to test timeouts). */
  delayMs?: number;
  /** Wait this long before each token after the first (to test streaming). */
  tokenDelayMs?: number;
  /** Answer with this HTTP status and no stream. */
  status?: number;
}

/** A running fake LLM. */
export interface FakeLlm {
  /** Base URL ending in `/v1`. */
  url: string;
  /** Every request body received, parsed. */
  requests: Record<string, unknown>[];
  /** Authorization headers received. */
  authorizations: (string | null)[];
  /** `performance.now()` when each content token was sent, over all requests. */
  tokenSentAt: number[];
  close(): Promise<void>;
}

function chunk(delta: Record<string, unknown>, finish: string | null = null): string {
  const body = {
    id: "chatcmpl-test",
    object: "chat.completion.chunk",
    created: 1700000000,
    model: "fake",
    choices: [{ index: 0, delta, finish_reason: finish }],
  };
  return `data: ${JSON.stringify(body)}\n\n`;
}

/** Starts the fake on a free loopback port. */
export function startFakeLlm(script: FakeLlmResponse[]): FakeLlm {
  const requests: Record<string, unknown>[] = [];
  const authorizations: (string | null)[] = [];
  const tokenSentAt: number[] = [];
  let next = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    if (req.method !== "POST" || !new URL(req.url).pathname.endsWith("/v1/chat/completions")) {
      return new Response("not found", { status: 404 });
    }
    requests.push(await req.json());
    authorizations.push(req.headers.get("authorization"));
    const answer = script[next++] ?? { tokens: ["(no more scripted answers)"] };
    if (answer.status) return new Response("scripted failure", { status: answer.status });
    const encoder = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        try {
          if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
          controller.enqueue(encoder.encode(chunk({ role: "assistant", content: "" })));
          for (const [index, token] of (answer.tokens ?? []).entries()) {
            if (index > 0 && answer.tokenDelayMs) {
              await new Promise((resolve) => setTimeout(resolve, answer.tokenDelayMs));
            }
            tokenSentAt.push(performance.now());
            controller.enqueue(encoder.encode(chunk({ content: token })));
          }
          (answer.toolCalls ?? []).forEach((call, index) => {
            const half = Math.floor(call.arguments.length / 2);
            controller.enqueue(encoder.encode(chunk({
              tool_calls: [{
                index,
                id: call.id,
                type: "function",
                function: { name: call.name, arguments: call.arguments.slice(0, half) },
              }],
            })));
            controller.enqueue(encoder.encode(chunk({
              tool_calls: [{ index, function: { arguments: call.arguments.slice(half) } }],
            })));
          });
          const finish = answer.toolCalls?.length ? "tool_calls" : "stop";
          controller.enqueue(encoder.encode(chunk({}, finish)));
          controller.enqueue(encoder.encode("data: [DONE]\n\n"));
          controller.close();
        } catch {
          // The client went away (timeout or cancel).
        }
      },
    });
    return new Response(stream, { headers: { "content-type": "text/event-stream" } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/v1`,
    requests,
    authorizations,
    tokenSentAt,
    close: () => server.shutdown(),
  };
}
