import assert from "node:assert/strict";
import { countingController } from "../testing.ts";
import { delay, delayUnlessAborted, settlesWithin, within } from "./delay.ts";

Deno.test("delay() resolves after the given milliseconds", async () => {
  const started = performance.now();
  await delay(30);
  assert.ok(performance.now() - started >= 28, `resolved after ${performance.now() - started}ms`);
});

Deno.test("delay() rejects with the signal's reason when it aborts, and clears its timer", async () => {
  const { controller, listeners } = countingController();
  const waiting = delay(60_000, { signal: controller.signal });
  assert.equal(listeners(), 1);
  const reason = new Error("Stopped");
  queueMicrotask(() => controller.abort(reason));
  // The test sanitizer fails the test if the 60 s timer were left running.
  await assert.rejects(waiting, (error) => error === reason);
  assert.equal(listeners(), 0);
});

Deno.test("delay() rejects at once on an already aborted signal", async () => {
  const reason = new Error("Already stopped");
  await assert.rejects(delay(60_000, { signal: AbortSignal.abort(reason) }), (e) => e === reason);
});

Deno.test("delay() removes its abort listener when the time is up", async () => {
  const { controller, listeners } = countingController();
  await delay(5, { signal: controller.signal });
  assert.equal(listeners(), 0);
  controller.abort(); // nothing left to call
});

Deno.test("delayUnlessAborted() resolves true when the time is up, and removes its listener", async () => {
  const { controller, listeners } = countingController();
  const started = performance.now();
  assert.equal(await delayUnlessAborted(30, controller.signal), true);
  assert.ok(performance.now() - started >= 28);
  assert.equal(listeners(), 0);
});

Deno.test("delayUnlessAborted() resolves false when its signal aborts, and clears its timer", async () => {
  const { controller, listeners } = countingController();
  const waiting = delayUnlessAborted(60_000, controller.signal);
  assert.equal(listeners(), 1);
  queueMicrotask(() => controller.abort(new Error("not an error here")));
  assert.equal(await waiting, false);
  assert.equal(listeners(), 0);
});

Deno.test("delayUnlessAborted() resolves false at once on an already aborted signal", async () => {
  assert.equal(await delayUnlessAborted(60_000, AbortSignal.abort()), false);
});

Deno.test("settlesWithin() is true for a promise that fulfils in time", async () => {
  const { promise, resolve } = Promise.withResolvers<number>();
  const started = performance.now();
  const within = settlesWithin(promise, 60_000);
  queueMicrotask(() => resolve(1));
  assert.equal(await within, true);
  assert.ok(performance.now() - started < 1_000, "the long timer is not waited for");
});

Deno.test("settlesWithin() is true for a promise that rejects in time, and does not reject", async () => {
  const rejected = Promise.reject(new Error("boom"));
  assert.equal(await settlesWithin(rejected, 60_000), true);
  await assert.rejects(rejected, { message: "boom" });
});

Deno.test("settlesWithin() is false for a promise that does not settle in time", async () => {
  const started = performance.now();
  assert.equal(await settlesWithin(new Promise(() => {}), 30), false);
  assert.ok(performance.now() - started >= 28);
});

Deno.test("settlesWithin() is false for a promise that settles only after the time", async () => {
  const { promise, resolve } = Promise.withResolvers<void>();
  assert.equal(await settlesWithin(promise, 20), false);
  resolve();
  assert.equal(await settlesWithin(promise, 20), true);
});

Deno.test("within() gives the value in time, the fallback when late, and a rejection in time", async () => {
  assert.equal(await within(Promise.resolve("on time"), 60_000, "late"), "on time");
  assert.equal(await within(new Promise(() => {}), 5, "late"), "late");
  await assert.rejects(within(Promise.reject(new Error("broken")), 60_000, "late"), /broken/);
});
