import assert from "node:assert/strict";
import {
  PAUSE_AFTER_MS,
  type TurnAction,
  TurnTaking,
  type TurnTakingOptions,
} from "./turn_taking.ts";

function machine(options: Partial<TurnTakingOptions> = {}): TurnTaking {
  let n = 0;
  return new TurnTaking({ newTurnId: () => `t${++n}`, ...options });
}

/** Feeds 20 ms frames from `from` (inclusive) to `to` (exclusive); returns the actions. */
function frames(
  turns: TurnTaking,
  voiced: boolean,
  from: number,
  to: number,
): [number, TurnAction][] {
  const out: [number, TurnAction][] = [];
  for (let at = from; at < to; at += 20) {
    for (const action of turns.frame(voiced, at)) out.push([at, action]);
  }
  return out;
}

/** Speech from 0 to 1000 ms (last voiced frame at 980). */
function spoke(turns: TurnTaking): void {
  assert.deepEqual(turns.speechStart(0), [{ kind: "start", turn: "t1" }]);
  assert.deepEqual(frames(turns, true, 0, 1000), []);
}

Deno.test("a plain utterance: pause after PAUSE_AFTER_MS of silence, end after the 300 ms window", () => {
  const turns = machine();
  spoke(turns);
  assert.deepEqual(frames(turns, false, 1000, 1400), [
    [980 + PAUSE_AFTER_MS, { kind: "pause", turn: "t1" }],
    [1280, { kind: "end", turn: "t1", lastSpeechAt: 980 }],
  ]);
  assert.equal(turns.phase, "pending_end");
});

Deno.test("a `complete` hint ends the utterance as soon as its shorter silence is met", () => {
  const turns = machine();
  spoke(turns);
  assert.deepEqual(frames(turns, false, 1000, 1100), [[980 + PAUSE_AFTER_MS, {
    kind: "pause",
    turn: "t1",
  }]]);
  // The hint arrives at 1090: 110 ms of silence, 120 asked.
  assert.deepEqual(turns.hint("t1", { completion: "complete", silenceMs: 120 }, 1090), []);
  assert.deepEqual(frames(turns, false, 1100, 1200), [
    [1100, { kind: "end", turn: "t1", lastSpeechAt: 980 }],
  ]);
  // A late hint that is already met ends at once.
  const late = machine();
  spoke(late);
  frames(late, false, 1000, 1200);
  assert.deepEqual(late.hint("t1", { completion: "complete", silenceMs: 120 }, 1190), [
    { kind: "end", turn: "t1", lastSpeechAt: 980 },
  ]);
});

Deno.test("an `incomplete` hint waits up to 1.2 s; speech resuming voids it", () => {
  const turns = machine();
  spoke(turns);
  frames(turns, false, 1000, 1100);
  turns.hint("t1", { completion: "incomplete", silenceMs: 5000 }, 1100);
  assert.equal(turns.requiredSilenceMs, 1200, "capped by incompleteMaxMs");
  assert.deepEqual(frames(turns, false, 1100, 2100), []);
  // The user goes on ("... for five minutes"); the next silence has the default window again.
  assert.deepEqual(frames(turns, true, 2100, 3000), []);
  assert.equal(turns.requiredSilenceMs, 300);
  assert.deepEqual(frames(turns, false, 3000, 3400), [
    [2980 + PAUSE_AFTER_MS, { kind: "pause", turn: "t1" }],
    [3280, { kind: "end", turn: "t1", lastSpeechAt: 2980 }],
  ]);
});

Deno.test("a complete hint never shortens below the pause nor lengthens past the window", () => {
  const short = machine({ silenceMs: 200 });
  spoke(short);
  assert.deepEqual(frames(short, false, 1000, 1100), [[980 + PAUSE_AFTER_MS, {
    kind: "pause",
    turn: "t1",
  }]]);
  // 20 ms asked, 100 ms of silence (past the pause) met: ends now, not earlier than the pause.
  assert.deepEqual(short.hint("t1", { completion: "complete", silenceMs: 20 }, 1080), [
    { kind: "end", turn: "t1", lastSpeechAt: 980 },
  ]);
  const long = machine({ silenceMs: 200 });
  spoke(long);
  frames(long, false, 1000, 1100);
  assert.deepEqual(long.hint("t1", { completion: "complete", silenceMs: 900 }, 1080), []);
  assert.equal(long.requiredSilenceMs, 200);
  assert.deepEqual(frames(long, false, 1100, 1300), [
    [1180, { kind: "end", turn: "t1", lastSpeechAt: 980 }],
  ]);
});

Deno.test("speech while the server thinks continues the request (no flush, no cancel)", () => {
  const turns = machine();
  spoke(turns);
  frames(turns, false, 1000, 1300);
  assert.deepEqual(turns.speechStart(1650), [{ kind: "start", turn: "t2", continues: "t1" }]);
  assert.equal(turns.phase, "utterance");
  // A reply of the superseded turn that starts late is ignored.
  assert.deepEqual(turns.replyStarted("t1", 1700), []);
});

Deno.test("hesitation: speech within the grace after the reply started stops it and continues", () => {
  const turns = machine();
  spoke(turns);
  frames(turns, false, 1000, 1300);
  assert.deepEqual(turns.replyStarted("t1", 1480), []);
  assert.equal(turns.phase, "replying_within_grace");
  assert.equal(turns.nextDeadline(), 2280);
  assert.deepEqual(turns.speechStart(2000), [
    { kind: "flush" },
    { kind: "start", turn: "t2", continues: "t1" },
  ]);
});

Deno.test("after the grace the turn is committed and speech over the reply is a barge-in", () => {
  const turns = machine();
  spoke(turns);
  frames(turns, false, 1000, 1300);
  turns.replyStarted("t1", 1480);
  assert.deepEqual(turns.tick(2000), []);
  assert.deepEqual(turns.tick(2280), [{ kind: "commit", turn: "t1" }]);
  assert.equal(turns.phase, "replying");
  assert.deepEqual(turns.speechStart(3000), [
    { kind: "flush" },
    { kind: "cancel", turn: "t1" },
    { kind: "start", turn: "t2" },
  ]);
});

Deno.test("a short reply drained within the grace: still continuable, then listening", () => {
  const turns = machine();
  spoke(turns);
  frames(turns, false, 1000, 1300);
  turns.replyStarted("t1", 1480);
  assert.deepEqual(turns.replyDone("t1", 1800, { audio: true }), []);
  assert.equal(turns.phase, "replying_within_grace");
  assert.deepEqual(turns.speechStart(2100), [{ kind: "start", turn: "t2", continues: "t1" }]);
  // Without speech: committed at the grace, then listening; new speech is a plain turn.
  const quiet = machine();
  spoke(quiet);
  frames(quiet, false, 1000, 1300);
  quiet.replyStarted("t1", 1480);
  quiet.replyDone("t1", 1800, { audio: true });
  assert.deepEqual(quiet.tick(2280), [{ kind: "commit", turn: "t1" }]);
  assert.equal(quiet.phase, "listening");
  assert.deepEqual(quiet.speechStart(4000), [{ kind: "start", turn: "t2" }]);
});

Deno.test("a reply that plays past the grace ends in listening", () => {
  const turns = machine();
  spoke(turns);
  frames(turns, false, 1000, 1300);
  turns.replyStarted("t1", 1480);
  turns.tick(2280);
  assert.deepEqual(turns.replyDone("t1", 5000, { audio: true }), []);
  assert.equal(turns.phase, "listening");
});

Deno.test("a server slower than the continuation window: committed, then speech barges in", () => {
  const turns = machine({ continueMaxMs: 1000 });
  spoke(turns);
  frames(turns, false, 1000, 1300);
  assert.deepEqual(turns.tick(2280), []);
  assert.deepEqual(turns.tick(2281), [{ kind: "commit", turn: "t1" }]);
  assert.deepEqual(turns.speechStart(2500), [
    { kind: "flush" },
    { kind: "cancel", turn: "t1" },
    { kind: "start", turn: "t2" },
  ]);
  // Without a tick in between, late speech is a barge-in too.
  const untimed = machine({ continueMaxMs: 1000 });
  spoke(untimed);
  frames(untimed, false, 1000, 1300);
  assert.deepEqual(untimed.speechStart(2400), [
    { kind: "cancel", turn: "t1" },
    { kind: "start", turn: "t2" },
  ]);
});

Deno.test("a reply without audio commits at once and listens", () => {
  const turns = machine();
  spoke(turns);
  frames(turns, false, 1000, 1300);
  assert.deepEqual(turns.replyDone("t1", 1500, { audio: false }), [{ kind: "commit", turn: "t1" }]);
  assert.equal(turns.phase, "listening");
  assert.deepEqual(turns.speechStart(1600), [{ kind: "start", turn: "t2" }]);
});

Deno.test("grace 0: the reply's first packet commits", () => {
  const turns = machine({ graceMs: 0 });
  spoke(turns);
  frames(turns, false, 1000, 1300);
  assert.deepEqual(turns.replyStarted("t1", 1480), [{ kind: "commit", turn: "t1" }]);
  assert.equal(turns.phase, "replying");
});

Deno.test("events for other turns and out of phase are ignored", () => {
  const turns = machine();
  spoke(turns);
  assert.deepEqual(turns.hint("t9", { completion: "complete", silenceMs: 100 }, 1200), []);
  assert.deepEqual(
    turns.hint("t1", { completion: "complete", silenceMs: 100 }, 990),
    [],
    "not paused",
  );
  assert.deepEqual(turns.replyStarted("t1", 1000), [], "still speaking");
  assert.deepEqual(turns.speechStart(1000), [], "already in an utterance");
  assert.deepEqual(turns.replyDone("t9", 1000, { audio: true }), []);
});

Deno.test("bad options are named", () => {
  assert.throws(() => machine({ graceMs: -1 }), /graceMs -1/);
  assert.throws(() => machine({ silenceMs: NaN }), /silenceMs NaN/);
});

Deno.test("without a hint the clock never ends an utterance: a stall after a pause is no silence", () => {
  const turns = machine();
  spoke(turns);
  assert.deepEqual(frames(turns, false, 1000, 1100), [[980 + PAUSE_AFTER_MS, {
    kind: "pause",
    turn: "t1",
  }]]);
  // The device's packets are held for 400 ms (Wi-Fi): no frame comes, the clock runs on.
  assert.equal(turns.nextDeadline(), undefined, "nothing to wake up for");
  assert.deepEqual(turns.tick(1500), []);
  assert.equal(turns.phase, "utterance");
  // The held packets arrive: speech goes on in the same utterance.
  assert.deepEqual(frames(turns, true, 1100, 1600), []);
  // A hinted silence is the clock's to end (frames may have stopped: the segmenter is idle).
  assert.deepEqual(frames(turns, false, 1600, 1700), [[1580 + PAUSE_AFTER_MS, {
    kind: "pause",
    turn: "t1",
  }]]);
  turns.hint("t1", { completion: "incomplete", silenceMs: 1200 }, 1700);
  assert.equal(turns.nextDeadline(), 1580 + 1200);
  assert.deepEqual(turns.tick(2780), [{ kind: "end", turn: "t1", lastSpeechAt: 1580 }]);
});
