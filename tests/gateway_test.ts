/**
 * The real gateway in its own process (`gateway/main.ts`), a real mosquitto, werift device peers
 * speaking espeak-ng speech over real WebRTC on loopback, and the real AI server in its own
 * process with `PIPELINE=echo` (each reply is the utterance itself; v2, and v1), reached through
 * a recording relay (scripts/lib/ai_tap.ts) that says what the server got and sent. Everything
 * listens and gathers on 127.0.0.1 only; every process, port and temp dir is cleaned up by the
 * test that made it.
 */
import assert from "node:assert/strict";
import { DevicePeer } from "../device/peer.ts";
import { concatBytes, correlation, pcmToFloat32, resample } from "../shared/audio.ts";
import { delay } from "../shared/async.ts";
import type { DeviceEvent } from "../shared/messages.ts";
import { connectMqtt, type NailaMqtt } from "../shared/mqtt.ts";
import { topicFilter } from "../shared/topics.ts";
import { type AiTap, startAiTap, type TappedTurn } from "../scripts/lib/ai_tap.ts";
import { type GatewayProcess, startGatewayProcess } from "../scripts/lib/gateway_process.ts";
import { type Mosquitto, startMosquitto } from "../scripts/lib/mosquitto.ts";
import { speak } from "../scripts/lib/speech.ts";
import { type EchoServer, startEchoServer } from "./helpers/echo_server.ts";

/** How long a turn may take end to end on this 2-core machine. */
const TURN_TIMEOUT_MS = 15_000;
/** Opus at 32 kbps plus two resamplers keeps speech well above this correlation. */
const MIN_REPLY_CORRELATION = 0.9;
/** Longest lag searched when aligning the reply with what the server sent: Opus delay + slack. */
const MAX_ALIGN_LAG = 2400;
/** The device's playback rate: what a reply is compared at. */
const DEVICE_RATE = 48000;

/** Best correlation of `got` against `sent` over lags 0..MAX_ALIGN_LAG (48 kHz). */
function aligned(sent: Float32Array, got: Float32Array): number {
  let best = -1;
  for (let lag = 0; lag < MAX_ALIGN_LAG && lag < got.length; lag += 3) {
    const n = Math.min(sent.length, got.length - lag);
    const c = correlation(sent.subarray(0, n), got.subarray(lag, lag + n));
    if (c > best) best = c;
  }
  return best;
}

function isType<T extends DeviceEvent["type"]>(type: T) {
  return (e: DeviceEvent): e is Extract<DeviceEvent, { type: T }> => e.type === type;
}

interface World {
  broker: Mosquitto;
  server: EchoServer;
  /** Between the gateway and the server: what each sent. */
  tap: AiTap;
  gateway: GatewayProcess;
  watcher: NailaMqtt;
  seen: { topic: string; payload: string }[];
  devices: DevicePeer[];
}

async function world(env: Record<string, string>): Promise<World> {
  const broker = await startMosquitto();
  const server = await startEchoServer();
  const tap = await startAiTap(server.port, { keepReplyAudio: true });
  const watcher = await connectMqtt({ embedded: false, host: "127.0.0.1", port: broker.port }, {
    clientId: `watcher-${crypto.randomUUID().slice(0, 8)}`,
  });
  const seen: { topic: string; payload: string }[] = [];
  watcher.client.on("message", (topic: string, payload: Uint8Array) => {
    seen.push({ topic, payload: new TextDecoder().decode(payload) });
  });
  await watcher.subscribe(["naila/#"]);
  const gateway = await startGatewayProcess({
    MQTT_HOST: "127.0.0.1",
    MQTT_PORT: String(broker.port),
    AI_SERVER_PORT: String(tap.port),
    AI_SERVER_SECRET: server.secret,
    GATEWAY_METRICS_INTERVAL_MS: "500",
    ...env,
  });
  return { broker, server, tap, gateway, watcher, seen, devices: [] };
}

/** Waits for turn `index` of the server (in arrival order) to have ended; returns it. */
async function serverTurn(w: World, index: number): Promise<TappedTurn> {
  const deadline = performance.now() + TURN_TIMEOUT_MS;
  while (!w.tap.turns[index]?.ended) {
    if (performance.now() > deadline) {
      throw new Error(`no ended turn #${index} at the server within ${TURN_TIMEOUT_MS} ms`);
    }
    await delay(10);
  }
  return w.tap.turns[index];
}

/** The reply the server sent for `device`'s last turn (the echo of its utterance), at 48 kHz. */
function echoOf(w: World, device: string): Float32Array {
  const turn = w.tap.turnsOf(device).at(-1);
  if (!turn?.replyAudio || turn.replyRate === undefined) {
    throw new Error(`no reply audio from the server for ${device}`);
  }
  return resample(pcmToFloat32(concatBytes(turn.replyAudio)), turn.replyRate, DEVICE_RATE);
}

/** The gateway's log lines about `device`, for assertion messages. */
function diagnose(w: World, device: string): string {
  return w.gateway.logs
    .filter((l) => JSON.stringify(l.fields ?? {}).includes(device) || l.level !== "info")
    .slice(-25)
    .map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.fields ?? {}).slice(0, 200)}`)
    .join("\n");
}

async function teardown(w: World): Promise<void> {
  for (const device of w.devices) await device.close().catch(() => {});
  const code = await w.gateway.stop();
  await w.watcher.close().catch(() => {});
  await w.tap.close();
  await w.server.close();
  await w.broker.stop();
  assert.equal(code, 0, `gateway exit code ${code}: ${w.gateway.otherOutput.join("\n")}`);
  assert.deepEqual(w.gateway.otherOutput, [], "gateway wrote no stray output");
}

function device(
  w: World,
  id: string,
  options: Partial<ConstructorParameters<typeof DevicePeer>[0]> = {},
) {
  const peer = new DevicePeer({
    id,
    mqtt: { host: "127.0.0.1", port: w.broker.port },
    hostAddresses: ["127.0.0.1"],
    ...options,
  });
  w.devices.push(peer);
  return peer;
}

const question = await speak("What time is it in Lisbon?");
const other = await speak("Seven.");
/** One breath, no commas: the VAD keeps it one utterance, and its echo plays for seconds. */
const longQuestion = await speak(
  "Tell me a long story that keeps going for a while so that I have time to interrupt you " +
    "before you get to the end of it",
);
const questionSeconds = question.samples.length / question.rate;

Deno.test("gateway v2: utterances, replies, barge-in, devices, signaling", async (t) => {
  const w = await world({ AUDIO_SAMPLE_RATE: "16000", AI_SERVER_TIMEOUT_MS: "1500" });
  try {
    await t.step("online status is retained and the offer only offers loopback", async () => {
      const kitchen = device(w, "kitchen");
      await kitchen.connect();
      const status = w.seen.find((m) => m.topic === "naila/gateway/status");
      assert.ok(status && JSON.parse(status.payload).online === true, "gateway announced online");
      const offers = w.seen.filter((m) => m.topic === "naila/devices/kitchen/signaling/offer");
      assert.ok(offers.length >= 1);
      const sdp: string = JSON.parse(offers[0].payload).sdp;
      const candidates = sdp.split("\r\n").filter((l) => l.startsWith("a=candidate"));
      assert.ok(candidates.length > 0, "the offer carries candidates (non-trickling devices)");
      for (const line of candidates) assert.match(line, / 127\.0\.0\.1 /, line);
      const ice = w.seen.filter((m) => m.topic.endsWith("/signaling/ice"));
      for (const m of ice) {
        const c = JSON.parse(m.payload);
        assert.ok(c.from === "gateway" || c.from === "device", "every candidate is marked");
        if (c.candidate) assert.match(c.candidate, / 127\.0\.0\.1 /);
      }
    });

    await t.step(
      "one utterance reaches the server with the right header and duration",
      async () => {
        const kitchen = w.devices[0];
        const spoken = await kitchen.speak(question.samples, question.rate);
        const turn = await serverTurn(w, 0);
        assert.equal(turn.device, "kitchen");
        assert.equal(turn.rate, 16000);
        assert.equal(turn.protocol, 2);
        assert.deepEqual(turn.pauses, [], "no pause to a server without speculate");
        assert.deepEqual(
          turn.seqs,
          turn.seqs.map((_, i) => i),
          "audio chunks numbered 0, 1, 2, ...",
        );
        const seconds = turn.audioMs / 1000;
        // Speech (with espeak's own leading/trailing silence trimmed by the VAD), plus pre-roll
        // (0.3 s) and the silence window (0.3 s).
        assert.ok(
          seconds > questionSeconds - 0.6 && seconds < questionSeconds + 0.8,
          `utterance ${seconds.toFixed(2)} s for ${questionSeconds.toFixed(2)} s of speech`,
        );
        assert.ok(
          turn.endTs! <= Date.now() && turn.endTs! > Date.now() - 10_000,
          "end ts is a wall clock",
        );
        assert.ok(spoken.frames > 0);
        assert.equal(w.tap.turns.length, 1, "exactly one utterance");
      },
    );

    await t.step("the reply comes back over WebRTC and matches what the server sent", async () => {
      const kitchen = w.devices[0];
      const reply = await kitchen.nextReply(TURN_TIMEOUT_MS, 0);
      const got = reply.samples();
      const sent = echoOf(w, "kitchen");
      const c = aligned(sent, got);
      assert.ok(c > MIN_REPLY_CORRELATION, `correlation ${c.toFixed(3)}`);
      // Paced at 20 ms: the reply lasts as long as its audio, no burst.
      const duration = reply.arrivals[reply.arrivals.length - 1] - reply.arrivals[0];
      const audioMs = (sent.length / DEVICE_RATE) * 1000;
      assert.ok(
        duration > audioMs - 200,
        `reply spread over ${duration.toFixed(0)} ms (audio ${audioMs.toFixed(0)} ms)`,
      );
      const done = await kitchen.waitForEvent(isType("turn"), 5000);
      assert.ok(done.type === "turn" && (done.played_ms ?? 0) >= audioMs - 40);
      // The server's stages join the gateway's own latencies under their names, plus transport.
      const latency = done.latency_ms ?? {};
      const stages = w.tap.turns[0].stages ?? {};
      assert.ok("echo_ms" in stages, `the server's stages: ${JSON.stringify(stages)}`);
      for (const [key, value] of Object.entries(stages)) {
        assert.equal(latency[key], value, `${key} in ${JSON.stringify(latency)}`);
      }
      assert.ok(latency.end_detect_ms >= 0 && latency.first_reply_packet_ms > 0);
      assert.ok(latency.transport_ms >= 0 && latency.transport_ms < 1000, JSON.stringify(latency));
      assert.ok(w.tap.gatewayCapabilities.includes("stages"), "the gateway announces stages");
    });

    await t.step(
      "barge-in flushes playback, cancels with played_ms and tells the device",
      async () => {
        const hall = device(w, "hall");
        await hall.connect();
        const index = w.tap.turns.length;
        // Counted before speaking: the reply may start before the server's turn is seen.
        const first = hall.replies.length;
        // Its echo is the long reply that the barge-in interrupts.
        await hall.speak(longQuestion.samples, longQuestion.rate);
        await serverTurn(w, index);
        const start = performance.now();
        while (
          hall.replies.length === first && performance.now() - start < TURN_TIMEOUT_MS
        ) await delay(10);
        assert.ok(hall.replies.length > first, `no reply started: ${diagnose(w, "hall")}`);
        await delay(1200); // Let about a second of the reply play.
        const spoken = hall.speak(question.samples, question.rate);
        const interrupted = await hall.waitForEvent(isType("interrupted"), TURN_TIMEOUT_MS).catch(
          (error) => {
            throw new Error(
              `${error.message}\n${JSON.stringify(hall.events)} replies ${
                hall.replies.map((r) => r.arrivals.length)
              }\n${diagnose(w, "hall")}`,
            );
          },
        );
        const eventAt = performance.now();
        assert.ok(interrupted.type === "interrupted");
        assert.ok(
          interrupted.played_ms >= 1000 && interrupted.played_ms < 4000,
          `played_ms ${interrupted.played_ms}`,
        );
        const cancelled = w.tap.turns[index];
        const deadline = performance.now() + 5000;
        while (cancelled.cancelledPlayedMs === undefined && performance.now() < deadline) {
          await delay(10);
        }
        assert.equal(cancelled.cancelledPlayedMs, interrupted.played_ms);
        await spoken;
        await delay(300);
        const reply = hall.replies[first];
        const late = reply.arrivals.filter((at) => at > eventAt + 40).length;
        assert.ok(late <= 1, `${late} reply packets arrived after the interruption event`);
        // The barge-in utterance itself became the next turn.
        const next = await serverTurn(w, index + 1);
        assert.equal(next.device, "hall");
      },
    );

    await t.step("two devices at once stay independent", async () => {
      const bedroom = device(w, "bedroom");
      await bedroom.connect();
      const kitchen = w.devices[0];
      const k0 = kitchen.replies.length, b0 = bedroom.replies.length;
      const before = w.tap.turns.length;
      await Promise.all([
        kitchen.speak(question.samples, question.rate),
        bedroom.speak(other.samples, other.rate),
      ]);
      const [kr, br] = await Promise.all([
        kitchen.nextReply(TURN_TIMEOUT_MS, k0),
        bedroom.nextReply(TURN_TIMEOUT_MS, b0),
      ]);
      const mine = w.tap.turns.slice(before).map((turn) => turn.device).sort();
      assert.deepEqual(mine, ["bedroom", "kitchen"]);
      // Each device hears the echo of its own utterance, not the other's.
      const kitchenEcho = echoOf(w, "kitchen"), bedroomEcho = echoOf(w, "bedroom");
      assert.ok(
        aligned(kitchenEcho, kr.samples()) > MIN_REPLY_CORRELATION,
        "kitchen got its reply",
      );
      assert.ok(
        aligned(bedroomEcho, br.samples()) > MIN_REPLY_CORRELATION,
        "bedroom got its reply",
      );
      assert.ok(aligned(bedroomEcho, kr.samples()) < MIN_REPLY_CORRELATION, "not bedroom's");
    });

    await t.step("a slow server times out the turn and tells the device", async () => {
      const slowpoke = device(w, "slowpoke");
      await slowpoke.connect();
      // A hung server (SIGSTOP): its connection stays open, nothing comes back.
      w.server.freeze();
      try {
        await slowpoke.speak(question.samples, question.rate);
        const timeout = await slowpoke.waitForEvent(isType("timeout"), TURN_TIMEOUT_MS);
        assert.equal(timeout.type, "timeout");
      } finally {
        w.server.thaw();
      }
    });

    await t.step("malformed signaling is dropped and nothing else is disturbed", async () => {
      const kitchen = w.devices[0];
      const session = kitchen.sessionId!;
      const raw = w.watcher.client;
      const bad: [string, string][] = [
        ["naila/devices/kitchen/status", "{not json"],
        ["naila/devices/kitchen/status", JSON.stringify({ device_id: "elsewhere", online: true })],
        [
          "naila/devices/kitchen/signaling/answer",
          JSON.stringify({ type: "answer", sdp: "v=0 garbage", session_id: session }),
        ],
        [
          "naila/devices/kitchen/signaling/answer",
          JSON.stringify({ type: "answer", sdp: "v=0", session_id: "nosuch" }),
        ],
        [
          "naila/devices/kitchen/signaling/ice",
          JSON.stringify({ candidate: "candidate:garbage", session_id: session, from: "device" }),
        ],
        [
          "naila/devices/kitchen/signaling/ice",
          JSON.stringify({ candidate: 42, session_id: session }),
        ],
        ["naila/devices/bad id/status", JSON.stringify({ device_id: "bad id", online: true })],
        [
          "naila/devices/ghost/signaling/answer",
          JSON.stringify({ type: "answer", sdp: "v=0", session_id: "s1" }),
        ],
        ["naila/devices/kitchen/signaling/answer", "x".repeat(200_000)],
      ];
      for (const [topic, payload] of bad) await raw.publishAsync(topic, payload, { qos: 1 });
      // Poll instead of a fixed wait: on a loaded machine the drops may take a while to log.
      const dropped = () =>
        w.gateway.logs.filter((l) => l.level === "warn" && /dropped|rejected/.test(l.msg));
      for (let i = 0; i < 100 && dropped().length < bad.length - 1; i++) await delay(50);
      assert.equal(w.gateway.exited, false, "gateway still running");
      assert.equal(kitchen.sessionId, session, "kitchen's session untouched");
      assert.ok(dropped().length >= bad.length - 1, `${dropped().length} drops logged`);
      const k0 = kitchen.replies.length;
      await kitchen.speak(question.samples, question.rate);
      const reply = await kitchen.nextReply(TURN_TIMEOUT_MS, k0);
      assert.ok(aligned(echoOf(w, "kitchen"), reply.samples()) > MIN_REPLY_CORRELATION);
    });

    await t.step("re-announcing replaces the session; a non-trickling device works", async () => {
      const kitchen = w.devices[0];
      const old = kitchen.sessionId;
      await kitchen.announce();
      await kitchen.waitConnected();
      assert.notEqual(kitchen.sessionId, old);
      await w.gateway.waitForLog(
        (l) =>
          l.msg === "session closed" && l.fields?.session === old &&
          l.fields?.reason === "replaced",
        5000,
      );
      const quiet = device(w, "attic", { trickle: false });
      await quiet.connect();
      const ice = w.seen.filter((m) =>
        m.topic === "naila/devices/attic/signaling/ice" && JSON.parse(m.payload).from === "device"
      );
      assert.equal(ice.length, 0, "attic trickled nothing");
      const a0 = quiet.replies.length;
      await quiet.speak(question.samples, question.rate);
      const reply = await quiet.nextReply(TURN_TIMEOUT_MS, a0);
      assert.ok(aligned(echoOf(w, "attic"), reply.samples()) > MIN_REPLY_CORRELATION);
    });

    await t.step("an MQTT-only camera (no audio capability) gets no WebRTC offer", async () => {
      await w.watcher.client.publishAsync(
        "naila/devices/porch_cam/status",
        JSON.stringify({ device_id: "porch_cam", online: true, capabilities: ["camera"] }),
        { qos: 1, retain: true },
      );
      await delay(500);
      assert.equal(
        w.seen.filter((m) => m.topic === "naila/devices/porch_cam/signaling/offer").length,
        0,
      );
      assert.ok(!w.gateway.logs.some((l) => l.fields?.device === "porch_cam"));
    });

    await t.step("metrics are published per device; offline closes the session", async () => {
      await delay(600);
      const metrics = w.seen.filter((m) => m.topic === "naila/gateway/metrics").map((m) =>
        JSON.parse(m.payload)
      );
      assert.ok(metrics.length > 0);
      const last = metrics[metrics.length - 1];
      assert.equal(last.sessions, Object.keys(last.devices).length);
      assert.ok(last.devices.bedroom.packets_in > 0 && last.devices.bedroom.packets_out > 0);
      assert.ok(typeof last.devices.bedroom.jitter_ms === "number");
      assert.equal(last.devices.bedroom.turns, 1);
      assert.ok(last.devices.bedroom.last_latency_ms > 0, "turn latency reported");
      assert.equal(last.ai_server.connected, true);
      const attic = w.devices.find((d) => d.id === "attic")!;
      const session = attic.sessionId;
      await attic.close();
      await w.gateway.waitForLog(
        (l) =>
          l.msg === "session closed" && l.fields?.session === session &&
          l.fields?.reason === "offline",
        5000,
      );
    });
  } finally {
    await teardown(w);
  }
});

Deno.test("gateway survives AI-server restarts mid-reply and mid-utterance; will marks it offline; a restarted gateway re-offers", async () => {
  const w = await world({ AUDIO_SAMPLE_RATE: "16000" });
  try {
    const kitchen = device(w, "kitchen");
    await kitchen.connect();
    const session = kitchen.sessionId;
    // A slow link back (real time at 16 kHz): the reply is still streaming when the server dies.
    w.tap.limitReplies(16000 * 2);
    await kitchen.speak(longQuestion.samples, longQuestion.rate);
    await serverTurn(w, 0);
    while (kitchen.replies.length === 0) await delay(10);
    // Mid-reply: the server crashes, and what it had sent but the link had not carried is lost.
    await w.server.stop("SIGKILL");
    w.tap.cut();
    w.tap.limitReplies(undefined);
    const error = await kitchen.waitForEvent(isType("error"), 5000);
    assert.match(error.type === "error" ? error.message : "", /disconnected/);
    await w.server.start();
    await w.gateway.waitForLog(
      (l) =>
        l.msg === "AI server connected" &&
        w.gateway.logs.filter((x) => x.msg === "AI server connected").length >= 2,
      10_000,
    );
    const before = kitchen.replies.length;
    const sentBefore = w.tap.turns.length;
    await kitchen.speak(question.samples, question.rate);
    const turn = await serverTurn(w, sentBefore);
    assert.equal(turn.device, "kitchen");
    const reply = await kitchen.nextReply(TURN_TIMEOUT_MS, before);
    assert.ok(aligned(echoOf(w, "kitchen"), reply.samples()) > MIN_REPLY_CORRELATION);
    assert.equal(kitchen.sessionId, session, "the WebRTC session survived the outage");
    // The server restarts while the user is speaking: the utterance waits for it and is
    // answered, whole, with no error event.
    const errors = () => kitchen.events.filter((e) => e.type === "error").length;
    const errorsBefore = errors();
    const repliesBefore = kitchen.replies.length;
    const speaking = kitchen.speak(question.samples, question.rate);
    await delay(400);
    await w.server.stop();
    await w.server.start();
    await speaking;
    const deadline = performance.now() + TURN_TIMEOUT_MS;
    while (!w.tap.turns.at(-1)?.ended && performance.now() < deadline) await delay(10);
    const replayed = w.tap.turns.at(-1)!;
    assert.equal(replayed.device, "kitchen");
    // One turn, sent once or (cut off mid-utterance) again whole under the same id.
    const sends = w.tap.turns.slice(sentBefore + 1);
    assert.deepEqual([...new Set(sends.map((t) => t.id))], [replayed.id], "one turn");
    const heardSeconds = replayed.audioMs / 1000;
    assert.ok(heardSeconds > questionSeconds * 0.9, `${heardSeconds} s of ${questionSeconds} s`);
    const answered = await kitchen.nextReply(TURN_TIMEOUT_MS, repliesBefore);
    assert.ok(aligned(echoOf(w, "kitchen"), answered.samples()) > MIN_REPLY_CORRELATION);
    assert.equal(errors(), errorsBefore, "no error event for the held utterance");
    // A crash (no clean shutdown): the broker publishes the last will, retained.
    await w.gateway.kill();
    const willDeadline = performance.now() + 5000;
    let offline = false;
    while (!offline && performance.now() < willDeadline) {
      const statuses = w.seen.filter((m) => m.topic === "naila/gateway/status");
      offline = statuses.length > 0 &&
        JSON.parse(statuses[statuses.length - 1].payload).online === false;
      await delay(20);
    }
    assert.ok(offline, "last will set the gateway offline");
    const late = await connectMqtt({ embedded: false, host: "127.0.0.1", port: w.broker.port }, {
      clientId: "late-watcher",
    });
    const retained = new Promise<string>((resolve) =>
      late.client.on("message", (_t: string, p: Uint8Array) => resolve(new TextDecoder().decode(p)))
    );
    await late.subscribe(topicFilter("gateway_status"));
    assert.equal(JSON.parse(await retained).online, false, "offline is retained");
    await late.close();
    // Spec 9.3: a restarted gateway re-offers to every device whose retained status is online.
    w.gateway = await startGatewayProcess({
      MQTT_HOST: "127.0.0.1",
      MQTT_PORT: String(w.broker.port),
      AI_SERVER_PORT: String(w.tap.port),
      AI_SERVER_SECRET: w.server.secret,
      AUDIO_SAMPLE_RATE: "16000",
    });
    const deadlineOffer = performance.now() + 10_000;
    while (kitchen.sessionId === session && performance.now() < deadlineOffer) await delay(20);
    assert.notEqual(kitchen.sessionId, session, "a new offer came without re-announcing");
    await kitchen.waitConnected();
  } finally {
    for (const d of w.devices) await d.close().catch(() => {});
    await w.gateway.stop();
    await w.watcher.close().catch(() => {});
    await w.tap.close();
    await w.server.close();
    await w.broker.stop();
  }
});

Deno.test("gateway v1 against the real server (whole frames at 48 kHz, energy VAD)", async () => {
  const w = await world({ AI_SERVER_PROTOCOL: "v1", AUDIO_VAD_MODE: "energy" });
  try {
    const kitchen = device(w, "kitchen", { loss: 0.03 });
    await kitchen.connect();
    await kitchen.speak(question.samples, question.rate);
    const turn = await serverTurn(w, 0);
    assert.equal(turn.protocol, 1);
    assert.equal(turn.device, "kitchen");
    assert.equal(turn.rate, 48000);
    assert.match(turn.id, /^t[0-9a-z]+$/);
    const seconds = turn.audioMs / 1000;
    assert.ok(seconds > questionSeconds - 0.6 && seconds < questionSeconds + 0.8, `${seconds} s`);
    const reply = await kitchen.nextReply(TURN_TIMEOUT_MS, 0);
    assert.equal(turn.replyRate, 48000, "spec 6.1: the answer frame is at 48 kHz");
    assert.ok(aligned(echoOf(w, "kitchen"), reply.samples()) > MIN_REPLY_CORRELATION);
    const done = await kitchen.waitForEvent(isType("turn"), 5000);
    assert.equal(done.type, "turn");
  } finally {
    await teardown(w);
  }
});
