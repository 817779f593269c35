import assert from "node:assert/strict";
import { type HistoryBatch, HistoryStore } from "./history_store.ts";
import { type HistorySink, HistoryWriter, type HistoryWriterOptions } from "./history_writer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A sink that stores in `store` and whose writes can be held back. */
class TestSink implements HistorySink {
  readonly batches: number[] = [];
  closed = false;
  /** When set, writes wait for it after they stored. */
  gate: Promise<void> | undefined;
  #written: (() => void)[] = [];

  constructor(readonly store: HistoryStore) {}

  async write(batch: HistoryBatch): Promise<void> {
    this.batches.push(batch.count);
    this.store.append(batch);
    for (const resolve of this.#written.splice(0)) resolve();
    if (this.gate) await this.gate;
  }

  /** Resolves at the next write. */
  nextWrite(): Promise<void> {
    return new Promise((resolve) => this.#written.push(resolve));
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

function setup(options: Partial<HistoryWriterOptions> = {}) {
  const store = HistoryStore.open(":memory:");
  const sink = new TestSink(store);
  const logs: string[] = [];
  const writer = new HistoryWriter({
    sink,
    reader: { last: (n, upToId) => store.last(n, upToId) },
    firstId: store.lastId + 1,
    log: (level, message) => logs.push(`${level}: ${message}`),
    ...options,
  });
  const texts = () =>
    store.last(1_000_000).map((r) => `${r.id} ${r.sender}: ${decoder.decode(r.payload)}`);
  return { store, sink, writer, logs, texts };
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => open = resolve);
  return { promise, open };
}

Deno.test("HistoryWriter.record() stores messages in batches, in order, with growing ids", async () => {
  const { writer, sink, texts, store } = setup({ batchMessages: 10 });
  for (let i = 0; i < 25; i++) writer.record(`c${i % 3}`, encoder.encode(`m${i}`), 1_000 + i);
  await writer.flush();
  assert.deepEqual(sink.batches, [10, 10, 5]);
  assert.deepEqual(texts(), Array.from({ length: 25 }, (_, i) => `${i + 1} c${i % 3}: m${i}`));
  assert.deepEqual(store.last(1)[0].time, 1_024);
  assert.deepEqual(writer.stats, { stored: 25, skipped: 0, pending: 0, lastError: null });
  await writer.close();
  assert.equal(sink.closed, true);
});

Deno.test("HistoryWriter.record() copies the payload: the caller may reuse its buffer", async () => {
  const { writer, texts } = setup();
  const buffer = encoder.encode("first");
  writer.record("a", buffer);
  buffer.set(encoder.encode("XXXXX"));
  writer.record("a", buffer.subarray(0, 3));
  await writer.flush();
  assert.deepEqual(texts(), ["1 a: first", "2 a: XXX"]);
});

Deno.test("HistoryWriter.record() writes a batch flushMs after its first message, unasked", async () => {
  const { writer, sink, texts } = setup({ flushMs: 5 });
  const written = sink.nextWrite();
  writer.record("a", encoder.encode("soon"));
  await written;
  assert.deepEqual(texts(), ["1 a: soon"]);
  await writer.close();
});

Deno.test("HistoryWriter.record() gives a message larger than batchBytes a batch of its own", async () => {
  const { writer, sink, store } = setup({ batchBytes: 100 });
  writer.record("a", new Uint8Array(30).fill(1));
  writer.record("a", new Uint8Array(250).fill(2));
  writer.record("a", new Uint8Array(30).fill(3));
  await writer.flush();
  assert.deepEqual(sink.batches, [1, 1, 1]);
  assert.deepEqual(store.last(3).map((r) => [r.payload.length, r.payload[0]]), [[30, 1], [250, 2], [
    30,
    3,
  ]]);
});

Deno.test("HistoryWriter.record() continues the ids of the file", async () => {
  const first = setup();
  first.writer.record("a", encoder.encode("one"));
  await first.writer.flush();
  const writer = new HistoryWriter({ sink: first.sink, firstId: first.store.lastId + 1 });
  writer.record("b", encoder.encode("two"));
  await writer.flush();
  assert.deepEqual(first.texts(), ["1 a: one", "2 b: two"]);
});

Deno.test("HistoryWriter.last() joins stored and pending messages with no gap and no duplicate", async () => {
  const { writer, sink, store } = setup({ batchMessages: 5 });
  for (let i = 1; i <= 5; i++) writer.record("a", encoder.encode(`m${i}`));
  await writer.flush(); // 1..5 stored and acknowledged.
  const held = gate();
  sink.gate = held.promise;
  const written = sink.nextWrite();
  for (let i = 6; i <= 10; i++) writer.record("b", encoder.encode(`m${i}`));
  const flushed = writer.flush();
  await written; // 6..10 committed in the store, not yet acknowledged.
  for (let i = 11; i <= 12; i++) writer.record("c", encoder.encode(`m${i}`)); // In the open batch.
  assert.equal(store.count(), 10);
  assert.equal(writer.stats.pending, 7);
  const texts = (n: number) => writer.last(n).map((r) => `${r.id}:${decoder.decode(r.payload)}`);
  assert.deepEqual(texts(100), Array.from({ length: 12 }, (_, i) => `${i + 1}:m${i + 1}`));
  assert.deepEqual(texts(3), ["10:m10", "11:m11", "12:m12"]);
  assert.deepEqual(texts(0), []);
  held.open();
  await flushed;
  assert.deepEqual(texts(100).length, 12);
  await writer.close();
});

Deno.test("HistoryWriter.last() returns at most replayMax messages", async () => {
  const { writer } = setup({ replayMax: 4 });
  for (let i = 1; i <= 10; i++) writer.record("a", encoder.encode(`m${i}`));
  assert.deepEqual(writer.last(100).map((r) => decoder.decode(r.payload)), [
    "m7",
    "m8",
    "m9",
    "m10",
  ]);
  await writer.flush();
  assert.deepEqual(writer.last(100).map((r) => r.id), [7, 8, 9, 10]);
  await writer.close();
});

Deno.test("HistoryWriter pauses on a full disk, counts what it skips, logs once and recovers", async () => {
  let now = 1_000_000;
  const { writer, store, logs, texts } = setup({ retryMs: 5_000, now: () => now });
  writer.record("a", encoder.encode("before"));
  await writer.flush();
  // SQLite's own "database or disk is full": the file may not grow by one more page.
  store.exec("PRAGMA max_page_count = 1");
  for (let i = 0; i < 300; i++) writer.record("a", new Uint8Array(1_000).fill(i));
  await writer.flush();
  assert.equal(writer.stats.skipped, 300);
  assert.match(writer.stats.lastError!, /database or disk is full/);
  // Paused: these are skipped without a write.
  writer.record("a", encoder.encode("while paused"));
  writer.record("a", encoder.encode("while paused"));
  assert.equal(writer.stats.skipped, 302);
  assert.equal(writer.stats.pending, 0);
  // The retry fails again: skipped, and no second warning.
  now += 5_000;
  for (let i = 0; i < 300; i++) writer.record("a", new Uint8Array(1_000).fill(i));
  await writer.flush();
  assert.equal(writer.stats.skipped, 602);
  assert.deepEqual(logs, [
    "warning: History paused: database or disk is full; retrying every 5000ms",
  ]);
  // Space again: the next retry stores, and says how many were skipped.
  store.exec("PRAGMA max_page_count = 1000000");
  now += 5_000;
  writer.record("a", encoder.encode("after"));
  await writer.flush();
  assert.deepEqual(logs.slice(1), ["info: History resumed: 602 messages skipped"]);
  assert.deepEqual(texts().map((t) => t.replace(/^\d+ /, "")), ["a: before", "a: after"]);
  assert.equal(writer.stats.stored, 2);
  await writer.close();
});

Deno.test("HistoryWriter skips beyond maxPendingBytes while the database is behind, then resumes", async () => {
  const { writer, sink, logs } = setup({ maxPendingBytes: 1_000, batchBytes: 400 });
  const held = gate();
  sink.gate = held.promise;
  for (let i = 0; i < 20; i++) writer.record("a", new Uint8Array(100));
  // 1000 bytes wait; the other 10 messages are skipped.
  assert.deepEqual(writer.stats, { stored: 0, skipped: 10, pending: 10, lastError: null });
  assert.deepEqual(logs, [
    "warning: History paused: the database cannot keep up (1000 bytes wait to be stored)",
  ]);
  sink.gate = undefined;
  held.open();
  await writer.flush();
  writer.record("a", new Uint8Array(100));
  await writer.flush();
  assert.deepEqual(writer.stats, { stored: 11, skipped: 10, pending: 0, lastError: null });
  assert.deepEqual(logs.slice(1), ["info: History resumed: 10 messages skipped"]);
  await writer.close();
});

Deno.test("HistoryWriter.congested past half of maxPendingBytes; whenRoom() waits for the database", async () => {
  const { writer, sink } = setup({ maxPendingBytes: 1_000, batchBytes: 200 });
  const held = gate();
  sink.gate = held.promise;
  for (let i = 0; i < 5; i++) writer.record("a", new Uint8Array(100));
  assert.equal(writer.congested, false, "500 bytes wait: half, not more");
  await writer.whenRoom(); // Resolves at once.
  writer.record("a", new Uint8Array(100));
  assert.equal(writer.congested, true);
  let roomy = false;
  const room = writer.whenRoom().then(() => roomy = true);
  await Promise.resolve();
  assert.equal(roomy, false, "the first batch is held in the database");
  sink.gate = undefined;
  held.open();
  await room;
  assert.equal(writer.congested, false);
  // Nothing was skipped: the caller waited.
  await writer.close();
  assert.deepEqual(writer.stats, { stored: 6, skipped: 0, pending: 0, lastError: null });
});

Deno.test("HistoryWriter.whenRoom() rejects when its signal aborts first, and close() releases it", async () => {
  const { writer, sink } = setup({ maxPendingBytes: 100 });
  const held = gate();
  sink.gate = held.promise;
  writer.record("a", new Uint8Array(80));
  const controller = new AbortController();
  const aborted = writer.whenRoom(controller.signal);
  controller.abort(new Error("stop"));
  await assert.rejects(aborted, /stop/);
  const released = writer.whenRoom();
  held.open();
  sink.gate = undefined;
  await writer.close();
  await released;
});

Deno.test("HistoryWriter.record() takes one message larger than maxPendingBytes when nothing waits", async () => {
  const { writer, texts } = setup({ maxPendingBytes: 100 });
  writer.record("a", new Uint8Array(500).fill(0x41));
  await writer.close();
  assert.deepEqual(writer.stats, { stored: 1, skipped: 0, pending: 0, lastError: null });
  assert.equal(texts()[0], `1 a: ${"A".repeat(500)}`);
});

Deno.test("HistoryWriter.flush() rejects when its signal aborts first", async () => {
  const { writer, sink } = setup();
  const held = gate();
  sink.gate = held.promise;
  writer.record("a", encoder.encode("x"));
  const controller = new AbortController();
  const flushed = writer.flush(controller.signal);
  controller.abort(new Error("shutdown took too long"));
  await assert.rejects(flushed, { message: "shutdown took too long" });
  held.open();
  await writer.close();
});

Deno.test("HistoryWriter.close() stores everything recorded before it, and nothing after", async () => {
  const { writer, sink, texts } = setup({ flushMs: 60_000 });
  for (let i = 0; i < 3; i++) writer.record("a", encoder.encode(`m${i}`));
  await writer.close();
  writer.record("a", encoder.encode("late"));
  assert.deepEqual(texts(), ["1 a: m0", "2 a: m1", "3 a: m2"]);
  assert.equal(sink.closed, true);
  assert.equal(writer.stats.skipped, 1);
});

Deno.test("HistoryWriter.recordRange() stores exactly bytes[start, end)", async () => {
  const { writer, texts } = setup();
  const chunk = encoder.encode("xxhelloyyworldzz");
  writer.recordRange("a", chunk, 2, 7);
  writer.recordRange("b", chunk, 9, 14);
  writer.recordRange("c", chunk, 16, 16);
  await writer.flush();
  assert.deepEqual(texts(), ["1 a: hello", "2 b: world", "3 c: "]);
});

Deno.test("HistoryWriter.recordRanges() stores each range of a read, in order, across batches", async () => {
  const { writer, sink, texts } = setup({ batchMessages: 3, batchBytes: 12 });
  // A read as the drain has it: framing around the payloads, which are ranges of it.
  const read = encoder.encode("MSG 2\nm1\nMSG 0\n\nMSG 5\nhello\nMSG 2\nm4\nMSG 7\nbig-one\n");
  const ranges = [6, 8, 15, 15, 22, 27, 34, 36, 43, 50];
  writer.recordRanges("ann", read, ranges, 0, 4, 1_000);
  // Pending messages are replayed from the open batch, with the framing left out.
  assert.deepEqual(writer.last(2).map((r) => decoder.decode(r.payload)), ["m1", ""]);
  writer.recordRange("bob", encoder.encode("yo"), 0, 2, 1_001);
  writer.recordRanges("ann", read, ranges, 4, 10, 1_002);
  await writer.flush();
  assert.deepEqual(texts(), [
    "1 ann: m1",
    "2 ann: ",
    "3 bob: yo",
    "4 ann: hello",
    "5 ann: m4",
    "6 ann: big-one",
  ]);
  // Full at 3 messages or 12 bytes (copied with their framing): never more.
  assert.deepEqual(sink.batches, [3, 2, 1]);
});

Deno.test("HistoryWriter.recordRanges() counts what it cannot take as skipped", async () => {
  const { writer } = setup();
  await writer.close();
  writer.recordRanges("ann", encoder.encode("ab"), [0, 1, 1, 2], 0, 4);
  assert.equal(writer.stats.skipped, 2);
});

Deno.test("HistoryWriter.recordRange() keeps the origin of another server's message, stored or pending", async () => {
  const { store, writer } = setup();
  const hi = encoder.encode("hi");
  writer.recordRange("ann", hi, 0, 2, 1, "east");
  writer.recordRange("ann", hi, 0, 2, 2);
  const shown = (records: { sender: string; origin: string | null }[]) =>
    records.map((r) => `${r.sender} ${r.origin}`);
  assert.deepEqual(shown(writer.last(10)), ["ann east", "ann null"], "pending");
  await writer.flush();
  assert.deepEqual(shown(store.last(10)), ["ann east", "ann null"], "stored");
  assert.deepEqual(shown([...store.query({ from: "ann" })]), ["ann east", "ann null"]);
  assert.deepEqual(shown([...store.query({ from: "east" })]), [], "an origin is not a sender");
});

Deno.test("HistoryWriter.last(n, upToId) stops at the mark, stored or pending", async () => {
  const { writer, sink } = setup({ batchMessages: 4 });
  for (let i = 1; i <= 6; i++) writer.record("a", encoder.encode(`m${i}`));
  await writer.flush(); // 1..6 stored.
  const held = gate();
  sink.gate = held.promise;
  for (let i = 7; i <= 10; i++) writer.record("a", encoder.encode(`m${i}`)); // In flight.
  const flushed = writer.flush();
  writer.record("a", encoder.encode("m11")); // Open.
  const mark = writer.lastId;
  assert.equal(mark, 11);
  writer.record("a", encoder.encode("m12")); // After the mark: for the live relay.
  const ids = (n: number, upTo: number) => writer.last(n, upTo).map((r) => r.id);
  assert.deepEqual(ids(3, mark), [9, 10, 11]);
  assert.deepEqual(ids(3, 8), [6, 7, 8]);
  assert.deepEqual(ids(3, 5), [3, 4, 5]);
  assert.deepEqual(ids(100, 11), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  held.open();
  await flushed;
  await writer.close();
});

Deno.test("HistoryWriter hands the sink up to writesInFlight batches at a time, stored in order", async () => {
  for (const writesInFlight of [1, 3]) {
    const { writer, sink, texts } = setup({ batchMessages: 2, writesInFlight });
    const held = gate();
    sink.gate = held.promise;
    for (let i = 0; i < 10; i++) writer.record("a", encoder.encode(`m${i}`));
    // Four batches sealed: as many as allowed went to the sink before one was stored.
    assert.equal(sink.batches.length, writesInFlight);
    sink.gate = undefined;
    held.open();
    await writer.close();
    assert.deepEqual(sink.batches, [2, 2, 2, 2, 2]);
    assert.deepEqual(
      texts().map((t) => t.split(": ")[1]),
      Array.from({ length: 10 }, (_, i) => `m${i}`),
    );
    assert.deepEqual(writer.stats, { stored: 10, skipped: 0, pending: 0, lastError: null });
  }
});

Deno.test("HistoryWriter: a failed write loses the batches behind it, those in flight too", async () => {
  let now = 1_000_000;
  const stored: string[] = [];
  const held = gate();
  const notes: number[] = [];
  // A sink as HistorySink asks: a write started before failureNoted() fails too.
  let epoch = 0;
  let failedEpoch = -1;
  const sink: HistorySink = {
    async write(batch) {
      const started = epoch;
      const texts = Array.from(
        batch.ends,
        (end, i) => decoder.decode(batch.bytes.subarray(i === 0 ? 0 : batch.ends[i - 1], end)),
      );
      await held.promise;
      if (started <= failedEpoch) throw new Error("behind a failed write");
      if (batch.firstId === 3) {
        failedEpoch = started;
        throw new Error("disk on fire");
      }
      stored.push(...texts);
    },
    failureNoted: () => notes.push(++epoch),
    close: () => Promise.resolve(),
  };
  const logs: string[] = [];
  const writer = new HistoryWriter({
    sink,
    batchMessages: 2,
    writesInFlight: 2,
    retryMs: 1_000,
    now: () => now,
    log: (level, message) => logs.push(`${level}: ${message}`),
  });
  // Batches 1-2 and 3-4 go to the sink; 5-6 and 7-8 wait.
  for (let i = 1; i <= 8; i++) writer.record("a", encoder.encode(`m${i}`));
  const flushed = writer.flush();
  held.open();
  await flushed;
  // 1-2 stored, which handed 5-6 over; 3-4 failed, so 5-6 failed behind it, and 7-8
  // (not handed over) is lost with it: what is stored stays a prefix.
  assert.deepEqual(stored, ["m1", "m2"]);
  assert.deepEqual(writer.stats, { stored: 2, skipped: 6, pending: 0, lastError: "disk on fire" });
  assert.ok(notes.length > 0, "the writer told the sink");
  assert.deepEqual(logs, ["warning: History paused: disk on fire; retrying every 1000ms"]);
  // Paused until the retry.
  writer.record("a", encoder.encode("skipped"));
  now += 1_000;
  writer.record("a", encoder.encode("m9"));
  await writer.close();
  assert.deepEqual(stored, ["m1", "m2", "m9"]);
  assert.equal(writer.stats.skipped, 7);
  assert.deepEqual(logs.slice(1), ["info: History resumed: 7 messages skipped"]);
});
