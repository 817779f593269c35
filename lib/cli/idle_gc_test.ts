import assert from "node:assert/strict";
import { delay } from "../net/delay.ts";
import { collectWhenIdle } from "./idle_gc.ts";

Deno.test("collectWhenIdle() collects once after activity stops, and never while it goes on", async () => {
  let busy = false;
  let counter = 0;
  let checks = 0;
  let collections = 0;
  // While busy, every check sees new activity, as on a server taking messages.
  const activity = () => (checks++, busy ? ++counter : counter);
  const stop = collectWhenIdle({ activity, quietMs: 5, collect: () => collections++ });
  try {
    while (checks < 5) await delay(5);
    assert.equal(collections, 0, "no activity yet: nothing to give back");
    busy = true;
    const busyFrom = checks;
    while (checks < busyFrom + 5) await delay(5);
    assert.equal(collections, 0, "never while busy");
    busy = false;
    const quietFrom = checks;
    while (checks < quietFrom + 5) await delay(5);
    assert.equal(collections, 1, "one collection per quiet period");
  } finally {
    stop();
  }
});
