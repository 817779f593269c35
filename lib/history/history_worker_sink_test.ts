import assert from "node:assert/strict";
import { waitFor } from "../testing.ts";
import { type HistoryBatch, HistoryStore } from "./history_store.ts";
import { HistoryWorkerSink } from "./history_worker_sink.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `count` messages `m<id>` of `size` bytes at most from `alice`, from id `firstId`. */
function batch(firstId: number, count: number, size = 0): HistoryBatch {
  const parts = Array.from(
    { length: count },
    (_, i) => encoder.encode(`m${firstId + i}`.padEnd(size, ".")),
  );
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  const ends = new Uint32Array(count);
  let end = 0;
  parts.forEach((part, i) => {
    bytes.set(part, end);
    ends[i] = end += part.length;
  });
  return {
    firstId,
    count,
    times: new Float64Array(count).fill(Date.now()),
    senders: new Uint16Array(count),
    names: ["alice"],
    ends,
    bytes,
  };
}

Deno.test("HistoryWorkerSink.write() posted behind a failed write fails too, until the failure is noted", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "parrot-history-" });
  const path = `${dir}/history.db`;
  const sink = await HistoryWorkerSink.open(path);
  await sink.write(batch(1, 2));
  // Both posted before either is answered: the first fails (its ids are taken), so the
  // second, which could be stored, is not: the file keeps a prefix.
  const failed = sink.write(batch(1, 2));
  const behind = sink.write(batch(3, 2));
  await assert.rejects(failed, /UNIQUE constraint failed/);
  await assert.rejects(behind, /UNIQUE constraint failed/);
  // Once the writer took note of it, the next write is stored.
  sink.failureNoted();
  await sink.write(batch(3, 2));
  await sink.close();
  const store = HistoryStore.open(path, { readOnly: true });
  assert.deepEqual([...store.query()].map((r) => decoder.decode(r.payload)), [
    "m1",
    "m2",
    "m3",
    "m4",
  ]);
  store.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryWorkerSink checkpoints on a thread of its own while the writer goes on", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "parrot-history-" });
  const path = `${dir}/history.db`;
  const sink = await HistoryWorkerSink.open(path);
  const fileSize = () => Deno.statSync(path).size;
  const before = fileSize();
  // 6 MB, far less than the writer's own checkpoints wait for (32 MB of log): only the
  // other thread moves the log into the file while the sink is open.
  for (let first = 1; first <= 6_000; first += 1_000) await sink.write(batch(first, 1_000, 1_000));
  await waitFor(() => fileSize() > before + 1_000_000, "a checkpoint into the file");
  await sink.close();
  const store = HistoryStore.open(path, { readOnly: true });
  assert.equal(store.count(), 6_000);
  store.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("HistoryWorkerSink.open() refuses a file it cannot use with one clear line", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "parrot-history-" });
  const path = `${dir}/notes.txt`;
  Deno.writeTextFileSync(path, "not a database\n".repeat(100));
  await assert.rejects(HistoryWorkerSink.open(path), {
    name: "HistoryOpenError",
    message: `Cannot open history file ${JSON.stringify(path)}: file is not a database`,
  });
  Deno.removeSync(dir, { recursive: true });
});
