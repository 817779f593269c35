/**
 * Waiting that never outlives its use: a delay that rejects on abort (as std's does),
 * a pause that a signal ends early without an error, and a bound on how long to wait
 * for a promise. Each clears its timer when done, so nothing keeps the
 * process alive or trips Deno's test sanitizers.
 *
 * @module
 */

/** Options of {@linkcode delay}. */
export interface DelayOptions {
  /** Aborting it ends the wait early: the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * Resolves after `ms` milliseconds; rejects with `signal.reason` as soon as `signal`
 * aborts (at once if it already has), as `delay` of the Deno standard library does.
 * The timer and the abort listener are removed either way.
 *
 * For a wait that a shutdown may cut short without it being an error, use
 * {@linkcode delayUnlessAborted}, which never rejects.
 *
 * @example A wait, and a wait cut short
 * ```ts
 * import assert from "node:assert/strict";
 * import { delay } from "./delay.ts";
 *
 * const started = Date.now();
 * await delay(20);
 * assert.ok(Date.now() - started >= 19);
 *
 * const controller = new AbortController();
 * const waiting = delay(60_000, { signal: controller.signal });
 * controller.abort(new Error("Stopped"));
 * await assert.rejects(waiting, { message: "Stopped" });
 * ```
 */
export function delay(ms: number, options: DelayOptions = {}): Promise<void> {
  const { signal } = options;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", aborted);
      resolve();
    }, ms);
    function aborted() {
      clearTimeout(timer);
      signal!.removeEventListener("abort", aborted);
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", aborted, { once: true });
  });
}

/**
 * Waits `ms` milliseconds, or less if `signal` aborts first (at once if it already has).
 * Never rejects: resolves `true` when the whole time passed, `false` when the signal cut
 * it short. For retry loops and pauses that a shutdown ends early. The timer and the
 * abort listener are removed either way.
 *
 * @example A pause that shutdown ends early
 * ```ts
 * import assert from "node:assert/strict";
 * import { delayUnlessAborted } from "./delay.ts";
 *
 * assert.equal(await delayUnlessAborted(5, new AbortController().signal), true);
 * const stopping = new AbortController();
 * const pausing = delayUnlessAborted(60_000, stopping.signal);
 * stopping.abort();
 * assert.equal(await pausing, false);
 * ```
 */
export function delayUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", aborted);
      resolve(true);
    }, ms);
    function aborted() {
      clearTimeout(timer);
      signal.removeEventListener("abort", aborted);
      resolve(false);
    }
    signal.addEventListener("abort", aborted, { once: true });
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
