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
  const rows = db.prepare("SELECT id, sender, payload FROM messages ORDER BY id").all();
  assert.deepEqual(
    rows.map((r) => `${r.id} ${r.sender}: ${decoder.decode(r.payload as Uint8Array)}`),
    ["1 alice: one", "2 bob: two", "3 alice: three"],
  );
  db.close();
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
  // 200 rows: three multi-row inserts and the rest one by one.
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

Deno.test("HistoryStore.append() stores all of a batch or none of it", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path);
  store.append(batchOf(1, [["a", "x"]]));
  // Ids 0, 1, 2: 0 goes in, 1 is taken, so the whole batch rolls back.
  assert.throws(() => store.append(batchOf(0, [["a", "w"], ["a", "y"], ["a", "z"]])));
  assert.equal(store.count(), 1);
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

Deno.test("HistoryStore.prune() keeps the newest maxMessages, in bounded batches", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path, { maxMessages: 10 });
  store.append(
    batchOf(1, Array.from({ length: 35 }, (_, i) => ["a", `m${i}`] as [string, string])),
  );
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

Deno.test("HistoryStore.prune() deletes what is older than maxAgeMs", (t) => {
  const { dir, path } = tempFile(t);
  const store = HistoryStore.open(path, { maxAgeMs: 1_000 });
  store.append(batchOf(1, [["a", "old1"], ["a", "old2"]], 10_000));
  store.append(batchOf(3, [["a", "new"]], 20_000));
  assert.equal(store.prune(20_500), 2);
  assert.deepEqual(store.last(5).map((r) => decoder.decode(r.payload)), ["new"]);
  assert.equal(store.prune(20_500), 0);
  store.close();
  Deno.removeSync(dir, { recursive: true });
});

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
