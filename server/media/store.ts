/**
 * Opt-in alert storage (spec 17.3: no media is kept unless MEDIA_STORAGE=alerts; 11.8 database
 * retrieval): each alert's snapshot is written under `{dataDir}/media/`, and its time, zone,
 * device, labels and detections are indexed in SQLite (the server's `naila.db`, via Deno's
 * built-in `node:sqlite`, as the conversation memory). Retention deletes what is older than the
 * configured days and, oldest first, what exceeds the configured bytes.
 *
 * @example
 * ```ts
 * const store = await MediaStore.open({ dataDir: "./data", databasePath: "./data/naila.db", retentionDays: 7, retentionBytes: 500e6 });
 * const id = await store.add({ at: Date.now(), zone: "front_door", device: "front_cam", format: "jpeg", image, objects, description: "I see a person." });
 * store.latest({ zone: "front_door", label: "person" }); // { id, at, zone, labels: ["person"], ... }
 * ```
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import type { DetectedObject } from "../vision/mod.ts";

/** Folder under the data dir that holds stored images. */
export const MEDIA_DIR = "media";

/** One stored alert snapshot. */
export interface StoredMedia {
  id: number;
  /** When the snapshot was taken, ms since the epoch. */
  at: number;
  zone: string;
  device: string;
  /** Distinct detected labels, sorted. */
  labels: string[];
  objects: DetectedObject[];
  description: string;
  format: "jpeg" | "png" | "webp";
  /** Path of the image, relative to the data dir. */
  path: string;
  bytes: number;
}

/** What {@link MediaStore.add} needs. */
export interface NewMedia {
  at: number;
  zone: string;
  device: string;
  objects: DetectedObject[];
  description: string;
  format: StoredMedia["format"];
  image: Uint8Array;
}

/** A query: every field narrows it. */
export interface MediaQuery {
  zone?: string;
  device?: string;
  /** Only snapshots where this label was detected. */
  label?: string;
  /** Time range in ms since the epoch: `from` inclusive, `to` exclusive. */
  from?: number;
  to?: number;
}

/** Options of {@link MediaStore.open}. */
export interface MediaStoreOptions {
  dataDir: string;
  /** SQLite file (the server's `naila.db`), or `:memory:`. */
  databasePath: string;
  retentionDays: number;
  retentionBytes: number;
  now?: () => number;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Most rows one query returns: an answer names a handful, a page shows a screenful. */
const MAX_ROWS = 100;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS media (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    zone TEXT NOT NULL,
    device TEXT NOT NULL,
    labels TEXT NOT NULL,
    objects TEXT NOT NULL,
    description TEXT NOT NULL,
    format TEXT NOT NULL,
    path TEXT NOT NULL,
    bytes INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS media_by_time ON media (at);
  CREATE INDEX IF NOT EXISTS media_by_zone_time ON media (zone, at);
`;

type Row = Record<string, unknown>;

function toMedia(row: Row): StoredMedia {
  const labels = String(row.labels);
  return {
    id: Number(row.id),
    at: Number(row.at),
    zone: String(row.zone),
    device: String(row.device),
    // Stored as ",person,dog," so a label query is one LIKE on a whole word.
    labels: labels.split(",").filter((label) => label.length > 0),
    objects: JSON.parse(String(row.objects)),
    description: String(row.description),
    format: String(row.format) as StoredMedia["format"],
    path: String(row.path),
    bytes: Number(row.bytes),
  };
}

/** Stored alert snapshots with their SQLite index. */
export class MediaStore {
  #db: DatabaseSync;
  #options: MediaStoreOptions;
  #now: () => number;

  private constructor(db: DatabaseSync, options: MediaStoreOptions) {
    this.#db = db;
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Opens (creating) the index and the media folder. */
  static async open(options: MediaStoreOptions): Promise<MediaStore> {
    await Deno.mkdir(join(options.dataDir, MEDIA_DIR), { recursive: true });
    const db = new DatabaseSync(options.databasePath);
    db.exec("PRAGMA busy_timeout = 2000;");
    db.exec(SCHEMA);
    return new MediaStore(db, options);
  }

  /** Writes the image, indexes it, applies retention; returns its id. */
  async add(media: NewMedia): Promise<number> {
    const day = new Date(media.at).toISOString().slice(0, 10);
    const folder = join(MEDIA_DIR, day);
    await Deno.mkdir(join(this.#options.dataDir, folder), { recursive: true });
    const name = `${media.at}_${media.device}_${crypto.randomUUID().slice(0, 8)}.${
      media.format === "jpeg" ? "jpg" : media.format
    }`;
    const path = join(folder, name);
    await Deno.writeFile(join(this.#options.dataDir, path), media.image);
    const labels = [...new Set(media.objects.map((object) => object.label))].sort();
    const result = this.#db.prepare(
      `INSERT INTO media (at, zone, device, labels, objects, description, format, path, bytes)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      media.at,
      media.zone,
      media.device,
      `,${labels.join(",")},`,
      JSON.stringify(media.objects),
      media.description,
      media.format,
      path,
      media.image.length,
    );
    await this.prune();
    return Number(result.lastInsertRowid);
  }

  /** Matching snapshots, newest first (at most 100). */
  find(query: MediaQuery = {}, limit = MAX_ROWS): StoredMedia[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (query.zone !== undefined) {
      where.push("zone = ?");
      args.push(query.zone);
    }
    if (query.device !== undefined) {
      where.push("device = ?");
      args.push(query.device);
    }
    if (query.label !== undefined) {
      where.push("labels LIKE ?");
      args.push(`%,${query.label.replace(/[%_,]/g, "")},%`);
    }
    if (query.from !== undefined) {
      where.push("at >= ?");
      args.push(query.from);
    }
    if (query.to !== undefined) {
      where.push("at < ?");
      args.push(query.to);
    }
    const sql = `SELECT * FROM media ${
      where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""
    } ORDER BY at DESC, id DESC LIMIT ?`;
    return (this.#db.prepare(sql).all(...args, Math.min(limit, MAX_ROWS)) as Row[]).map(toMedia);
  }

  /** The newest matching snapshot. */
  latest(query: MediaQuery = {}): StoredMedia | undefined {
    return this.find(query, 1)[0];
  }

  /** The stored image bytes of `media`. */
  readImage(media: StoredMedia): Promise<Uint8Array> {
    return Deno.readFile(join(this.#options.dataDir, media.path));
  }

  /** Zones that have stored snapshots. */
  zones(): string[] {
    return (this.#db.prepare("SELECT DISTINCT zone FROM media").all() as Row[]).map((row) =>
      String(row.zone)
    );
  }

  /** Total bytes of stored images. */
  totalBytes(): number {
    const row = this.#db.prepare("SELECT COALESCE(SUM(bytes), 0) AS total FROM media").get() as Row;
    return Number(row.total);
  }

  /**
   * Retention: deletes snapshots older than the configured days, then the oldest until the
   * total is within the configured bytes. Returns how many were deleted.
   */
  async prune(): Promise<number> {
    const doomed = this.#db.prepare("SELECT * FROM media WHERE at < ? ORDER BY at, id").all(
      this.#now() - this.#options.retentionDays * DAY_MS,
    ) as Row[];
    let total = this.totalBytes() - doomed.reduce((sum, row) => sum + Number(row.bytes), 0);
    if (total > this.#options.retentionBytes) {
      const oldest = this.#db.prepare("SELECT * FROM media WHERE at >= ? ORDER BY at, id").all(
        this.#now() - this.#options.retentionDays * DAY_MS,
      ) as Row[];
      for (const row of oldest) {
        if (total <= this.#options.retentionBytes) break;
        doomed.push(row);
        total -= Number(row.bytes);
      }
    }
    const remove = this.#db.prepare("DELETE FROM media WHERE id = ?");
    for (const row of doomed) {
      remove.run(Number(row.id));
      await Deno.remove(join(this.#options.dataDir, String(row.path))).catch(() => {});
    }
    return doomed.length;
  }

  close(): void {
    this.#db.close();
  }
}
