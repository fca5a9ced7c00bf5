import assert from "node:assert/strict";
import { LlmClient, type LlmError, type LlmEvent, sseData } from "./llm_client.ts";
import { startFakeLlm } from "./testing.ts";

async function collect(stream: AsyncGenerator<LlmEvent>): Promise<LlmEvent[]> {
  const events: LlmEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

Deno.test("LlmClient streams content tokens in order", async () => {
  const fake = startFakeLlm([{ tokens: ["It's ", "a sunny ", "day."] }]);
  try {
    const llm = new LlmClient({ url: fake.url, model: "tiny", apiKey: "secret" });
    const events = await collect(llm.stream([{ role: "user", content: "Weather?" }]));
    assert.deepEqual(events, [
      { type: "token", text: "It's " },
      { type: "token", text: "a sunny " },
      { type: "token", text: "day." },
      { type: "done", finishReason: "stop" },
    ]);
    assert.equal(fake.requests[0].model, "tiny");
    assert.equal(fake.requests[0].stream, true);
    assert.deepEqual(fake.requests[0].messages, [{ role: "user", content: "Weather?" }]);
    assert.equal(fake.authorizations[0], "Bearer secret");
  } finally {
    await fake.close();
  }
});

Deno.test("LlmClient offers tools and assembles a tool call from its pieces", async () => {
  const fake = startFakeLlm([{
    toolCalls: [{ id: "call_1", name: "set_timer", arguments: '{"seconds":300,"label":"tea"}' }],
  }]);
  try {
    const llm = new LlmClient({ url: fake.url, model: "tiny" });
    const tools = [{ name: "set_timer", description: "d", parameters: { type: "object" } }];
    const events = await collect(llm.stream([{ role: "user", content: "tea timer" }], { tools }));
    assert.deepEqual(events, [
      {
        type: "tool_calls",
        calls: [{ id: "call_1", name: "set_timer", arguments: '{"seconds":300,"label":"tea"}' }],
      },
      { type: "done", finishReason: "tool_calls" },
    ]);
    assert.deepEqual(fake.requests[0].tools, [{ type: "function", function: tools[0] }]);
    assert.equal(fake.requests[0].tool_choice, "auto");
    assert.equal(fake.authorizations[0], null);
  } finally {
    await fake.close();
  }
});

Deno.test("LlmClient gives up after its timeout with a timeout error", async () => {
  const fake = startFakeLlm([{ tokens: ["late"], delayMs: 2000 }]);
  try {
    const llm = new LlmClient({ url: fake.url, model: "tiny", timeoutMs: 100 });
    const started = performance.now();
    await assert.rejects(collect(llm.stream([{ role: "user", content: "hi" }])), (e: LlmError) => {
      assert.equal(e.code, "timeout");
      return true;
    });
    assert.ok(performance.now() - started < 1500);
  } finally {
    await fake.close();
  }
});

Deno.test("LlmClient reports an HTTP error with its status", async () => {
  const fake = startFakeLlm([{ status: 503 }]);
  try {
    const llm = new LlmClient({ url: fake.url, model: "tiny" });
    await assert.rejects(collect(llm.stream([{ role: "user", content: "hi" }])), (e: LlmError) => {
      assert.equal(e.code, "http");
      assert.equal(e.status, 503);
      return true;
    });
  } finally {
    await fake.close();
  }
});

Deno.test("LlmClient accepts a full endpoint URL and refuses a non-http one", () => {
  const llm = new LlmClient({ url: "http://h:1/v1/chat/completions", model: "m" });
  assert.equal(llm.endpoint, "http://h:1/v1/chat/completions");
  assert.throws(() => new LlmClient({ url: "ftp://h/v1", model: "m" }), /LLM_URL "ftp:\/\/h\/v1"/);
});

Deno.test("sseData joins multi-line data, skips comments, accepts CRLF and split chunks", async () => {
  const text = ": keep-alive\r\ndata: a\r\ndata: b\r\n\r\nevent: x\ndata: c\n\n";
  const bytes = new TextEncoder().encode(text);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 3) controller.enqueue(bytes.subarray(i, i + 3));
      controller.close();
    },
  });
  const out: string[] = [];
  for await (const data of sseData(body)) out.push(data);
  assert.deepEqual(out, ["a\nb", "c"]);
});
