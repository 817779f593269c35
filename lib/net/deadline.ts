/**
 * Read deadlines built on `AbortSignal.timeout` and `AbortSignal.any`, plus a
 * timer-based per-read deadline for the hot path.
 *
 * It owns the one rule of timing out I/O in Deno: a timeout cannot cancel a
 * pending `conn.read`, it can only stop waiting for it. The read keeps
 * running until data arrives or the connection is closed, and closing the
 * connection is what actually interrupts it. So these helpers reject on
 * time and leave the decision (close, or keep the read and send a `PING`) to
 * the caller, and they never leak an abort listener or an unhandled
 * rejection of the read they stopped waiting for.
 *
 * @example A frame must complete within its read timeout
 * ```ts
 * import { isTimeoutError, readWithDeadline } from "./deadline.ts";
 * import assert from "node:assert/strict";
 *
 * const silent = { read: () => new Promise<number | null>(() => {}) };
 * try {
 *   await readWithDeadline(silent, new Uint8Array(16), 10);
 *   assert.fail("The read should have timed out");
 * } catch (error) {
 *   assert.equal(isTimeoutError(error), true); // a real caller closes the connection here
 * }
 * ```
 *
 * @module
 */

function ignore(): void {}

/**
 * Returns a signal that aborts with a `TimeoutError` after `ms`
 * milliseconds, or earlier with the reason of `signal` if that aborts first.
 *
 * @param ms Milliseconds until the deadline.
 * @param signal An optional parent signal, e.g. the server's shutdown signal.
 * @returns `AbortSignal.timeout(ms)`, combined with `signal` through
 * `AbortSignal.any` when it is given.
 * @throws {RangeError} If `ms` is not a number from 0 to 2147483647.
 *
 * @example Usage
 * ```ts
 * import { deadlineSignal, isTimeoutError } from "./deadline.ts";
 * import assert from "node:assert/strict";
 *
 * const signal = deadlineSignal(10);
 * await new Promise((resolve) => signal.addEventListener("abort", resolve));
 * assert.equal(isTimeoutError(signal.reason), true);
 * ```
 */
export function deadlineSignal(ms: number, signal?: AbortSignal): AbortSignal {
  checkDeadline(ms);
  const timeout = AbortSignal.timeout(ms);
  return signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
}

/**
 * Settles like `promise`, or rejects with `signal.reason` as soon as
 * `signal` aborts (at once if it already has).
 *
 * The abort listener is removed when `promise` settles, so a long-lived
 * signal does not collect listeners. Aborting does not stop `promise`: it
 * keeps running, the caller may keep awaiting it (e.g. a pending `conn.read`
 * after an idle `PING`), and its rejection, if the caller abandons it, is
 * handled here instead of becoming an unhandled rejection.
 *
 * @typeParam T The type of the value of `promise`.
 * @param promise The promise to wait for.
 * @param signal The signal that stops the waiting.
 * @returns A promise that settles like `promise` unless `signal` aborts
 * first.
 * @throws {unknown} The reason of `signal` if it aborts before `promise`
 * settles.
 *
 * @example Waiting is stopped, the work goes on
 * ```ts
 * import { abortable } from "./deadline.ts";
 * import assert from "node:assert/strict";
 *
 * const { promise, resolve } = Promise.withResolvers<string>();
 * const controller = new AbortController();
 * const waiting = abortable(promise, controller.signal);
 * controller.abort(new Error("Idle"));
 * await assert.rejects(waiting, { message: "Idle" });
 *
 * resolve("late data");
 * assert.equal(await promise, "late data");
 * ```
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.then(ignore, ignore);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Tells whether `error` is the `TimeoutError` of a signal from
 * `AbortSignal.timeout`, e.g. from {@linkcode deadlineSignal}.
 *
 * @param error Any thrown value.
 * @returns `true` for a `DOMException` named `"TimeoutError"`.
 *
 * @example Usage
 * ```ts
 * import { isTimeoutError } from "./deadline.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isTimeoutError(new DOMException("Timed out", "TimeoutError")), true);
 * assert.equal(isTimeoutError(new DOMException("Aborted", "AbortError")), false);
 * assert.equal(isTimeoutError(new Error("TimeoutError")), false);
 * ```
 */
export function isTimeoutError(error: unknown): boolean {
  return error instanceof DOMException && error.name === "TimeoutError";
}

/**
 * Reads once from `conn` into `buffer`, and rejects if that takes longer
 * than `ms` milliseconds or `signal` aborts.
 *
 * It closes nothing: on a rejection the read is still pending, and only
 * closing the connection interrupts it. Until then it may still write into
 * `buffer`, and whatever it reads is lost to the caller. So after a timeout
 * either close the connection (the usual answer to a stalled frame), or,
 * to keep the connection (e.g. send a `PING` when idle and read on), use
 * {@linkcode abortable} with `conn.read` directly and keep awaiting the same
 * read promise. If `signal` has already aborted, no read is started.
 *
 * This runs once per read on a server's hot path, so the deadline is a timer
 * that is cleared when the read settles, not an `AbortSignal.timeout`, which
 * would stay alive until it fires.
 *
 * @param conn The connection to read from, e.g. a `Deno.Conn`.
 * @param buffer Where the bytes go.
 * @param ms Milliseconds the read may take.
 * @param signal An optional parent signal, e.g. the server's shutdown signal.
 * @returns The number of bytes read, or `null` at the end of the stream.
 * @throws {DOMException} A `TimeoutError` (see {@linkcode isTimeoutError})
 * if the read takes longer than `ms`.
 * @throws {RangeError} If `ms` is not a number from 0 to 2147483647.
 * @throws {unknown} The reason of `signal` if it aborts first, or the error
 * of the read.
 *
 * @example Usage
 * ```ts
 * import { readWithDeadline } from "./deadline.ts";
 * import assert from "node:assert/strict";
 *
 * const conn = {
 *   read(p: Uint8Array): Promise<number | null> {
 *     p.set([1, 2, 3]);
 *     return Promise.resolve(3);
 *   },
 * };
 * const buffer = new Uint8Array(8);
 * assert.equal(await readWithDeadline(conn, buffer, 1_000), 3);
 * assert.deepEqual(buffer.subarray(0, 3), new Uint8Array([1, 2, 3]));
 * ```
 */
export function readWithDeadline(
  conn: { read(p: Uint8Array): Promise<number | null> },
  buffer: Uint8Array,
  ms: number,
  signal?: AbortSignal,
): Promise<number | null> {
  try {
    checkDeadline(ms);
  } catch (error) {
    return Promise.reject(error);
  }
  if (signal?.aborted) return Promise.reject(signal.reason);
  const read = conn.read(buffer);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      reject(new DOMException(`Read timed out after ${ms}ms`, "TimeoutError"));
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
    read.then(
      (count) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        resolve(count);
      },
      (error) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** Longest delay `setTimeout` honours; a longer one fires at once. */
const MAX_DELAY_MS = 2_147_483_647;

function checkDeadline(ms: number): void {
  if (!(ms >= 0 && ms <= MAX_DELAY_MS)) {
    throw new RangeError(
      `Cannot set a deadline of ${ms}ms: expected a number of milliseconds from 0 to ${MAX_DELAY_MS}`,
    );
  }
}
