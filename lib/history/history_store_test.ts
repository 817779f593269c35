import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type HistoryBatch, HistoryOpenError, HistoryStore } from "./history_store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A batch of `messages` ([sender, payload]) from `firstId`, at `time`. */
export function batchOf(
  firstId: number,
  messages: [string, string | Uint8Array][],
  time = 1_000,
): HistoryBatch {
  const names: string[] = [];
  const senders = new Uint16Array(messages.length);
  const ends = new Uint32Array(messages.length);
  const parts = messages.map(([, p]) => typeof p === "string" ? encoder.encode(p) : p);
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let end = 0;
  messages.forEach(([sender], i) => {
    let index = names.indexOf(sender);
    if (index < 0) index = names.push(sender) - 1;
    senders[i] = index;
    bytes.set(parts[i], end);
    end += parts[i].length;
    ends[i] = end;
  });
  return {
    firstId,
    count: messages.length,
    times: new Float64Array(messages.length).fill(time),
    senders,
    names,
    ends,
    bytes,
  };
}

function tempFile(t: { name: string }): { path: string; dir: string } {
  const dir = Deno.makeTempDirSync({ prefix: "parrot-history-" });
  return { dir, path: `${dir}/${t.name.replace(/\W+/g, "_").slice(0, 40)}.db` };
}

function openError(path: string, why: string) {
  return {
    name: "HistoryOpenError",
    message: `Cannot open history file ${JSON.stringify(path)}: ${why}`,
  };
}

Deno.test("HistoryStore.open() creates a WAL database and append() stores batches in order", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path);
  assert.equal(store.lastId, 0);
  store.append(batchOf(1, [["alice", "one"], ["bob", "two"]]));
  store.append(batchOf(3, [["alice", "three"]]));
  assert.equal(store.lastId, 3);
  store.close();
  const db = new DatabaseSync(path);
  assert.equal(db.prepare("PRAGMA journal_mode").get()!.journal_mode, "wal");
  assert.equal(db.prepare("PRAGMA user_version").get()!.user_version, 2);
  // A row per batch: its last id, count, senders and payloads.
  const rows = db.prepare("SELECT last_id, count, names, payloads FROM batches ORDER BY last_id")
    .all();
  assert.deepEqual(
    rows.map((r) =>
      `${r.last_id} ${r.count} ${r.names} ${decoder.decode(r.payloads as Uint8Array)}`
    ),
    ['2 2 ["alice","bob"] onetwo', '3 1 ["alice"] three'],
  );
  db.close();
  const reader = HistoryStore.open(path, { readOnly: true });
  assert.deepEqual(
    [...reader.query()].map((r) => `${r.id} ${r.sender}: ${decoder.decode(r.payload)}`),
    ["1 alice: one", "2 bob: two", "3 alice: three"],
  );
  reader.close();
  const again = HistoryStore.open(path);
  assert.equal(again.lastId, 3);
  again.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore.append() keeps binary payloads exact, batches of any size", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path);
  const payloads = Array.from(
    { length: 200 },
    (_, i) => Uint8Array.from({ length: i }, (_, k) => (k * 7 + i) & 255),
  );
  store.append(batchOf(1, payloads.map((p, i) => [`c${i % 3}`, p])));
  const back = store.last(1_000);
  assert.equal(back.length, 200);
  back.forEach((r, i) => {
    assert.equal(r.id, i + 1);
    assert.equal(r.sender, `c${i % 3}`);
    assert.equal(r.origin, null);
    assert.deepEqual(r.payload, payloads[i]);
  });
  store.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore.append() splits a large batch into rows, read back as one", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path);
  // 300 messages of 500 bytes from 7 senders, with times 10 ms apart: several rows.
  const payload = (i: number) => Uint8Array.from({ length: 500 }, (_, k) => (i + k) & 255);
  const batch = batchOf(1, Array.from({ length: 300 }, (_, i) => [`c${i % 7}`, payload(i)]));
  batch.times = Float64Array.from({ length: 300 }, (_, i) => 5_000 + 10 * i);
  store.append(batch);
  const db = new DatabaseSync(path);
  const rows = db.prepare("SELECT last_id, count FROM batches ORDER BY last_id").all();
  db.close();
  assert.ok(rows.length > 1, `${rows.length} rows`);
  assert.equal(rows.at(-1)!.last_id, 300);
  assert.equal(rows.reduce((n, r) => n + Number(r.count), 0), 300);
  const back = [...store.query()];
  assert.equal(back.length, 300);
  back.forEach((r, i) => {
    assert.equal(r.id, i + 1);
    assert.equal(r.time, 5_000 + 10 * i);
    assert.equal(r.sender, `c${i % 7}`);
    assert.deepEqual(r.payload, payload(i));
  });
  store.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore.append() leaves out the bytes between payloads of a batch with starts", () => {
  const store = HistoryStore.open(":memory:");
  const bytes = new TextEncoder().encode("MSG 2\nhi\nMSG 0\n\nMSG 3\nyo!\n");
  const starts = Uint32Array.of(6, 15, 22);
  const ends = Uint32Array.of(8, 15, 25);
  store.append({
    firstId: 1,
    count: 3,
    times: Float64Array.of(1, 2, 3),
    senders: Uint16Array.of(0, 0, 0),
    names: ["ann"],
    starts,
    ends,
    bytes,
  });
  assert.deepEqual(store.last(3).map((r) => new TextDecoder().decode(r.payload)), [
    "hi",
    "",
    "yo!",
  ]);
  // Packed in place: the batch now says where each payload is.
  assert.deepEqual([...starts], [0, 2, 2]);
  assert.deepEqual([...ends], [2, 2, 5]);
  assert.throws(
    () =>
      store.append({
        firstId: 4,
        count: 2,
        times: Float64Array.of(1, 2),
        senders: Uint16Array.of(0, 0),
        names: ["ann"],
        starts: Uint32Array.of(0, 1),
        ends: Uint32Array.of(2, 3),
        bytes,
      }),
    { name: "RangeError", message: "Cannot store a batch of 2 messages: its payloads overlap" },
  );
  assert.equal(store.lastId, 3, "nothing of the refused batch is stored");
  store.close();
});

Deno.test("HistoryStore.append() refuses a malformed batch with a RangeError", () => {
  const store = HistoryStore.open(":memory:");
  const ok = batchOf(1, [["a", "x"], ["a", "y"]]);
  assert.throws(() => store.append({ ...ok, ends: Uint32Array.of(1) }), RangeError);
  assert.throws(() => store.append({ ...ok, ends: Uint32Array.of(1, 9) }), RangeError);
  assert.throws(() => store.append({ ...ok, times: Float64Array.of(0, 2 ** 33) }), RangeError);
  assert.throws(() => store.append({ ...ok, count: 70_000 }), RangeError);
  assert.equal(store.count(), 0);
  store.append(ok);
  assert.equal(store.count(), 2);
  store.close();
});

Deno.test("HistoryStore.append() stores all of a batch or none of it", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path);
  store.append(batchOf(1, [["a", "x"]]));
  // 200 KB: several rows. The file may grow by about one of them only (a full disk),
  // so the first row goes in and a later one fails: the whole batch rolls back.
  const db = new DatabaseSync(path);
  const pages = Number(db.prepare("PRAGMA page_count").get()!.page_count);
  const pageSize = Number(db.prepare("PRAGMA page_size").get()!.page_size);
  db.close();
  store.exec(`PRAGMA max_page_count = ${pages + Math.ceil(60_000 / pageSize)}`);
  const rows: [string, Uint8Array][] = Array.from(
    { length: 200 },
    () => ["a", new Uint8Array(1_000)],
  );
  assert.throws(() => store.append(batchOf(2, rows)), /full/);
  assert.equal(store.count(), 1);
  assert.equal(store.lastId, 1);
  store.exec("PRAGMA max_page_count = 1000000");
  store.append(batchOf(2, [["a", "y"]]));
  assert.deepEqual(store.last(5).map((r) => decoder.decode(r.payload)), ["x", "y"]);
  store.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore.last() returns the last n in order", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path);
  store.append(
    batchOf(1, Array.from({ length: 10 }, (_, i) => ["a", `m${i}`] as [string, string])),
  );
  assert.deepEqual(store.last(3).map((r) => decoder.decode(r.payload)), ["m7", "m8", "m9"]);
  assert.deepEqual(store.last(0), []);
  assert.equal(store.last(50).length, 10);
  assert.deepEqual(store.last(2, 5).map((r) => r.id), [4, 5]);
  assert.deepEqual(store.last(20, 3).map((r) => r.id), [1, 2, 3]);
  store.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore.query() selects by time and sender, and limit keeps the last", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path);
  store.append(batchOf(1, [["alice", "a1"], ["bob", "b1"]], 1_000));
  store.append(batchOf(3, [["alice", "a2"], ["bob", "b2"], ["alice", "a3"]], 2_000));
  const texts = (q: Parameters<HistoryStore["query"]>[0]) =>
    [...store.query(q)].map((r) => `${r.sender}:${decoder.decode(r.payload)}`);
  assert.deepEqual(texts({}), ["alice:a1", "bob:b1", "alice:a2", "bob:b2", "alice:a3"]);
  assert.deepEqual(texts({ since: 2_000 }), ["alice:a2", "bob:b2", "alice:a3"]);
  assert.deepEqual(texts({ from: "alice" }), ["alice:a1", "alice:a2", "alice:a3"]);
  assert.deepEqual(texts({ from: "alice", limit: 2 }), ["alice:a2", "alice:a3"]);
  assert.deepEqual(texts({ since: 1_500, from: "bob" }), ["bob:b2"]);
  assert.deepEqual(texts({ from: "nobody" }), []);
  store.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore.last() and query() read across batches", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path);
  // Ids 1-4 at 1000 (alice, bob), 5-6 at 2000 (carol only), 7-9 at 3000 (alice, bob).
  store.append(batchOf(1, [["alice", "a1"], ["bob", "b1"], ["alice", "a2"], ["bob", "b2"]]));
  store.append(batchOf(5, [["carol", "c1"], ["carol", "c2"]], 2_000));
  store.append(batchOf(7, [["bob", "b3"], ["alice", "a3"], ["bob", "b4"]], 3_000));
  const texts = (records: Iterable<{ sender: string; payload: Uint8Array }>) =>
    [...records].map((r) => `${r.sender}:${decoder.decode(r.payload)}`);
  assert.deepEqual(texts(store.last(4)), ["carol:c2", "bob:b3", "alice:a3", "bob:b4"]);
  assert.deepEqual(store.last(3, 5).map((r) => r.id), [3, 4, 5]);
  assert.deepEqual(store.last(100, 8).map((r) => r.id), range(1, 8));
  assert.deepEqual(texts(store.query({ from: "alice" })), ["alice:a1", "alice:a2", "alice:a3"]);
  assert.deepEqual(texts(store.query({ from: "bob", limit: 3 })), ["bob:b2", "bob:b3", "bob:b4"]);
  assert.deepEqual(texts(store.query({ since: 2_000, limit: 3 })), [
    "bob:b3",
    "alice:a3",
    "bob:b4",
  ]);
  assert.deepEqual(texts(store.query({ since: 1_500, from: "carol" })), ["carol:c1", "carol:c2"]);
  assert.deepEqual(texts(store.query({ limit: 0 })), []);
  store.close();
  Deno.removeSync(dir, { recursive: true });
});

/** Appends `batches` batches of `size` messages `m<id>` from id `lastId + 1`. */
function appendBatches(store: HistoryStore, batches: number, size: number, time = 1_000): void {
  for (let b = 0; b < batches; b++) {
    const first = store.lastId + 1;
    store.append(batchOf(
      first,
      Array.from({ length: size }, (_, i) => ["a", `m${first + i}`] as [string, string]),
      time,
    ));
  }
}

Deno.test("HistoryStore.prune() keeps the newest maxMessages, in bounded passes", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path, { maxMessages: 10 });
  appendBatches(store, 7, 5); // Ids 1 to 35.
  // Passes of 20 messages: the batches up to id 20, then up to id 25, then nothing.
  assert.equal(store.prune(Date.now(), 20), 20);
  assert.equal(store.prune(Date.now(), 20), 5);
  assert.equal(store.prune(Date.now(), 20), 0);
  assert.equal(store.count(), 10);
  assert.deepEqual(store.last(1).map((r) => r.id), [35]);
  assert.equal([...store.query()][0].id, 26);
  store.close();
  // The ids keep growing after a prune, also across a reopen.
  const again = HistoryStore.open(path);
  assert.equal(again.lastId, 35);
  again.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore.prune() deletes whole batches only: it keeps at least maxMessages", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path, { maxMessages: 7 });
  appendBatches(store, 7, 5); // Ids 1 to 35; the newest 7 are 29 to 35.
  while (store.prune() > 0);
  // 26 to 30 holds 29 and 30: that batch stays whole.
  assert.deepEqual([...store.query()].map((r) => r.id), range(26, 35));
  // A batch larger than a pass goes all the same, in one pass.
  const big = HistoryStore.open(`${dir}/big.db`, { maxMessages: 5 });
  appendBatches(big, 1, 30);
  appendBatches(big, 1, 5);
  assert.equal(big.prune(Date.now(), 10), 30);
  assert.deepEqual([...big.query()].map((r) => r.id), range(31, 35));
  big.close();
  store.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore.prune() deletes the batches older than maxAgeMs", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path, { maxAgeMs: 1_000 });
  store.append(batchOf(1, [["a", "old1"], ["a", "old2"]], 10_000));
  store.append(batchOf(3, [["a", "new"]], 20_000));
  assert.equal(store.prune(20_500), 2);
  assert.deepEqual(store.last(5).map((r) => decoder.decode(r.payload)), ["new"]);
  assert.equal(store.prune(20_500), 0);
  // A batch goes once its newest message is too old: until then its older ones stay.
  const mixed = batchOf(4, [["a", "older"], ["a", "newer"]]);
  mixed.times = Float64Array.of(20_000, 22_000);
  store.append(mixed);
  assert.equal(store.prune(22_500), 1); // "new" alone.
  assert.deepEqual(store.last(5).map((r) => decoder.decode(r.payload)), ["older", "newer"]);
  assert.equal(store.prune(23_001), 2);
  assert.equal(store.count(), 0);
  // Emptied by age, the file still remembers its last id.
  assert.equal(store.lastId, 5);
  store.close();
  const again = HistoryStore.open(path);
  assert.equal(again.lastId, 5);
  again.close();
  Deno.removeSync(dir, { recursive: true });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

Deno.test("HistoryStore.open() refuses a file that is not SQLite with one clear line", (t) => {
  const { dir, path } = tempFile(t);
  Deno.writeTextFileSync(path, "alice: this is a text file, not a database\n".repeat(200));
  assert.throws(() => HistoryStore.open(path), openError(path, "file is not a database"));
  assert.throws(
    () => HistoryStore.open(path, { readOnly: true }),
    openError(path, "file is not a database"),
  );
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore.open() refuses a corrupt history file", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path);
  store.append(batchOf(1, [["a", "x"]]));
  store.checkpoint();
  store.close();
  // Overwrite the first page (header and schema) with garbage.
  const bytes = Deno.readFileSync(path);
  bytes.fill(0x5a, 0, 4096);
  Deno.writeFileSync(path, bytes);
  assert.throws(() => HistoryStore.open(path), HistoryOpenError);
  assert.throws(() => HistoryStore.open(path), (e: Error) => {
    assert.match(e.message, /^Cannot open history file ".*": [a-z].*[^.]$/);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore.open() refuses another program's database", (t) => {
  const { dir, path } = tempFile(t);
  const db = new DatabaseSync(path);
  db.exec("CREATE TABLE accounts (name TEXT)");
  db.close();
  assert.throws(
    () => HistoryStore.open(path),
    openError(path, "it is not a parrot history file (another program's database)"),
  );
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore.open() refuses a history of schema version 1 (a row per message)", (t) => {
  const { dir, path } = tempFile(t);
  const db = new DatabaseSync(path);
  db.exec(
    "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, " +
      "sender TEXT NOT NULL, origin TEXT, payload BLOB NOT NULL)",
  );
  db.exec("PRAGMA application_id = 1886548596"); // "prrt"
  db.exec("PRAGMA user_version = 1");
  db.close();
  const why = "its schema version 1 is older than this parrot's (a row per message): " +
    "move it away to start a new one";
  assert.throws(() => HistoryStore.open(path), openError(path, why));
  assert.throws(() => HistoryStore.open(path, { readOnly: true }), openError(path, why));
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore reads a damaged row as an error, never as wrong messages", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path);
  store.append(batchOf(1, [["a", "one"], ["b", "two"]]));
  store.exec("UPDATE batches SET ends = zeroblob(4)");
  assert.throws(
    () => store.last(5),
    {
      message:
        "The history's batch of the ids up to 2 is damaged: its index does not match its count",
    },
  );
  store.exec(`UPDATE batches SET ends = x'0300000009000000'`);
  assert.throws(
    () => [...store.query()],
    /batch of the ids up to 2 is damaged: its payloads are cut short/,
  );
  store.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore.open() explains a path it cannot use", (t) => {
  const { dir, path } = tempFile(t);
  assert.throws(() => HistoryStore.open(dir), openError(dir, "it is a directory"));
  const missing = `${dir}/no/such/dir/h.db`;
  assert.throws(
    () => HistoryStore.open(missing),
    openError(missing, `no such directory ${JSON.stringify(`${dir}/no/such/dir`)}`),
  );
  assert.throws(() => HistoryStore.open(path, { readOnly: true }), openError(path, "no such file"));
  Deno.writeTextFileSync(`${dir}/file`, "");
  const underFile = `${dir}/file/h.db`;
  assert.throws(
    () => HistoryStore.open(underFile),
    openError(underFile, `${JSON.stringify(`${dir}/file`)} is not a directory`),
  );
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore.open() refuses a file it may read but not write", (t) => {
  const { dir, path } = tempFile(t);
  HistoryStore.open(path).close();
  // Another connection holds the write lock: the open's BEGIN IMMEDIATE cannot take it.
  const holder = new DatabaseSync(path);
  holder.exec("BEGIN IMMEDIATE");
  assert.throws(
    () => HistoryStore.open(path, { busyTimeoutMs: 0 }),
    openError(path, "database is locked"),
  );
  holder.exec("ROLLBACK");
  holder.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryStore.open({ readOnly }) reads a file a killed writer left with its log", (t) => {
  const { dir, path } = tempFile(t);
  const writer = HistoryStore.open(path);
  writer.append(batchOf(1, [["a", "in the log"]]));
  // Not closed: the rows are in path-wal only, as after kill -9.
  const reader = HistoryStore.open(path, { readOnly: true });
  assert.deepEqual(reader.last(5).map((r) => decoder.decode(r.payload)), ["in the log"]);
  reader.close();
  writer.close();
  Deno.removeSync(dir, { recursive: true });
});
