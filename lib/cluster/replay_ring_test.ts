import assert from "node:assert/strict";
import { ReplayRing, type RingEntry } from "./replay_ring.ts";

const entry = (firstSeq: number, count: number, bytes: number): RingEntry => ({
  firstSeq,
  count,
  bytes: new Uint8Array(bytes),
});
const seqs = (entries: Iterable<RingEntry>) => Array.from(entries, (e) => e.firstSeq);

Deno.test("ReplayRing.push() keeps frames in order and evicts the oldest past the byte bound", () => {
  const ring = new ReplayRing({ maxBytes: 100, maxMessages: 1000 });
  assert.deepEqual(ring.push(entry(1, 3, 40)), []);
  assert.deepEqual(ring.push(entry(4, 1, 40)), []);
  assert.equal(ring.byteLength, 80);
  const evicted = ring.push(entry(5, 2, 40));
  assert.deepEqual(seqs(evicted), [1]);
  assert.equal(ring.oldestSeq, 4);
  assert.equal(ring.nextSeq, 7);
  assert.equal(ring.messages, 3);
  assert.equal(ring.byteLength, 80);
});

Deno.test("ReplayRing.push() evicts the oldest past the message bound", () => {
  const ring = new ReplayRing({ maxBytes: 1_000_000, maxMessages: 5 });
  ring.push(entry(1, 3, 1));
  ring.push(entry(4, 2, 1));
  assert.deepEqual(seqs(ring.push(entry(6, 1, 1))), [1]);
  assert.equal(ring.messages, 3);
});

Deno.test("ReplayRing.push() of a frame larger than the ring evicts the others and keeps it", () => {
  const ring = new ReplayRing({ maxBytes: 10, maxMessages: 1000 });
  ring.push(entry(1, 1, 5));
  assert.deepEqual(seqs(ring.push(entry(2, 1, 50))), [1]);
  assert.equal(ring.messages, 1);
  assert.equal(ring.oldestSeq, 2);
  assert.deepEqual(seqs(ring.from(1)), [2]);
  // The next frame evicts it as usual.
  assert.deepEqual(seqs(ring.push(entry(3, 1, 5))), [2]);
  assert.equal(ring.byteLength, 5);
});

Deno.test("ReplayRing.push() refuses a frame that does not follow the last one", () => {
  const ring = new ReplayRing({ maxBytes: 10, maxMessages: 10 });
  ring.push(entry(1, 2, 1));
  assert.throws(() => ring.push(entry(4, 1, 1)), /starts at 4, expected 3/);
});

Deno.test("ReplayRing.from() gives the frames holding a sequence or later", () => {
  const ring = new ReplayRing({ maxBytes: 1000, maxMessages: 1000 });
  ring.push(entry(1, 3, 1)); // 1-3
  ring.push(entry(4, 1, 1)); // 4
  ring.push(entry(5, 5, 1)); // 5-9
  assert.deepEqual(seqs(ring.from(0)), [1, 4, 5]);
  assert.deepEqual(seqs(ring.from(2)), [1, 4, 5]);
  assert.deepEqual(seqs(ring.from(4)), [4, 5]);
  assert.deepEqual(seqs(ring.from(9)), [5]);
  assert.deepEqual(seqs(ring.from(10)), []);
});

Deno.test("ReplayRing keeps working across many evictions (compaction)", () => {
  const ring = new ReplayRing({ maxBytes: 10, maxMessages: 1000 });
  let evicted = 0;
  for (let seq = 1; seq <= 1000; seq++) evicted += ring.push(entry(seq, 1, 1)).length;
  assert.equal(ring.messages, 10);
  assert.equal(evicted, 990);
  assert.equal(ring.oldestSeq, 991);
  assert.deepEqual(seqs(ring.from(995)), [995, 996, 997, 998, 999, 1000]);
});
