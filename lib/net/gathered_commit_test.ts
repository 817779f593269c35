import assert from "node:assert/strict";
import { GatheredCommit } from "./gathered_commit.ts";

/** A writer that records the length of each commit. */
function countingWriter() {
  const commits: number[] = [];
  const writer = {
    length: 0,
    commit() {
      commits.push(this.length);
      this.length = 0;
    },
  };
  return { writer, commits };
}

Deno.test("GatheredCommit.gather() commits once the oldest batch waited gatherMs", () => {
  let clock = 100;
  const { writer, commits } = countingWriter();
  const gathered = new GatheredCommit(writer, { gatherMs: 10, now: () => clock });
  for (let batch = 0; batch < 25; batch++, clock += 2) {
    writer.length += 1;
    gathered.gather();
  }
  // Batches at 100, 102, ..., 148 ms: committed with those at 110, 122, 134 and 146 ms.
  assert.deepEqual(commits, [6, 6, 6, 6]);
  assert.equal(writer.length, 1);
  gathered.dispose();
});

Deno.test("GatheredCommit.now() commits at once and restarts the gathering", () => {
  let clock = 0;
  const { writer, commits } = countingWriter();
  const gathered = new GatheredCommit(writer, { gatherMs: 10, now: () => clock });
  writer.length = 5;
  gathered.gather();
  clock = 9;
  writer.length += 5;
  gathered.now(); // a PONG waits for these
  assert.deepEqual(commits, [10]);
  clock = 15; // 15 ms after the first batch, but the gathering began again
  writer.length = 1;
  gathered.gather();
  assert.deepEqual(commits, [10]);
  gathered.dispose();
});

Deno.test("GatheredCommit.gather() leaves the last batch before a pause to its timer", async () => {
  const committed = Promise.withResolvers<number>();
  const writer = { length: 3, commit: () => committed.resolve(writer.length) };
  const gathered = new GatheredCommit(writer, { gatherMs: 5, backstopMs: 20 });
  const start = performance.now();
  gathered.gather();
  assert.equal(await committed.promise, 3);
  assert.ok(performance.now() - start >= 19, "not before the backstop");
  gathered.dispose();
});

Deno.test("GatheredCommit.gather() does nothing for an empty writer", () => {
  const { writer, commits } = countingWriter();
  const gathered = new GatheredCommit(writer, { gatherMs: 10, now: () => 0 });
  gathered.gather(); // no timer either: the test would leak it
  assert.deepEqual(commits, []);
  gathered.dispose();
});
