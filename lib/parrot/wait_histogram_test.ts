import assert from "node:assert/strict";
import { emptyHistogram, OUTPUT_WAIT_BUCKETS_SECONDS, WaitHistogram } from "./wait_histogram.ts";

Deno.test("WaitHistogram.observe() puts a wait in the first bucket at or above it, weighted", () => {
  const histogram = new WaitHistogram([0.001, 0.01, 0.1]);
  histogram.observe(0.001, 2); // on the bound: that bucket
  histogram.observe(0.005, 5);
  histogram.observe(3); // beyond every bound: +Inf only
  histogram.observe(-1); // a clock step back counts as no wait
  const snapshot = histogram.snapshot();
  assert.deepEqual(snapshot.cumulative, [3, 8, 8]);
  assert.equal(snapshot.count, 9);
  assert.ok(Math.abs(snapshot.sum - (0.002 + 0.025 + 3)) < 1e-9);
});

Deno.test("WaitHistogram() refuses bounds that do not ascend", () => {
  assert.throws(() => new WaitHistogram([0.1, 0.1]), RangeError);
});

Deno.test("OUTPUT_WAIT_BUCKETS_SECONDS spans 50us to 1s and emptyHistogram() counts none", () => {
  assert.equal(OUTPUT_WAIT_BUCKETS_SECONDS[0], 0.00005);
  assert.equal(OUTPUT_WAIT_BUCKETS_SECONDS.at(-1), 1);
  const empty = emptyHistogram();
  assert.equal(empty.cumulative.length, OUTPUT_WAIT_BUCKETS_SECONDS.length);
  assert.ok(empty.cumulative.every((count) => count === 0));
});
