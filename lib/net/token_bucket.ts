/**
 * A token bucket: a rate limit that allows bursts.
 *
 * The bucket holds at most `burst` tokens and gains `ratePerSecond` tokens a second.
 * Taking more tokens than it holds is allowed and leaves it in debt; the answer is how
 * long the caller should pause so that the debt is repaid. A reader that pauses that
 * long before its next read is held to the rate on average, however large its reads,
 * and nobody is ever disconnected for going too fast.
 *
 * @module
 */

/** Options of {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /** Tokens gained per second; must be positive. */
  ratePerSecond: number;
  /** Most tokens held (the burst allowed after a quiet period). Default `ratePerSecond`. */
  burst?: number;
  /** The clock, in milliseconds. Default `Date.now`. */
  now?: () => number;
}

/**
 * A token bucket that answers "how long to pause" instead of "no".
 *
 * @example Ten a second, a burst of five
 * ```ts
 * import assert from "node:assert/strict";
 * import { TokenBucket } from "./token_bucket.ts";
 *
 * let now = 0;
 * const bucket = new TokenBucket({ ratePerSecond: 10, burst: 5, now: () => now });
 * assert.equal(bucket.take(5), 0); // the burst is free
 * assert.equal(bucket.take(2), 200); // two tokens of debt take 200 ms to repay
 * now += 200;
 * assert.equal(bucket.take(1), 100);
 * ```
 */
export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #updatedAt: number;

  /** Creates a full bucket. */
  constructor(options: TokenBucketOptions) {
    if (!(options.ratePerSecond > 0)) {
      throw new RangeError(`Cannot limit to ${options.ratePerSecond} per second: must be positive`);
    }
    this.#ratePerMs = options.ratePerSecond / 1000;
    this.#burst = Math.max(options.burst ?? options.ratePerSecond, 1);
    this.#now = options.now ?? Date.now;
    this.#tokens = this.#burst;
    this.#updatedAt = this.#now();
  }

  /** Takes `count` tokens; returns the milliseconds to pause before taking more (0 for none). */
  take(count: number): number {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#updatedAt) * this.#ratePerMs);
    this.#updatedAt = now;
    this.#tokens -= count;
    return this.#tokens >= 0 ? 0 : Math.ceil(-this.#tokens / this.#ratePerMs);
  }
}
