/**
 * scripts/heap_per_connection.ts, the measurement behind the per-connection budget in
 * docs/PERFORMANCE.md, at a small size: it must print a per-connection figure and tie
 * the server's own objects to the clients. No assertion is about the size itself.
 */

import assert from "node:assert/strict";
import { runDeno } from "../lib/testing.ts";

const RUN = [
  "run",
  "--allow-net=127.0.0.1",
  "--allow-read",
  "--allow-write",
  "--v8-flags=--expose-gc",
  "scripts/heap_per_connection.ts",
];

Deno.test("heap_per_connection.ts prints the heap per idle client and the server objects it holds", async () => {
  const { code, stdout, stderr } = await runDeno([...RUN, "--count", "200", "--top", "200"]);
  assert.equal(code, 0, stderr);
  const total = stdout.match(/^live heap per connection: (\d+) bytes \(200 clients\)$/m);
  assert.ok(total, stdout);
  assert.ok(Number(total[1]) > 0);
  // One connection task per client, held by something of the server, a session (held by
  // the hub's table or its task), and no outbound queue: the server let go of them, as
  // its idle collection does.
  const perClient = (object: string) =>
    stdout.split("\n").filter((line) => line.endsWith(`-> ${object}`))
      .reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[1]), 0);
  assert.equal(perClient("object:ConnectionTask").toFixed(2), "1.00", stdout);
  // Its holders' shares are printed rounded, so they sum to 1.00 give or take a hundredth each.
  assert.ok(perClient("object:Session") >= 0.97, stdout);
  assert.equal(perClient("object:WriteCoalescer"), 0, stdout);
});

Deno.test("heap_per_connection.ts refuses a count it cannot hold", async () => {
  const { code, stderr } = await runDeno([...RUN, "--count", "0"]);
  assert.equal(code, 2);
  assert.match(stderr, /Cannot use --count "0": a whole number from 1 to 10000/);
});
