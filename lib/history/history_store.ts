/**
 * The message history's database: one SQLite file (`node:sqlite`, built into Deno) with
 * one table, `batches`, a row per batch of messages, in the order the server printed them.
 *
 * It owns the schema, the pragmas (and so the durability contract), the clear one-line
 * errors of a file that cannot be used, the inserts, the retention (by count and age, in
 * whole batches, pruned in bounded passes) and the queries, which unpack the batches. It
 * is synchronous, as `DatabaseSync` is: the server never calls it on its hot path;
 * `HistoryWriter` hands it whole batches, in a Worker (`history_worker.ts`).
 *
 * Why a row per batch rather than per message: SQLite spends about 3 µs on a row, more
 * than the server spends on a message at a million messages a second. A batch of a few
 * hundred messages (up to {@linkcode ROW_BYTES}; a larger batch the writer hands over is
 * several rows, in one transaction) is one row of a few blobs, stored for a small
 * fraction of a microsecond a message. Reads pay instead: a query reads whole rows,
 * which is cheap for what reads do (the last messages, or all of them in order). The
 * pages are 16 KB (a new file's), so that a row is a few writes to the log, not dozens.
 *
 * Durability (WAL mode, `synchronous = NORMAL`): a batch is one transaction. Once its
 * commit returns, the batch is in the write-ahead log in the operating system's page
 * cache, so it survives `kill -9` of the process (SQLite replays the log on the next
 * open). It reaches the disk at the next checkpoint (`history_worker.ts` runs one about
 * every 4 MB of messages; alone, a commit runs one every 4 MB of log), so a power
 * loss or an operating system crash can lose the batches committed since then, but never
 * corrupts the file. `FULL` would make each commit wait for an fsync; `NORMAL` keeps the
 * database consistent at a fraction of the cost, which is SQLite's advice for WAL.
 *
 * Schema, version 2 (`PRAGMA user_version`; version 1, a row per message, came before
 * any release and is refused with a clear error): `batches(last_id INTEGER PRIMARY KEY
 * AUTOINCREMENT, count, first_time, last_time, names, senders, times, ends, payloads)`,
 * a row per batch:
 * - `last_id` is the id of the batch's last message; its messages have the ids
 *   `last_id - count + 1` to `last_id`, one by one (ids only grow, with gaps where a
 *   batch was lost; `AUTOINCREMENT` remembers the largest, so that ids are not used
 *   again after the retention emptied the table);
 * - `first_time` and `last_time` are its earliest and latest times, in milliseconds
 *   since the epoch;
 * - `names` is a JSON array of its distinct senders;
 * - `senders` has a 16-bit index into `names` for each message, `times` a 32-bit number
 *   of milliseconds after `first_time`, `ends` the 32-bit offset where its payload ends
 *   in `payloads` (it starts where the previous one ended), all little-endian;
 * - `payloads` has the payloads, one after another, as received.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";

/** `PRAGMA application_id` of a parrot history file: "prrt". */
export const HISTORY_APPLICATION_ID = 0x70727274;
/** `PRAGMA user_version` of the schema this module writes and reads. */
export const HISTORY_SCHEMA_VERSION = 2;
/** Most messages in one batch (a `HistoryWriter` batch holds 4096 by default). */
export const MAX_BATCH_MESSAGES = 65_535;
/** Messages one {@linkcode HistoryStore.prune} pass deletes at most (but one whole batch). */
export const PRUNE_PASS_MESSAGES = 100_000;

/** Bytes of a page of a new file: a batch of 4096 messages of 64 bytes takes 17. */
const PAGE_SIZE = 16_384;
/** Bytes of log after which a commit also checkpoints, by default (SQLite's, in bytes). */
const CHECKPOINT_BYTES = 4 * 1024 * 1024;

/**
 * Bytes of a row at most (but one message): a batch beyond is split into several rows.
 * A larger row costs SQLite buffers that glibc maps and unmaps for each (the server
 * task's `GLIBC_TUNABLES` maps every allocation of 64 KB or more): twice as slow in all.
 */
export const ROW_BYTES = 48 * 1024;

/** Whether typed arrays are little-endian here, as the file's blobs are. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** One stored message. */
export interface HistoryRecord {
  /** Its place in the order: larger is later. */
  id: number;
  /** When the server printed it, in milliseconds since the epoch. */
  time: number;
  /** The sender's name, as the server printed it. */
  sender: string;
  /** The server it came from in cluster mode; null for the server's own clients (always, for now). */
  origin: string | null;
  /** The payload's bytes (a view of its batch's payloads when read from the file). */
  payload: Uint8Array;
}

/**
 * How a batch names a message's sender: its name, and for a message of another server
 * (cluster mode) a space and that server's name. A space is never part of a name, so
 * the two are told apart again by {@linkcode splitSenderKey}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { senderKey, splitSenderKey } from "./history_store.ts";
 *
 * assert.equal(senderKey("ann"), "ann");
 * assert.deepEqual(splitSenderKey(senderKey("ann", "east")), { sender: "ann", origin: "east" });
 * ```
 */
export function senderKey(sender: string, origin?: string): string {
  return origin === undefined ? sender : `${sender} ${origin}`;
}

/** The sender and origin (null for the server's own clients) of a {@linkcode senderKey}. */
export function splitSenderKey(key: string): { sender: string; origin: string | null } {
  const space = key.indexOf(" ");
  return space < 0
    ? { sender: key, origin: null }
    : { sender: key.slice(0, space), origin: key.slice(space + 1) };
}

/**
 * Messages in the compact form the writer builds and a Worker can take: the payloads
 * in order in `bytes` (one after another, or with `starts`, with gaps between them: the
 * framing of a read the writer copied whole), the senders as indexes into `names`.
 */
export interface HistoryBatch {
  /** The id of the first message; the others follow one by one. */
  firstId: number;
  /** How many messages: at most {@linkcode MAX_BATCH_MESSAGES}. */
  count: number;
  /** Each message's time, in milliseconds since the epoch (within 49 days of each other). */
  times: Float64Array;
  /** Each message's sender, as an index into `names`. */
  senders: Uint16Array;
  /** The distinct sender names of the batch. */
  names: string[];
  /** Where each message's payload ends in `bytes`. */
  ends: Uint32Array;
  /**
   * Where each message's payload starts in `bytes`, at or after the previous one's end.
   * Without it, each starts where the previous one ended.
   */
  starts?: Uint32Array;
  /** The payloads. */
  bytes: Uint8Array;
}

/**
 * The buffers of a batch's arrays: what moves it to another thread without a copy
 * (`postMessage(message, batchBuffers(batch))`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchBuffers } from "./history_store.ts";
 *
 * const batch = {
 *   firstId: 1,
 *   count: 1,
 *   times: Float64Array.of(0),
 *   senders: Uint16Array.of(0),
 *   names: ["ann"],
 *   ends: Uint32Array.of(2),
 *   bytes: Uint8Array.of(104, 105),
 * };
 * assert.equal(batchBuffers(batch).length, 4);
 * ```
 */
export function batchBuffers(batch: HistoryBatch): ArrayBuffer[] {
  const { times, senders, starts, ends, bytes } = batch;
  const arrays = starts ? [times, senders, starts, ends, bytes] : [times, senders, ends, bytes];
  return arrays.map((array) => array.buffer as ArrayBuffer);
}

/** Options of {@linkcode HistoryStore.open}. */
export interface HistoryStoreOptions {
  /** Open for queries only (`deno task history`): the file must exist. Default false. */
  readOnly?: boolean;
  /**
   * Most messages kept; {@linkcode HistoryStore.prune} deletes the oldest batches
   * beyond (whole batches: it keeps at least this many). Default: no limit.
   */
  maxMessages?: number;
  /**
   * Oldest message kept, in milliseconds; {@linkcode HistoryStore.prune} deletes the
   * batches whose newest message is older. Default: no limit.
   */
  maxAgeMs?: number;
  /** Milliseconds a statement waits for a lock another connection holds. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * Bytes of log after which a commit also runs a checkpoint (`wal_autocheckpoint`).
   * Default 4 MiB; larger when another connection checkpoints (`history_worker.ts`).
   */
  autoCheckpointBytes?: number;
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

const BATCH_COLUMNS = "last_id, count, first_time, names, senders, times, ends, payloads";

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
  #insert?: StatementSync;
  /** The times of the batch being appended, as offsets: reused. */
  #offsets = new Uint32Array(0);
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
   * corrupt, another program's database, a history of another schema version, or one
   * that cannot be written.
   */
  static open(path: string, options: HistoryStoreOptions = {}): HistoryStore {
    const fail = (why: string) =>
      new HistoryOpenError(`Cannot open history file ${JSON.stringify(path)}: ${why}`);
    if (!LITTLE_ENDIAN) throw fail("this machine is big-endian, and the file's format is not");
    checkPath(path, options.readOnly ?? false, fail);
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path, { readOnly: options.readOnly ?? false });
      db.exec(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5_000)}`);
      if (options.readOnly) {
        checkSchema(db, fail, true);
      } else {
        // Before the file has content only (then it stays): fewer, larger log writes.
        db.exec(`PRAGMA page_size = ${PAGE_SIZE}`);
        db.exec("PRAGMA journal_mode = WAL");
        db.exec("PRAGMA synchronous = NORMAL");
        const checkpointBytes = options.autoCheckpointBytes ?? CHECKPOINT_BYTES;
        db.exec(`PRAGMA wal_autocheckpoint = ${Math.ceil(checkpointBytes / pageSize(db))}`);
        // IMMEDIATE takes the write lock: a file we may read but not write fails here.
        db.exec("BEGIN IMMEDIATE");
        try {
          if (checkSchema(db, fail, false)) {
            db.exec(
              "CREATE TABLE batches (last_id INTEGER PRIMARY KEY AUTOINCREMENT, " +
                "count INTEGER NOT NULL, first_time INTEGER NOT NULL, " +
                "last_time INTEGER NOT NULL, names TEXT NOT NULL, senders BLOB NOT NULL, " +
                "times BLOB NOT NULL, ends BLOB NOT NULL, payloads BLOB NOT NULL)",
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
   * Stores `batch` as one row (or several of {@linkcode ROW_BYTES} at most), in one
   * transaction: all of it or (when it throws) none of it. A batch with `starts` has its
   * payloads moved together first, in place: its `bytes`, `starts` and `ends` change.
   *
   * @throws {RangeError} When the batch is not one the file can hold: more than
   * {@linkcode MAX_BATCH_MESSAGES} messages, arrays shorter than `count`, ends past the
   * bytes, payloads out of order, or times more than 49 days apart.
   * @throws The SQLite error (`database or disk is full`, an I/O error, an id taken, ...).
   */
  append(batch: HistoryBatch): void {
    const { firstId, count, times, senders, ends, bytes } = batch;
    if (count <= 0) return;
    if (
      count > MAX_BATCH_MESSAGES || times.length < count || senders.length < count ||
      ends.length < count || ends[count - 1] > bytes.length
    ) {
      throw new RangeError(`Cannot store a batch of ${count} messages: it is malformed`);
    }
    if (batch.starts !== undefined) packPayloads(batch);
    let first = Infinity;
    let last = -Infinity;
    for (let i = 0; i < count; i++) {
      const time = times[i];
      if (time < first) first = time;
      if (time > last) last = time;
    }
    first = Math.floor(first);
    last = Math.floor(last);
    if (!(last - first <= 0xffff_ffff)) {
      throw new RangeError(
        `Cannot store a batch of ${count} messages: its times are too far apart`,
      );
    }
    if (this.#offsets.length < count) this.#offsets = new Uint32Array(MAX_BATCH_MESSAGES);
    const offsets = this.#offsets;
    for (let i = 0; i < count; i++) offsets[i] = Math.floor(times[i]) - first;
    this.#insert ??= this.#db.prepare(
      "INSERT INTO batches (last_id, count, first_time, last_time, names, senders, times, " +
        "ends, payloads) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    const lastId = firstId + count - 1;
    const db = this.#db;
    db.exec("BEGIN");
    try {
      // Rows of ROW_BYTES at most, counting the index (10 bytes a message).
      let from = 0;
      let start = 0;
      while (from < count) {
        let to = from + 1;
        while (to < count && ends[to] - start + (to + 1 - from) * 10 <= ROW_BYTES) to++;
        this.#insertRow(batch, offsets, first, from, to, start);
        start = ends[to - 1];
        from = to;
      }
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
    this.#lastId = Math.max(this.#lastId, lastId);
  }

  /** Inserts the messages `from` to `to` (excluded) of `batch` as one row. */
  #insertRow(
    batch: HistoryBatch,
    offsets: Uint32Array,
    first: number,
    from: number,
    to: number,
    start: number,
  ): void {
    const { firstId, senders, names, ends, bytes } = batch;
    const count = to - from;
    let rowNames = names;
    let rowSenders = senders.subarray(from, to);
    if (from > 0 || to < batch.count) {
      // Only the names of this row, and the senders as indexes into them.
      rowNames = [];
      const index = new Int32Array(names.length).fill(-1);
      rowSenders = new Uint16Array(count);
      for (let i = 0; i < count; i++) {
        const sender = senders[from + i];
        if (index[sender] < 0) index[sender] = rowNames.push(names[sender]) - 1;
        rowSenders[i] = index[sender];
      }
    }
    let rowEnds = ends.subarray(from, to);
    if (start > 0) {
      rowEnds = new Uint32Array(count);
      for (let i = 0; i < count; i++) rowEnds[i] = ends[from + i] - start;
    }
    let rowFirst = first;
    let rowLast = first;
    let rowOffsets = offsets.subarray(from, to);
    let low = Infinity;
    for (let i = 0; i < count; i++) {
      low = Math.min(low, rowOffsets[i]);
      rowLast = Math.max(rowLast, first + rowOffsets[i]);
    }
    if (low > 0) {
      rowFirst = first + low;
      rowOffsets = rowOffsets.map((offset) => offset - low);
    }
    this.#insert!.run(
      firstId + to - 1,
      count,
      rowFirst,
      rowLast,
      JSON.stringify(rowNames),
      bytesOf(rowSenders, count),
      bytesOf(rowOffsets, count),
      bytesOf(rowEnds, count),
      bytes.subarray(start, ends[to - 1]),
    );
  }

  /**
   * The last `n` messages (fewer when fewer are stored), oldest first; with `upToId`,
   * the last `n` of those with an id of at most `upToId`. Reads the newest batches only.
   */
  last(n: number, upToId: number = Infinity): HistoryRecord[] {
    n = Math.trunc(n);
    if (n <= 0) return [];
    const newest: HistoryRecord[] = [];
    // A batch holds ids up to MAX_BATCH_MESSAGES - 1 past its first: the rest are later.
    const rows = Number.isFinite(upToId)
      ? this.#db
        .prepare(
          `SELECT ${BATCH_COLUMNS} FROM batches WHERE last_id <= ? AND last_id - count < ? ` +
            "ORDER BY last_id DESC",
        )
        .iterate(upToId + MAX_BATCH_MESSAGES - 1, upToId)
      : this.#db.prepare(`SELECT ${BATCH_COLUMNS} FROM batches ORDER BY last_id DESC`).iterate();
    for (const row of rows) {
      const batch = new StoredBatch(row);
      for (let i = Math.min(batch.count, upToId - batch.firstId + 1) - 1; i >= 0; i--) {
        newest.push(batch.record(i));
        if (newest.length === n) break;
      }
      if (newest.length === n) break;
    }
    return newest.reverse();
  }

  /**
   * The messages `query` selects, oldest first, one at a time (a large history need not
   * fit in memory: it reads a batch at a time, or with `limit` the last batches).
   */
  *query(query: HistoryQuery = {}): IterableIterator<HistoryRecord> {
    const { since, from, limit } = query;
    const where: string[] = [];
    const params: (number | string)[] = [];
    if (since !== undefined) {
      where.push("last_time >= ?");
      params.push(since);
    }
    if (from !== undefined) {
      // The sender's own messages, and those of the same name from other servers.
      where.push(
        "EXISTS (SELECT 1 FROM json_each(names) WHERE value = ? OR substr(value, 1, ?) = ?)",
      );
      params.push(from, from.length + 1, `${from} `);
    }
    const filter = where.length > 0 ? `WHERE ${where.join(" AND ")}` : "";
    // The indexes into a batch's names that are `from`'s (null: every sender's).
    const sendersOf = (batch: StoredBatch): Set<number> | null =>
      from === undefined ? null : new Set(
        batch.names.flatMap((key, index) => splitSenderKey(key).sender === from ? [index] : []),
      );
    const selects = (batch: StoredBatch, senders: Set<number> | null, i: number) =>
      (since === undefined || batch.time(i) >= since) &&
      (senders === null || senders.has(batch.senders[i]));
    if (limit === undefined) {
      const sql = `SELECT ${BATCH_COLUMNS} FROM batches ${filter} ORDER BY last_id`;
      for (const row of this.#db.prepare(sql).iterate(...params)) {
        const batch = new StoredBatch(row);
        const sender = sendersOf(batch);
        for (let i = 0; i < batch.count; i++) {
          if (selects(batch, sender, i)) yield batch.record(i);
        }
      }
      return;
    }
    // The last `limit` of them, still oldest first: read from the newest batch back.
    const wanted = Math.max(0, Math.trunc(limit));
    const newest: HistoryRecord[] = [];
    if (wanted > 0) {
      const sql = `SELECT ${BATCH_COLUMNS} FROM batches ${filter} ORDER BY last_id DESC`;
      for (const row of this.#db.prepare(sql).iterate(...params)) {
        const batch = new StoredBatch(row);
        const sender = sendersOf(batch);
        for (let i = batch.count - 1; i >= 0 && newest.length < wanted; i--) {
          if (selects(batch, sender, i)) newest.push(batch.record(i));
        }
        if (newest.length === wanted) break;
      }
    }
    yield* newest.reverse();
  }

  /** How many messages are stored. */
  count(): number {
    return Number(this.#db.prepare("SELECT total(count) AS n FROM batches").get()!.n);
  }

  /**
   * Deletes the oldest batches beyond `maxMessages` and those older than `maxAgeMs`, in
   * one transaction, among the batches of the oldest `maxPass` messages (and at least
   * the oldest batch): call it again while it deletes some.
   *
   * Whole batches only, so it keeps at least `maxMessages` messages (a batch goes once
   * all its messages are beyond the newest `maxMessages`), and a message older than
   * `maxAgeMs` stays while a newer one of its batch does (a batch spans 50 ms at most
   * when `HistoryWriter` makes it). Age is judged along the id order (the oldest batches
   * first), so a pass costs a range of rows, never a scan of the table.
   *
   * @returns How many messages it deleted.
   */
  prune(now: number = Date.now(), maxPass: number = PRUNE_PASS_MESSAGES): number {
    const { maxMessages, maxAgeMs } = this.#options;
    if (maxMessages === undefined && maxAgeMs === undefined) return 0;
    const db = this.#db;
    const oldest = db.prepare(
      "SELECT last_id, count, last_time FROM batches ORDER BY last_id LIMIT 1",
    )
      .get();
    if (oldest === undefined) return 0;
    const oldestLastId = Number(oldest.last_id);
    // The batches of this pass end at or before this id.
    const passEnd = Math.max(oldestLastId, oldestLastId - Number(oldest.count) + maxPass);
    const deleteUpTo = (sql: string, ...params: number[]) => {
      let messages = 0;
      for (const row of db.prepare(sql).all(...params)) messages += Number(row.count);
      return messages;
    };
    const byCount = maxMessages !== undefined && this.#lastId - maxMessages >= oldestLastId;
    const byAge = maxAgeMs !== undefined && Number(oldest.last_time) < now - maxAgeMs;
    if (!byCount && !byAge) return 0; // Nothing to delete: no transaction either.
    let deleted = 0;
    db.exec("BEGIN");
    try {
      if (byCount) {
        deleted += deleteUpTo(
          "DELETE FROM batches WHERE last_id <= ? RETURNING count",
          Math.min(this.#lastId - maxMessages!, passEnd),
        );
      }
      if (byAge) {
        deleted += deleteUpTo(
          "DELETE FROM batches WHERE last_id <= ? AND last_time < ? RETURNING count",
          passEnd,
          now - maxAgeMs!,
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
   * Runs a checkpoint: by default one that moves the whole log into the database file
   * and empties it; `PASSIVE` copies what it can without waiting for anyone, which lets
   * another connection go on writing meanwhile. Returns false when others kept it from
   * finishing.
   */
  checkpoint(mode: "TRUNCATE" | "PASSIVE" = "TRUNCATE"): boolean {
    const row = this.#db.prepare(`PRAGMA wal_checkpoint(${mode})`).get();
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
      .prepare("SELECT seq FROM sqlite_sequence WHERE name = 'batches'")
      .get();
    const max = this.#db.prepare("SELECT max(last_id) AS id FROM batches").get();
    return Math.max(Number(seq?.seq ?? 0), Number(max?.id ?? 0));
  }
}

function pageSize(db: DatabaseSync): number {
  return Number(db.prepare("PRAGMA page_size").get()!.page_size);
}

/** The first `count` elements of `array` as bytes, without a copy. */
/**
 * Moves the payloads of a batch with `starts` together at the front of its `bytes`, in
 * place, and sets `starts` and `ends` to where they are then.
 *
 * @throws {RangeError} When a payload starts before the previous one ended, or ends
 * before it starts: moving it would overwrite another.
 */
function packPayloads(batch: HistoryBatch): void {
  const { count, ends, bytes } = batch;
  const starts = batch.starts!;
  if (starts.length < count) {
    throw new RangeError(`Cannot store a batch of ${count} messages: it is malformed`);
  }
  let to = 0;
  let previousEnd = 0;
  for (let i = 0; i < count; i++) {
    const start = starts[i];
    const end = ends[i];
    if (start < previousEnd || end < start) {
      throw new RangeError(`Cannot store a batch of ${count} messages: its payloads overlap`);
    }
    previousEnd = end;
    if (start !== to) bytes.copyWithin(to, start, end);
    starts[i] = to;
    to += end - start;
    ends[i] = to;
  }
}

function bytesOf(array: Uint16Array | Uint32Array, count: number): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, count * array.BYTES_PER_ELEMENT);
}

/**
 * One row of `batches`, unpacked: its sizes are checked against `count` before they are
 * trusted, so a damaged row is an error, never a wrong message.
 */
class StoredBatch {
  readonly firstId: number;
  readonly count: number;
  readonly names: string[];
  readonly senders: Uint16Array;
  readonly #firstTime: number;
  readonly #times: Uint32Array;
  readonly #ends: Uint32Array;
  readonly #payloads: Uint8Array;

  constructor(row: Record<string, unknown>) {
    const lastId = Number(row.last_id);
    const count = Number(row.count);
    const damaged = (why: string) =>
      new Error(`The history's batch of the ids up to ${lastId} is damaged: ${why}`);
    if (!Number.isInteger(count) || count < 1 || count > MAX_BATCH_MESSAGES) {
      throw damaged(`it counts ${row.count} messages`);
    }
    this.count = count;
    this.firstId = lastId - count + 1;
    this.#firstTime = Number(row.first_time);
    let names: unknown;
    try {
      names = JSON.parse(String(row.names));
    } catch {
      names = undefined;
    }
    if (!Array.isArray(names) || !names.every((name) => typeof name === "string")) {
      throw damaged("its names are not a list of names");
    }
    this.names = names;
    this.senders = typedView(row.senders, Uint16Array, count, damaged);
    this.#times = typedView(row.times, Uint32Array, count, damaged);
    this.#ends = typedView(row.ends, Uint32Array, count, damaged);
    if (!(row.payloads instanceof Uint8Array)) throw damaged("its payloads are not bytes");
    this.#payloads = row.payloads;
    let start = 0;
    for (let i = 0; i < count; i++) {
      if (this.#ends[i] < start || this.senders[i] >= names.length) {
        throw damaged(`its message ${i + 1} is out of bounds`);
      }
      start = this.#ends[i];
    }
    if (start > this.#payloads.length) throw damaged("its payloads are cut short");
  }

  /** The time of the message at `index`. */
  time(index: number): number {
    return this.#firstTime + this.#times[index];
  }

  /** The message at `index`, its payload a view of the batch's payloads. */
  record(index: number): HistoryRecord {
    const { sender, origin } = splitSenderKey(this.names[this.senders[index]]);
    return {
      id: this.firstId + index,
      time: this.time(index),
      sender,
      origin,
      payload: this.#payloads.subarray(index === 0 ? 0 : this.#ends[index - 1], this.#ends[index]),
    };
  }
}

/** `count` elements of the blob `value`, aligned (copied when it is not). */
function typedView<T extends Uint16Array | Uint32Array>(
  value: unknown,
  Type: { new (buffer: ArrayBuffer, offset: number, length: number): T; BYTES_PER_ELEMENT: number },
  count: number,
  damaged: (why: string) => Error,
): T {
  const size = Type.BYTES_PER_ELEMENT;
  if (!(value instanceof Uint8Array) || value.length !== count * size) {
    throw damaged("its index does not match its count");
  }
  const bytes = value.byteOffset % size === 0 ? value : value.slice();
  return new Type(bytes.buffer as ArrayBuffer, bytes.byteOffset, count);
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
  if (version < HISTORY_SCHEMA_VERSION) {
    // Version 1 (a row per message) came before any release: no migration.
    throw fail(
      `its schema version ${version} is older than this parrot's (a row per message): ` +
        "move it away to start a new one",
    );
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
