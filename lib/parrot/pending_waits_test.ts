import assert from "node:assert/strict";
import { PendingWaits } from "./pending_waits.ts";
import { WaitHistogram } from "./wait_histogram.ts";

Deno.test("PendingWaits.record() observes the oldest group's waits, weighted by messages", () => {
  const waits = new PendingWaits();
  const histogram = new WaitHistogram([0.001, 0.01]);
  waits.add(100, 2); // read at 100 ms, two messages
  waits.add(105, 1);
  const first = waits.closeGroup();
  waits.add(108, 4);
  const second = waits.closeGroup();
  assert.deepEqual([first, second, waits.length], [2, 1, 3]);
  waits.record(first, histogram, 109.5); // waits of 9.5 ms and 4.5 ms
  assert.deepEqual(histogram.snapshot().cumulative, [0, 3]);
  waits.record(second, histogram, 108.5); // 0.5 ms
  const snapshot = histogram.snapshot();
  assert.deepEqual(snapshot.cumulative, [4, 7]);
  assert.equal(snapshot.count, 7);
  assert.equal(waits.length, 0);
});

Deno.test("PendingWaits.discard() drops a group whose write failed", () => {
  const waits = new PendingWaits();
  const histogram = new WaitHistogram([1]);
  waits.add(1, 5);
  const failed = waits.closeGroup();
  waits.add(2, 7);
  const next = waits.closeGroup();
  waits.discard(failed);
  waits.record(next, histogram, 2);
  assert.equal(histogram.snapshot().count, 7);
});

Deno.test("PendingWaits keeps its order while it grows and wraps around", () => {
  const waits = new PendingWaits();
  const histogram = new WaitHistogram([1_000_000]);
  let next = 0;
  let expected = 0;
  // Groups of 1 to 90 entries, 30 held at a time: the rings wrap and double.
  const groups: number[] = [];
  for (let round = 1; round <= 200; round++) {
    const size = 1 + (round * 37) % 90;
    for (let i = 0; i < size; i++) waits.add(next++, 1);
    groups.push(waits.closeGroup());
    if (groups.length > 30) {
      const size = groups.shift()!;
      // Entry k was read at k: the group's oldest entry is the next one expected.
      const before = histogram.snapshot().sum;
      waits.record(size, histogram, expected + size); // waits size .. 1 ms
      const sum = histogram.snapshot().sum - before;
      assert.equal(Math.round(sum * 1000), (size * (size + 1)) / 2);
      expected += size;
    }
  }
  assert.equal(waits.length, next - expected);
});
