import assert from "node:assert/strict";
import { LlmClient, LlmError, type LlmEvent, parseChunk, sseData } from "./llm_client.ts";
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

Deno.test("LlmClient gives up after its timeout, before a slower server answers", async () => {
  const fake = startFakeLlm([{ tokens: ["late"], delayMs: 2000 }]);
  try {
    const llm = new LlmClient({ url: fake.url, model: "tiny", timeoutMs: 100 });
    await assert.rejects(collect(llm.stream([{ role: "user", content: "hi" }])), (e: LlmError) => {
      assert.equal(e.code, "timeout");
      assert.equal(e.message, "LLM did not finish within 100 ms");
      return true;
    });
    // The client's 100 ms timer starts before the server's 2 s delay, so it always fires first:
    // the request was given up while the server still had sent nothing.
    assert.equal(fake.requests.length, 1);
    assert.deepEqual(fake.tokenSentAt, []);
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

function streamOf(text: string, chunkChars = 3): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += chunkChars) {
        controller.enqueue(bytes.subarray(i, i + chunkChars));
      }
      controller.close();
    },
  });
}

Deno.test("sseData yields a last event the server did not end with a blank line", async () => {
  const out: string[] = [];
  for await (const data of sseData(streamOf("data: a\n\ndata: last"))) out.push(data);
  assert.deepEqual(out, ["a", "last"]);
});

Deno.test("sseData refuses a 2 MiB event (over the 1 MiB bound) with a protocol error", async () => {
  const huge = `data: ${"x".repeat(2 * 1024 * 1024)}\n\n`;
  await assert.rejects(
    async () => {
      for await (const _ of sseData(streamOf(huge, 64 * 1024))) {
        // Nothing is yielded before the limit.
      }
    },
    (e: LlmError) =>
      e instanceof LlmError && e.code === "protocol" && /exceeds 1048576/.test(e.message),
  );
});

Deno.test("parseChunk accepts real servers' extra fields and nulls", () => {
  const chunk = parseChunk(JSON.stringify({
    id: "x",
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta: { role: "assistant", content: null }, finish_reason: null }],
    usage: null,
  }));
  assert.equal(chunk.choices?.[0].delta?.content, null);
});

Deno.test("parseChunk names the field that is wrong", () => {
  assert.throws(
    () => parseChunk('{"choices":[{"delta":{"content":42}}]}'),
    (e: LlmError) =>
      e instanceof LlmError && e.code === "protocol" &&
      e.message.startsWith("LLM chunk field choices.0.delta.content is invalid:"),
  );
  assert.throws(
    () => parseChunk('{"choices":[{"delta":{"tool_calls":[{"function":{"name":7}}]}}]}'),
    /LLM chunk field choices\.0\.delta\.tool_calls\.0\.function\.name is invalid/,
  );
  assert.throws(() => parseChunk("[1,2]"), /LLM chunk field \(the chunk\) is invalid/);
  assert.throws(() => parseChunk("{nope"), /LLM event is not JSON: \{nope/);
});
