/**
 * The message history's database: one SQLite file (`node:sqlite`, built into Deno) with
 * one table, `messages`, a row per message in the order the server printed them.
 *
 * It owns the schema, the pragmas (and so the durability contract), the clear one-line
 * errors of a file that cannot be used, the batched inserts, the retention (by count and
 * age, pruned in bounded batches) and the queries. It is synchronous, as `DatabaseSync`
 * is: the server never calls it on its hot path; `HistoryWriter` hands it whole batches,
 * in a Worker (`history_worker.ts`).
 *
 * Durability (WAL mode, `synchronous = NORMAL`): a batch is one transaction. Once its
 * commit returns, the batch is in the write-ahead log in the operating system's page
 * cache, so it survives `kill -9` of the process (SQLite replays the log on the next
 * open). It reaches the disk at the next checkpoint (about every 4 MB of log), so a power
 * loss or an operating system crash can lose the batches committed since then, but never
 * corrupts the file. `FULL` would make each commit wait for an fsync; `NORMAL` keeps the
 * database consistent at a fraction of the cost, which is SQLite's advice for WAL.
 *
 * Schema: `messages(id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER, sender TEXT,
 * origin TEXT, payload BLOB)`: `id` is the order (ids only grow, with gaps where a batch
 * was lost), `time` milliseconds since the epoch, `origin` the server a cluster message
 * came from (NULL for the server's own clients), `payload` the bytes as received.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";

/** `PRAGMA application_id` of a parrot history file: "prrt". */
export const HISTORY_APPLICATION_ID = 0x70727274;
/** `PRAGMA user_version` of the schema this module writes. */
export const HISTORY_SCHEMA_VERSION = 1;
/** Rows one {@linkcode HistoryStore.prune} call deletes at most. */
export const PRUNE_BATCH_ROWS = 10_000;
/** Rows one multi-row `INSERT` takes: fewer calls into SQLite per message. */
const ROWS_PER_INSERT = 64;

/** One stored message. */
export interface HistoryRecord {
  /** Its place in the order: larger is later. */
  id: number;
  /** When the server printed it, in milliseconds since the epoch. */
  time: number;
  /** The sender's name, as the server printed it. */
  sender: string;
  /** The server it came from in cluster mode; null for the server's own clients. */
  origin: string | null;
  /** The payload's bytes. */
  payload: Uint8Array;
}

/**
 * Messages in the compact form the writer builds and a Worker can take: the payloads
 * one after another in `bytes`, the senders as indexes into `names`.
 */
export interface HistoryBatch {
  /** The id of the first message; the others follow one by one. */
  firstId: number;
  /** How many messages. */
  count: number;
  /** Each message's time, in milliseconds since the epoch. */
  times: Float64Array;
  /** Each message's sender, as an index into `names`. */
  senders: Uint16Array;
  /** The distinct sender names of the batch. */
  names: string[];
  /** Where each message's payload ends in `bytes` (it starts where the previous ended). */
  ends: Uint32Array;
  /** The payloads. */
  bytes: Uint8Array;
}

/** Options of {@linkcode HistoryStore.open}. */
export interface HistoryStoreOptions {
  /** Open for queries only (`deno task history`): the file must exist. Default false. */
  readOnly?: boolean;
  /** Most messages kept; {@linkcode HistoryStore.prune} deletes the oldest beyond. Default: no limit. */
  maxMessages?: number;
  /** Oldest message kept, in milliseconds. Default: no limit. */
  maxAgeMs?: number;
  /** Milliseconds a statement waits for a lock another connection holds. Default 5000. */
  busyTimeoutMs?: number;
}

/** What {@linkcode HistoryStore.query} selects. */
export interface HistoryQuery {
  /** Only messages at or after this time (milliseconds since the epoch). */
  since?: number;
  /** Only messages of this sender. */
  from?: string;
  /** Only the last `limit` of the messages selected. */
  limit?: number;
}

/** A history file that cannot be used: its message is the one line to show. */
export class HistoryOpenError extends Error {
  override name = "HistoryOpenError";
}

const COLUMNS = "id, time, sender, origin, payload";

/**
 * An open history file.
 *
 * @example Store a batch and read it back
 * ```ts
 * import assert from "node:assert/strict";
 * import { HistoryStore } from "./history_store.ts";
 *
 * const store = HistoryStore.open(":memory:"); // or a file's path
 * store.append({
 *   firstId: store.lastId + 1,
 *   count: 2,
 *   times: Float64Array.of(1000, 1001),
 *   senders: Uint16Array.of(0, 1),
 *   names: ["alice", "bob"],
 *   ends: Uint32Array.of(2, 5),
 *   bytes: new TextEncoder().encode("hiyo!"),
 * });
 * const last = store.last(10);
 * assert.deepEqual(last.map((r) => r.sender), ["alice", "bob"]);
 * assert.equal(new TextDecoder().decode(last[1].payload), "yo!");
 * store.close();
 * ```
 */
export class HistoryStore {
  readonly #db: DatabaseSync;
  readonly #options: HistoryStoreOptions;
  #insertMany?: StatementSync;
  #insertOne?: StatementSync;
  #lastId: number;

  private constructor(db: DatabaseSync, options: HistoryStoreOptions) {
    this.#db = db;
    this.#options = options;
    this.#lastId = this.#readLastId();
  }

  /**
   * Opens (creating it unless `readOnly`) the history file at `path`, in WAL mode.
   *
   * @throws {HistoryOpenError} `Cannot open history file "<path>": <why>` when the file
   * cannot be used: a directory, a missing directory, a file that is not SQLite or is
   * corrupt, another program's database, or one that cannot be written.
   */
  static open(path: string, options: HistoryStoreOptions = {}): HistoryStore {
    const fail = (why: string) =>
      new HistoryOpenError(`Cannot open history file ${JSON.stringify(path)}: ${why}`);
    checkPath(path, options.readOnly ?? false, fail);
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path, { readOnly: options.readOnly ?? false });
      db.exec(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5_000)}`);
      if (options.readOnly) {
        checkSchema(db, fail, true);
      } else {
        db.exec("PRAGMA journal_mode = WAL");
        db.exec("PRAGMA synchronous = NORMAL");
        // IMMEDIATE takes the write lock: a file we may read but not write fails here.
        db.exec("BEGIN IMMEDIATE");
        try {
          if (checkSchema(db, fail, false)) {
            db.exec(
              "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, " +
                "time INTEGER NOT NULL, sender TEXT NOT NULL, origin TEXT, payload BLOB NOT NULL)",
            );
            db.exec(`PRAGMA application_id = ${HISTORY_APPLICATION_ID}`);
            db.exec(`PRAGMA user_version = ${HISTORY_SCHEMA_VERSION}`);
          }
          db.exec("COMMIT");
        } catch (error) {
          if (db.isTransaction) db.exec("ROLLBACK");
          throw error;
        }
      }
      return new HistoryStore(db, options);
    } catch (error) {
      try {
        db?.close();
      } catch { /* Already failing. */ }
      if (error instanceof HistoryOpenError) throw error;
      throw fail(describe(error));
    }
  }

  /** The largest id ever stored (0 for a new file): the next message takes the next one. */
  get lastId(): number {
    return this.#lastId;
  }

  /**
   * Stores `batch` in one transaction: all of it or (when it throws) none of it.
   *
   * @throws The SQLite error (`database or disk is full`, an I/O error, ...).
   */
  append(batch: HistoryBatch): void {
    const db = this.#db;
    this.#insertMany ??= db.prepare(
      `INSERT INTO messages (${COLUMNS}) VALUES ` +
        Array(ROWS_PER_INSERT).fill("(?, ?, ?, NULL, ?)").join(", "),
    );
    this.#insertOne ??= db.prepare(`INSERT INTO messages (${COLUMNS}) VALUES (?, ?, ?, NULL, ?)`);
    const { firstId, count, times, senders, names, ends, bytes } = batch;
    const values: (number | string | Uint8Array)[] = new Array(4 * ROWS_PER_INSERT);
    db.exec("BEGIN");
    try {
      let i = 0;
      let start = 0;
      for (; i + ROWS_PER_INSERT <= count; i += ROWS_PER_INSERT) {
        for (let k = 0; k < ROWS_PER_INSERT; k++) {
          const m = i + k;
          values[4 * k] = firstId + m;
          values[4 * k + 1] = times[m];
          values[4 * k + 2] = names[senders[m]];
          values[4 * k + 3] = bytes.subarray(start, ends[m]);
          start = ends[m];
        }
        this.#insertMany.run(...values);
      }
      for (; i < count; i++) {
        this.#insertOne.run(
          firstId + i,
          times[i],
          names[senders[i]],
          bytes.subarray(start, ends[i]),
        );
        start = ends[i];
      }
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
    if (count > 0) this.#lastId = Math.max(this.#lastId, firstId + count - 1);
  }

  /**
   * The last `n` messages (fewer when fewer are stored), oldest first; with `upToId`,
   * the last `n` of those with an id of at most `upToId`.
   */
  last(n: number, upToId: number = Infinity): HistoryRecord[] {
    if (n <= 0) return [];
    const rows = Number.isFinite(upToId)
      ? this.#db
        .prepare(`SELECT ${COLUMNS} FROM messages WHERE id <= ? ORDER BY id DESC LIMIT ?`)
        .all(upToId, Math.trunc(n))
      : this.#db
        .prepare(`SELECT ${COLUMNS} FROM messages ORDER BY id DESC LIMIT ?`)
        .all(Math.trunc(n));
    return rows.reverse().map(toRecord);
  }

  /**
   * The messages `query` selects, oldest first, one at a time (a large history need not
   * fit in memory).
   */
  *query(query: HistoryQuery = {}): IterableIterator<HistoryRecord> {
    const where: string[] = [];
    const params: (number | string)[] = [];
    if (query.since !== undefined) {
      where.push("time >= ?");
      params.push(query.since);
    }
    if (query.from !== undefined) {
      where.push("sender = ?");
      params.push(query.from);
    }
    const filter = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
    let sql = `SELECT ${COLUMNS} FROM messages ${filter} ORDER BY id`;
    if (query.limit !== undefined) {
      // The last `limit` of them, still oldest first.
      sql = `SELECT * FROM (SELECT ${COLUMNS} FROM messages ${filter} ORDER BY id DESC LIMIT ?) ` +
        "ORDER BY id";
      params.push(Math.max(0, Math.trunc(query.limit)));
    }
    for (const row of this.#db.prepare(sql).iterate(...params)) yield toRecord(row);
  }

  /** How many messages are stored. */
  count(): number {
    return Number(this.#db.prepare("SELECT count(*) AS n FROM messages").get()!.n);
  }

  /**
   * Deletes the oldest messages beyond `maxMessages` and those older than `maxAgeMs`,
   * `maxRows` at most, in one transaction: call it again while it returns `maxRows`.
   * Age is judged along the id order (the oldest rows first), so it costs a range of
   * rows, never a scan of the table.
   *
   * @returns How many messages it deleted.
   */
  prune(now: number = Date.now(), maxRows: number = PRUNE_BATCH_ROWS): number {
    const { maxMessages, maxAgeMs } = this.#options;
    if (maxMessages === undefined && maxAgeMs === undefined) return 0;
    const oldest = this.#db.prepare("SELECT id, time FROM messages ORDER BY id LIMIT 1").get();
    if (oldest === undefined) return 0;
    const firstId = Number(oldest.id);
    let deleted = 0;
    const db = this.#db;
    db.exec("BEGIN");
    try {
      if (maxMessages !== undefined && this.#lastId - firstId + 1 > maxMessages) {
        const upTo = Math.min(this.#lastId - maxMessages, firstId + maxRows - 1);
        deleted += Number(db.prepare("DELETE FROM messages WHERE id <= ?").run(upTo).changes);
      }
      if (maxAgeMs !== undefined && deleted < maxRows && Number(oldest.time) < now - maxAgeMs) {
        deleted += Number(
          db.prepare("DELETE FROM messages WHERE id < ? AND time < ?")
            .run(firstId + maxRows, now - maxAgeMs).changes,
        );
      }
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
    return deleted;
  }

  /**
   * Runs a checkpoint that moves the whole log into the database file and empties it.
   * Returns false when readers kept it from finishing.
   */
  checkpoint(): boolean {
    const row = this.#db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get();
    return Number(row?.busy ?? 0) === 0;
  }

  /** Runs a raw statement: for tests that simulate a full disk (`PRAGMA max_page_count`). */
  exec(sql: string): void {
    this.#db.exec(sql);
  }

  /** Closes the file. */
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  #readLastId(): number {
    const seq = this.#db
      .prepare("SELECT seq FROM sqlite_sequence WHERE name = 'messages'")
      .get();
    const max = this.#db.prepare("SELECT max(id) AS id FROM messages").get();
    return Math.max(Number(seq?.seq ?? 0), Number(max?.id ?? 0));
  }
}

/** The clearer reasons SQLite would only call "unable to open database file". */
function checkPath(path: string, readOnly: boolean, fail: (why: string) => Error): void {
  if (path === ":memory:") return;
  let info: Deno.FileInfo | undefined;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    const missing = error instanceof Deno.errors.NotFound ||
      error instanceof Deno.errors.NotADirectory;
    if (!missing) throw fail(describe(error));
  }
  if (info?.isDirectory) throw fail("it is a directory");
  if (info === undefined) {
    if (readOnly) throw fail("no such file");
    const slash = path.lastIndexOf("/");
    const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
    try {
      if (!Deno.statSync(dir).isDirectory) throw fail(`${JSON.stringify(dir)} is not a directory`);
    } catch (error) {
      if (error instanceof HistoryOpenError) throw error;
      if (error instanceof Deno.errors.NotFound) {
        throw fail(`no such directory ${JSON.stringify(dir)}`);
      }
      throw fail(describe(error));
    }
  }
}

/**
 * Checks that `db` is a parrot history or empty (reading it also proves it is SQLite).
 * Returns true when it is empty and the schema must be created.
 */
function checkSchema(db: DatabaseSync, fail: (why: string) => Error, readOnly: boolean): boolean {
  const appId = Number(db.prepare("PRAGMA application_id").get()!.application_id);
  const version = Number(db.prepare("PRAGMA user_version").get()!.user_version);
  const tables = Number(
    db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get()!.n,
  );
  if (appId === 0 && tables === 0) {
    if (readOnly) throw fail("it is not a parrot history file (it is an empty database)");
    return true;
  }
  if (appId !== HISTORY_APPLICATION_ID) {
    throw fail("it is not a parrot history file (another program's database)");
  }
  if (version > HISTORY_SCHEMA_VERSION) {
    throw fail(`its schema version ${version} is newer than this parrot's`);
  }
  return false;
}

/** The error's message as the part after the colon: first letter small, no period. */
function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // One line, without Deno's " (os error 2): stat '...'" tail.
  const line = message.split("\n")[0].replace(/ \(os error \d+\).*$/, "").replace(/\.$/, "");
  return line.charAt(0).toLowerCase() + line.slice(1);
}

function toRecord(row: Record<string, unknown>): HistoryRecord {
  return {
    id: Number(row.id),
    time: Number(row.time),
    sender: String(row.sender),
    origin: row.origin === null ? null : String(row.origin),
    payload: row.payload as Uint8Array,
  };
}
