import assert from "node:assert/strict";
import { createLogger } from "../shared/log.ts";
import { type DeviceEvent, MAX_TEXT_CHARS } from "../shared/messages.ts";
import { ConversationEvents, turnEvent } from "./conversation_events.ts";
import type { ConversationTurn, TurnRecord } from "./conversation_parts.ts";

const log = createLogger("test.conversation_events", { level: "error" });

function events() {
  const published: DeviceEvent[] = [];
  const reporter = new ConversationEvents({
    device: "kitchen",
    sessionId: "s1",
    publish: (event) => published.push(event),
    log,
  });
  return { reporter, published };
}

/** A turn record with the given times (ms); the turn only needs its id and end time here. */
function record(fields: Partial<TurnRecord>, endWrittenAt?: number): TurnRecord {
  return {
    turn: { id: "t1", endWrittenAt } as ConversationTurn,
    local: "c1",
    startedAt: 0,
    replyEnded: true,
    audioQueued: true,
    ...fields,
  };
}

Deno.test("a state is published once per change, with its turn and session; waiting every time", () => {
  const { reporter, published } = events();
  assert.equal(reporter.state, "listening");
  reporter.setState("listening");
  assert.equal(published.length, 0, "no change, no event");
  reporter.setState("user_speaking", "t1");
  reporter.setState("user_speaking", "t1");
  assert.equal(published.length, 1);
  assert.equal(reporter.state, "user_speaking");
  const event = published[0] as Extract<DeviceEvent, { type: "state" }>;
  assert.equal(event.state, "user_speaking");
  assert.equal(event.turn, "t1");
  assert.equal(event.session_id, "s1");
  reporter.queue("t1", "queued", 2, 1234.6);
  reporter.queue("t1", "queued", 1, 400.2);
  assert.deepEqual(
    published.slice(1).map((e) => {
      const { position, wait_ms, state } = e as Extract<DeviceEvent, { type: "state" }> & {
        position?: number;
        wait_ms?: number;
      };
      return { state, position, wait_ms };
    }),
    [
      { state: "waiting", position: 2, wait_ms: 1235 },
      { state: "waiting", position: 1, wait_ms: 400 },
    ],
  );
  reporter.queue("t1", "running");
  assert.equal(reporter.state, "thinking");
  assert.equal(published.length, 4);
});

Deno.test("interrupted carries the turn and the ms heard, rounded", () => {
  const { reporter, published } = events();
  reporter.interrupted("t7", 1234.56);
  const event = published[0] as Extract<DeviceEvent, { type: "interrupted" }>;
  assert.equal(event.type, "interrupted");
  assert.equal(event.turn, "t7");
  assert.equal(event.played_ms, 1235);
  assert.equal(event.session_id, "s1");
});

Deno.test("a timeout is a timeout event; any other failure an error event naming the reason", () => {
  const { reporter, published } = events();
  reporter.failed("t1", "timeout", "no response within 10000 ms");
  reporter.failed("t2", "server_error", "busy");
  assert.equal(published[0].type, "timeout");
  assert.equal((published[0] as { message: string }).message, "no response within 10000 ms");
  assert.equal(published[1].type, "error");
  assert.equal((published[1] as { message: string }).message, "server_error: busy");
  assert.equal((published[1] as { turn?: string }).turn, "t2");
});

Deno.test("the turn event's latencies: end detection, first reply packet, server stages, transport, queue wait", () => {
  const event = turnEvent(
    record({
      lastSpeechAt: 1000,
      endDetectedAt: 1300,
      firstAudioAt: 2100,
      firstPacketAt: 2150,
      runningAt: 1500,
      stages: { queue_ms: 200, first_audio_ms: 500, stt_ms: 120, bad: -1, nan: NaN },
      transcript: "what time is it",
      reply: "x".repeat(MAX_TEXT_CHARS + 10),
    }, 1310),
    987.4,
    "s1",
  ) as Extract<DeviceEvent, { type: "turn" }>;
  assert.equal(event.turn, "t1");
  assert.equal(event.played_ms, 987);
  assert.deepEqual(event.latency_ms, {
    end_detect_ms: 300,
    first_reply_packet_ms: 1150,
    queue_ms: 200,
    first_audio_ms: 500,
    stt_ms: 120,
    // 2100 − 1310 − 200 − 500: the sockets and decoding, no clock offset.
    transport_ms: 90,
    queue_wait_ms: 190,
  });
  assert.equal(event.transcript, "what time is it");
  assert.equal(event.reply!.length, MAX_TEXT_CHARS);
});

Deno.test("a turn event without times or stages has no latencies; transport never goes negative", () => {
  assert.deepEqual(
    (turnEvent(record({}), 0, "s1") as Extract<DeviceEvent, { type: "turn" }>).latency_ms,
    {},
  );
  const event = turnEvent(
    record({ firstAudioAt: 1100, stages: { echo_ms: 400 } }, 1000),
    0,
    "s1",
  ) as Extract<DeviceEvent, { type: "turn" }>;
  assert.deepEqual(event.latency_ms, { echo_ms: 400, transport_ms: 0 });
});
