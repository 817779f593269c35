/**
 * Waiting that never outlives its use: a cancellable delay, and a bound on how long
 * to wait for a promise. Both clear their timer when done, so nothing keeps the
 * process alive or trips Deno's test sanitizers.
 *
 * @module
 */

/**
 * Resolves after `ms` milliseconds, or as soon as `signal` aborts (never rejects).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { delay } from "./delay.ts";
 *
 * const started = Date.now();
 * await delay(20);
 * assert.ok(Date.now() - started >= 19);
 * ```
 */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Waits for `promise` at most `ms` milliseconds: its value if it fulfils in time,
 * `fallback` if it has not settled by then. Rejects if `promise` rejects in time.
 * Leaves no timer behind.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { within } from "./delay.ts";
 *
 * assert.equal(await within(Promise.resolve(1), 100, "late"), 1);
 * assert.equal(await within(new Promise(() => {}), 10, "late"), "late");
 * ```
 */
export async function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  // A plain timer, cleared at the end: no AbortController, whose abort() would build a
  // DOMException (and its stack) on every call.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeUp = new Promise<F>((resolve) => timer = setTimeout(() => resolve(fallback), ms));
  try {
    return await Promise.race([promise, timeUp]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits for `promise` at most `ms` milliseconds; resolves true if it settled in time
 * (fulfilled or rejected), false otherwise. Never rejects.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { settlesWithin } from "./delay.ts";
 *
 * assert.equal(await settlesWithin(Promise.resolve(1), 100), true);
 * assert.equal(await settlesWithin(new Promise(() => {}), 10), false);
 * ```
 */
export function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return within(promise.then(() => true, () => true), ms, false);
}
