/**
 * When a writer's small batches go out: together, at most every few milliseconds,
 * checked as batches arrive, with a timer only for when they stop.
 *
 * At a quiet moment each batch is a message or two, and a write each costs more than
 * the message. So a small batch waits for the next ones, up to `gatherMs`. The age of
 * the oldest one is checked when the next batch arrives, in a turn that runs anyway,
 * after that batch's own work, rather than by a timer that wakes the thread once more.
 * The timer (`backstopMs`, later than `gatherMs`) is for the last batch before a pause
 * only, and is cleared while batches keep coming. (Measured in docs/PERFORMANCE.md:
 * alone this gained nothing; with the synchronous writes of `stdout_writer.ts`, which
 * take away the other wake-up, the write's completion, p90 -31% and p99 -15% at one
 * publisher x 1,000 msgs/s.)
 *
 * @module
 */

/** What a {@linkcode GatheredCommit} commits: a batching writer such as `PipelinedWriter`. */
export interface Committable {
  /** Bytes waiting to be written. */
  readonly length: number;
  /** Starts writing what is waiting (or follows the write in flight). */
  commit(): void;
}

/** Options of {@linkcode GatheredCommit}. */
export interface GatheredCommitOptions {
  /** Longest a batch waits while more batches come, in ms. */
  gatherMs: number;
  /** Longest a batch waits when no more come, in ms. Default twice `gatherMs`. */
  backstopMs?: number;
  /** The clock, in ms. Default `performance.now`; tests pass their own. */
  now?: () => number;
}

/**
 * Commits a writer at once ({@linkcode GatheredCommit.now}) or once the oldest batch
 * waiting has waited long enough ({@linkcode GatheredCommit.gather}).
 *
 * @example Batches a millisecond apart are written together, every 10 ms
 * ```ts
 * import assert from "node:assert/strict";
 * import { GatheredCommit } from "./gathered_commit.ts";
 *
 * let clock = 0;
 * const writes: number[] = [];
 * const writer = {
 *   length: 0,
 *   commit() {
 *     writes.push(this.length);
 *     this.length = 0;
 *   },
 * };
 * const gathered = new GatheredCommit(writer, { gatherMs: 10, now: () => clock });
 * for (; clock < 12; clock++) {
 *   writer.length += 50; // a batch of records
 *   gathered.gather();
 * }
 * assert.deepEqual(writes, [550]); // the batches of 0 to 10 ms, with the one at 10 ms
 * gathered.dispose();
 * ```
 */
export class GatheredCommit {
  readonly #writer: Committable;
  readonly #gatherMs: number;
  readonly #backstopMs: number;
  readonly #now: () => number;
  /** When the oldest batch not yet committed was gathered, if one waits. */
  #since: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.now();
  };

  /** Commits `writer` as the module documentation says. */
  constructor(writer: Committable, options: GatheredCommitOptions) {
    this.#writer = writer;
    this.#gatherMs = options.gatherMs;
    this.#backstopMs = options.backstopMs ?? 2 * options.gatherMs;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Commits now (something waits for the write, or the batch is big enough). */
  now(): void {
    this.#since = undefined;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#writer.commit();
  }

  /** A batch was appended: commits if the oldest one waiting is due, else lets it wait. */
  gather(): void {
    if (this.#writer.length === 0) return;
    const now = this.#now();
    if (this.#since === undefined) {
      this.#since = now;
      this.#timer ??= setTimeout(this.#onTimer, this.#backstopMs);
    } else if (now - this.#since >= this.#gatherMs) {
      this.now();
    }
  }

  /** Clears the timer; what waits is its owner's to flush. */
  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#since = undefined;
  }
}
