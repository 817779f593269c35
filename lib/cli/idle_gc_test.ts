import assert from "node:assert/strict";
import { waitFor } from "../testing.ts";
import { collectWhenIdle } from "./idle_gc.ts";

Deno.test("collectWhenIdle() collects once after activity stops, and never while it goes on", async () => {
  let busy = false;
  let counter = 0;
  let checks = 0;
  let collections = 0;
  // While busy, every check sees new activity, as on a server taking messages.
  const activity = () => (checks++, busy ? ++counter : counter);
  const trims: number[] = [];
  const stop = collectWhenIdle({
    activity,
    quietMs: 5,
    beforeCollect: () => trims.push(collections),
    collect: () => collections++,
  });
  try {
    await waitFor(() => checks >= 5, "5 checks");
    assert.equal(collections, 0, "no activity yet: nothing to give back");
    busy = true;
    const busyFrom = checks;
    await waitFor(() => checks >= busyFrom + 5, "5 busy checks");
    assert.equal(collections, 0, "never while busy");
    busy = false;
    const quietFrom = checks;
    await waitFor(() => checks >= quietFrom + 5, "5 quiet checks");
    assert.equal(collections, 1, "one collection per quiet period");
    assert.deepEqual(trims, [0], "beforeCollect runs once, before the collection");
  } finally {
    stop();
  }
});

Deno.test("collectWhenIdle() by default unmaps the heap a plain gc() keeps", async () => {
  // Under --expose-gc, in a process of its own: grow the heap with garbage, collect it
  // with a plain gc(), then let the idle collector run, and compare committed heaps.
  const script = `
    import { collectWhenIdle } from ${
    JSON.stringify(new URL("./idle_gc.ts", import.meta.url).href)
  };
    let garbage = Array.from({ length: 300_000 }, (_, i) => ({ i, text: "x" + i }));
    garbage = [];
    globalThis.gc();
    const afterPlain = Deno.memoryUsage().heapTotal;
    let activity = 0;
    let collected;
    const done = new Promise((resolve) => collected = resolve);
    const stop = collectWhenIdle({ activity: () => activity++ < 2 ? activity : 2, quietMs: 5 });
    const timer = setInterval(() => {
      if (Deno.memoryUsage().heapTotal < afterPlain) collected();
    }, 5);
    let giveUp;
    await Promise.race([done, new Promise((resolve) => giveUp = setTimeout(resolve, 2_000))]);
    stop();
    clearInterval(timer);
    clearTimeout(giveUp);
    console.log(JSON.stringify({ afterPlain, afterIdle: Deno.memoryUsage().heapTotal, kept: garbage.length }));
  `;
  const output = await new Deno.Command("deno", {
    args: ["eval", "--v8-flags=--expose-gc", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const { afterPlain, afterIdle } = JSON.parse(new TextDecoder().decode(output.stdout));
  assert.ok(
    afterIdle < afterPlain * 0.8,
    `committed heap ${afterPlain} bytes after gc(), ${afterIdle} after the idle collection`,
  );
});
