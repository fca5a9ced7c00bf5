import assert from "node:assert/strict";
import { join } from "node:path";
import type { DetectedObject } from "../vision/mod.ts";
import { MediaStore } from "./store.ts";

const DAY = 24 * 60 * 60 * 1000;
const person: DetectedObject = { label: "person", confidence: 0.9, bbox: [1, 2, 3, 4] };
const dog: DetectedObject = { label: "dog", confidence: 0.8, bbox: [5, 6, 7, 8] };

async function withStore(
  options: { retentionDays?: number; retentionBytes?: number; now?: () => number },
  body: (store: MediaStore, dataDir: string) => Promise<void>,
): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "naila_media_store_" });
  const store = await MediaStore.open({
    dataDir,
    databasePath: join(dataDir, "naila.db"),
    retentionDays: options.retentionDays ?? 7,
    retentionBytes: options.retentionBytes ?? 1_000_000,
    now: options.now,
  });
  try {
    await body(store, dataDir);
  } finally {
    store.close();
    await Deno.remove(dataDir, { recursive: true });
  }
}

Deno.test("MediaStore keeps the image on disk and finds it by zone, label, device and time", async () => {
  const now = Date.UTC(2026, 10, 29, 12);
  await withStore({ now: () => now }, async (store, dataDir) => {
    const image = new Uint8Array([0xff, 0xd8, 1, 2, 3, 0xff, 0xd9]);
    const first = await store.add({
      at: now - 3 * 3600_000,
      zone: "front_door",
      device: "front_cam",
      objects: [person, dog],
      description: "I see a person and a dog.",
      format: "jpeg",
      image,
    });
    const second = await store.add({
      at: now - 3600_000,
      zone: "backyard",
      device: "yard_cam",
      objects: [dog],
      description: "I see a dog.",
      format: "png",
      image: new Uint8Array(10),
    });
    const found = store.latest({ zone: "front_door", label: "person" });
    assert.equal(found?.id, first);
    assert.deepEqual(found?.labels, ["dog", "person"]);
    assert.deepEqual(found?.objects, [person, dog]);
    assert.deepEqual(await store.readImage(found!), image);
    assert.ok((await Deno.stat(join(dataDir, found!.path))).isFile);
    assert.equal(store.latest({ label: "dog" })?.id, second, "newest first");
    assert.equal(store.latest({ label: "cat" }), undefined);
    assert.deepEqual(
      store.find({ from: now - 4 * 3600_000, to: now - 2 * 3600_000 }).map((m) => m.id),
      [first],
    );
    assert.deepEqual(store.find({ device: "yard_cam" }).map((m) => m.id), [second]);
    assert.deepEqual(store.zones().sort(), ["backyard", "front_door"]);
    assert.equal(store.totalBytes(), 17);
  });
});

Deno.test("MediaStore retention deletes rows and files older than the days, then the oldest beyond the bytes", async () => {
  let now = Date.UTC(2026, 10, 29, 12);
  await withStore({ retentionDays: 2, retentionBytes: 250, now: () => now }, async (store, dir) => {
    const add = (at: number) =>
      store.add({
        at,
        zone: "front_door",
        device: "front_cam",
        objects: [person],
        description: "I see a person.",
        format: "jpeg",
        image: new Uint8Array(100),
      });
    const old = await add(now - 3 * DAY);
    assert.equal(store.find().length, 0, "older than 2 days: deleted on the next add");
    const a = await add(now - 3000);
    const b = await add(now - 2000);
    const c = await add(now - 1000);
    // 300 bytes > 250: the oldest (a) goes.
    assert.deepEqual(store.find().map((m) => m.id), [c, b]);
    assert.ok(old < a);
    assert.equal(store.totalBytes(), 200);
    const files = [];
    for await (const day of Deno.readDir(join(dir, "media"))) {
      for await (const file of Deno.readDir(join(dir, "media", day.name))) files.push(file.name);
    }
    assert.equal(files.length, 2, "deleted rows' files are gone too");
    now += 3 * DAY;
    assert.equal(await store.prune(), 2);
    assert.equal(store.totalBytes(), 0);
  });
});
