import assert from "node:assert/strict";
import { PendingCommits } from "./turn_commits.ts";

const pending = (commit: () => number | undefined) => ({
  device: "kitchen",
  pcm: new Uint8Array(4),
  rate: 16000,
  links: 0,
  commit,
});

Deno.test("a held turn is committed once: by commit, or by the timeout", async () => {
  const committed: [string, number | undefined][] = [];
  const table = new PendingCommits({
    committed: (id, memoryId) => committed.push([id, memoryId]),
    timeoutMs: 30,
  });
  let runs = 0;
  table.hold("t1", pending(() => ++runs));
  assert.equal(table.commit("t1"), 1);
  assert.equal(table.commit("t1"), undefined, "a second commit is ignored");
  table.hold("t2", pending(() => 7));
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.deepEqual(committed, [["t1", 1], ["t2", 7]], "the gateway vanished: committed anyway");
  assert.equal(runs, 1);
});

Deno.test("a taken turn is never committed; commitAll commits the rest", () => {
  let commits = 0;
  const table = new PendingCommits({ timeoutMs: 10_000 });
  table.hold("t1", pending(() => ++commits));
  table.hold("t2", pending(() => ++commits));
  const taken = table.take("t1");
  assert.equal(taken?.device, "kitchen");
  assert.equal(table.has("t1"), false);
  table.commitAll();
  assert.equal(commits, 1);
  assert.equal(table.take("t2"), undefined);
});

Deno.test("a closed connection hands its turns over uncommitted; they wait there anew, bounded", async () => {
  let commits = 0;
  const connection = new PendingCommits({ timeoutMs: 10_000 });
  const orphans = new PendingCommits({ timeoutMs: 40, max: 2 });
  connection.hold("t1", pending(() => ++commits));
  connection.hold("t2", pending(() => ++commits));
  connection.handOver(orphans);
  assert.equal(connection.size, 0);
  assert.equal(commits, 0, "nothing applied at the close");
  assert.equal(orphans.take("t1")?.device, "kitchen", "a reconnected gateway may continue it");
  // The bound: a third and fourth orphan commit the oldest waiting one to make room.
  orphans.hold("t3", pending(() => ++commits));
  orphans.hold("t4", pending(() => ++commits));
  assert.equal(commits, 1);
  assert.equal(orphans.has("t2"), false);
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.equal(commits, 3, "nobody came back for them: committed at their timeout");
});

Deno.test("a commit that throws is reported and the table goes on; a re-held turn keeps its deadline", async () => {
  const errors: string[] = [];
  const table = new PendingCommits({ timeoutMs: 10_000, onError: (id) => errors.push(id) });
  table.hold(
    "t1",
    pending(() => {
      throw new Error("disk full");
    }),
  );
  table.hold("t2", pending(() => 5));
  table.commitAll();
  assert.deepEqual(errors, ["t1"]);
  assert.equal(table.size, 0, "t2 committed after t1 threw");
  assert.deepEqual(table.recent("t2"), { memoryId: 5 }, "a late cancel still finds the row");
  // Taken and held back (a refused continuation): the original deadline, not a fresh timeout.
  let commits = 0;
  const short = new PendingCommits({ timeoutMs: 40 });
  short.hold("t3", pending(() => ++commits));
  const taken = short.take("t3")!;
  short.hold("t3", taken, taken.deadline);
  short.hold("t3", short.take("t3")!, taken.deadline);
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.equal(commits, 1);
});
