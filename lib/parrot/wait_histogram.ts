/**
 * How long messages wait between being read from a client and being written out to
 * stdout: a histogram with fixed buckets, fed once per read batch with that batch's
 * message count as the weight (never once per message: the drain is a hot path).
 *
 * The buckets (50 µs to 1 s) are Prometheus-style upper bounds in seconds; `/metrics`
 * renders a {@linkcode HistogramSnapshot} as a `histogram` family.
 *
 * @module
 */

/**
 * The upper bounds, in seconds, of the buckets of {@linkcode WaitHistogram}: 50 µs to
 * 1 s, roughly 1-2.5-5 per decade; anything slower lands in `+Inf`.
 */
export const OUTPUT_WAIT_BUCKETS_SECONDS: readonly number[] = Object.freeze([
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
]);

/** A copy of a histogram's state, in the shape of Prometheus' exposition. */
export interface HistogramSnapshot {
  /** Upper bounds of the buckets in seconds, ascending (`+Inf` is implied). */
  readonly bounds: readonly number[];
  /** Cumulative counts: `cumulative[i]` observations were at most `bounds[i]`. */
  readonly cumulative: readonly number[];
  /** Observations in all (the `+Inf` bucket). */
  readonly count: number;
  /** Sum of the observed values, in seconds. */
  readonly sum: number;
}

/**
 * A fixed-bucket histogram of waits in seconds; {@linkcode WaitHistogram.observe} takes
 * a weight, so one call stands for many messages that waited as long.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WaitHistogram } from "./wait_histogram.ts";
 *
 * const histogram = new WaitHistogram([0.001, 0.01]);
 * histogram.observe(0.0005, 3); // three messages waited 0.5 ms
 * histogram.observe(0.5);
 * const snapshot = histogram.snapshot();
 * assert.deepEqual(snapshot.cumulative, [3, 3]);
 * assert.equal(snapshot.count, 4);
 * ```
 */
export class WaitHistogram {
  readonly #bounds: readonly number[];
  /** Per bucket, not cumulative; the last one is `+Inf`. */
  readonly #counts: Float64Array;
  #count = 0;
  #sum = 0;

  /** A histogram with these upper bounds (seconds, ascending). */
  constructor(bounds: readonly number[] = OUTPUT_WAIT_BUCKETS_SECONDS) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i] > bounds[i - 1])) throw new RangeError("Bucket bounds must ascend");
    }
    this.#bounds = bounds;
    this.#counts = new Float64Array(bounds.length + 1);
  }

  /** Records `weight` observations of `seconds` (a negative wait counts as 0). */
  observe(seconds: number, weight = 1): void {
    const value = seconds > 0 ? seconds : 0;
    const bounds = this.#bounds;
    let bucket = 0;
    while (bucket < bounds.length && value > bounds[bucket]) bucket++;
    this.#counts[bucket] += weight;
    this.#count += weight;
    this.#sum += value * weight;
  }

  /** The state now, cumulative as Prometheus wants it. */
  snapshot(): HistogramSnapshot {
    const cumulative: number[] = [];
    let total = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      total += this.#counts[i];
      cumulative.push(total);
    }
    return { bounds: this.#bounds, cumulative, count: this.#count, sum: this.#sum };
  }
}

/**
 * A histogram with nothing observed, for a server that does not measure (the shards
 * of a server on several threads report none).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { emptyHistogram } from "./wait_histogram.ts";
 *
 * assert.equal(emptyHistogram().count, 0);
 * ```
 */
export function emptyHistogram(
  bounds: readonly number[] = OUTPUT_WAIT_BUCKETS_SECONDS,
): HistogramSnapshot {
  return { bounds, cumulative: bounds.map(() => 0), count: 0, sum: 0 };
}
