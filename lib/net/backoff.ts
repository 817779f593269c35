/**
 * Exponential backoff with full jitter, for retrying an operation that failed.
 *
 * This module owns one policy and nothing else: how long to wait before the next try,
 * and when to stop trying. Attempt n (counting from 1) waits a random time between 0
 * and `min(maxMs, initialMs * 2^(n-1))` ("full jitter", as described in the AWS
 * Architecture Blog's "Exponential Backoff And Jitter"), so many clients that lost the
 * same server do not come back in lockstep. It knows nothing about sockets or
 * protocols; the random source can be injected, which makes the delays deterministic
 * in tests.
 *
 * @module
 */

/** Options of {@linkcode Backoff}. */
export interface BackoffOptions {
  /** Upper bound of the first delay, in milliseconds (at least 0). */
  initialMs: number;
  /** Largest upper bound any delay can reach, in milliseconds (at least `initialMs`). */
  maxMs: number;
  /** Tries before {@linkcode Backoff.next} says stop (a whole number, or `Infinity`). Default `Infinity`. */
  maxAttempts?: number;
  /** Returns a number in [0, 1); default `Math.random`. */
  random?: () => number;
}

/**
 * The delays of one series of retries: call {@linkcode Backoff.next} before each try,
 * {@linkcode Backoff.reset} once an attempt has succeeded.
 *
 * @example Delays double up to the cap, then the attempts run out
 * ```ts
 * import assert from "node:assert/strict";
 * import { Backoff } from "./backoff.ts";
 *
 * // A random source that always returns its largest value shows the bounds.
 * const backoff = new Backoff({ initialMs: 100, maxMs: 300, maxAttempts: 4, random: () => 0.999999 });
 * assert.deepEqual([backoff.next(), backoff.next(), backoff.next(), backoff.next()], [100, 200, 300, 300]);
 * assert.equal(backoff.attempt, 4);
 * assert.equal(backoff.next(), undefined); // exhausted
 * backoff.reset();
 * assert.equal(backoff.next(), 100);
 * ```
 *
 * @example Retry an operation
 * ```ts
 * import assert from "node:assert/strict";
 * import { Backoff } from "./backoff.ts";
 * import { delay } from "./delay.ts";
 *
 * let calls = 0;
 * const flaky = () => ++calls < 3 ? Promise.reject(new Error("not yet")) : Promise.resolve("ok");
 * const backoff = new Backoff({ initialMs: 5, maxMs: 20, maxAttempts: 5 });
 * let result: string | undefined;
 * for (;;) {
 *   try {
 *     result = await flaky();
 *     break;
 *   } catch (error) {
 *     const wait = backoff.next();
 *     if (wait === undefined) throw error;
 *     await delay(wait);
 *   }
 * }
 * assert.equal(result, "ok");
 * assert.equal(backoff.attempt, 2);
 * ```
 */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #maxAttempts: number;
  readonly #random: () => number;
  #attempt = 0;

  /**
   * Creates a series of delays; nothing is waited here.
   *
   * @throws {RangeError} If a bound is negative, `maxMs` is below `initialMs`, or
   * `maxAttempts` is not a whole number of at least 0.
   */
  constructor(options: BackoffOptions) {
    const { initialMs, maxMs, maxAttempts = Infinity } = options;
    if (!(initialMs >= 0) || !Number.isFinite(initialMs)) {
      throw new RangeError(`Cannot use initialMs ${initialMs}: expected a finite number >= 0`);
    }
    if (!(maxMs >= initialMs) || !Number.isFinite(maxMs)) {
      throw new RangeError(`Cannot use maxMs ${maxMs}: expected a finite number >= initialMs`);
    }
    if (!(maxAttempts >= 0) || (maxAttempts !== Infinity && !Number.isInteger(maxAttempts))) {
      throw new RangeError(
        `Cannot use maxAttempts ${maxAttempts}: expected a whole number >= 0 or Infinity`,
      );
    }
    this.#initialMs = initialMs;
    this.#maxMs = maxMs;
    this.#maxAttempts = maxAttempts;
    this.#random = options.random ?? Math.random;
  }

  /** Attempts handed out by {@linkcode Backoff.next} since the start or the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The most attempts {@linkcode Backoff.next} hands out before it returns `undefined`. */
  get maxAttempts(): number {
    return this.#maxAttempts;
  }

  /**
   * Counts one more attempt and returns the whole milliseconds to wait before it, or
   * `undefined` when `maxAttempts` attempts were handed out already (then the count
   * stays where it is).
   */
  next(): number | undefined {
    if (this.#attempt >= this.#maxAttempts) return undefined;
    // 2^attempt overflows to Infinity for huge counts; min() caps it either way.
    const ceiling = Math.min(this.#maxMs, this.#initialMs * 2 ** this.#attempt);
    this.#attempt++;
    const r = Math.min(Math.max(this.#random(), 0), 1);
    return Math.min(Math.floor(r * (ceiling + 1)), Math.floor(ceiling));
  }

  /** Starts over: the next delay is bounded by `initialMs` again and all attempts are available. */
  reset(): void {
    this.#attempt = 0;
  }
}
