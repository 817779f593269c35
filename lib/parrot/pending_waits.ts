/**
 * The read times of messages that stdout has not written yet, in the order they were
 * read, so that each wait (from a message's read to its write) can be observed once
 * the write is done.
 *
 * The drain appends one entry per read batch, closes a group of entries per drain
 * batch, and queues the group's observation behind that batch's stdout write; writes
 * complete in order, so groups leave from the front in the order they were closed.
 * The entries live in two ring buffers that grow and stay grown: a drain batch
 * allocates nothing for them, however many batches wait for stdout (at a quiet moment
 * stdout gathers up to 10 ms of them before it writes).
 *
 * @module
 */

import type { WaitHistogram } from "./wait_histogram.ts";

/** Entries the rings hold before they first grow. */
const INITIAL_ENTRIES = 64;

/**
 * A first-in first-out queue of (read time, messages) entries, taken in groups.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PendingWaits } from "./pending_waits.ts";
 * import { WaitHistogram } from "./wait_histogram.ts";
 *
 * const waits = new PendingWaits();
 * const histogram = new WaitHistogram();
 * waits.add(performance.now(), 3); // a read of three messages
 * const group = waits.closeGroup(); // the drain batch ends: 1 entry
 * // ... stdout has written the batch:
 * waits.record(group, histogram, performance.now());
 * assert.equal(histogram.snapshot().count, 3);
 * assert.equal(waits.length, 0);
 * ```
 */
export class PendingWaits {
  #readAt = new Float64Array(INITIAL_ENTRIES);
  #messages = new Float64Array(INITIAL_ENTRIES);
  /** Index of the oldest entry. */
  #head = 0;
  /** Entries held. */
  #length = 0;
  /** Entries added since the last group was closed (the newest ones). */
  #open = 0;

  /** Entries held, in closed groups and the open one. */
  get length(): number {
    return this.#length;
  }

  /** Appends a read of `messages` messages at `readAt` (`performance.now()`) to the open group. */
  add(readAt: number, messages: number): void {
    if (this.#length === this.#readAt.length) this.#grow();
    const at = (this.#head + this.#length) & (this.#readAt.length - 1);
    this.#readAt[at] = readAt;
    this.#messages[at] = messages;
    this.#length++;
    this.#open++;
  }

  /** Closes the open group and returns its size, for {@linkcode PendingWaits.record}. */
  closeGroup(): number {
    const size = this.#open;
    this.#open = 0;
    return size;
  }

  /**
   * Observes the wait until `now` of each entry of the oldest closed group, of `size`
   * entries, weighted by its messages, and removes them.
   */
  record(size: number, histogram: WaitHistogram, now: number): void {
    const mask = this.#readAt.length - 1;
    for (let i = 0; i < size; i++) {
      const at = (this.#head + i) & mask;
      histogram.observe((now - this.#readAt[at]) / 1000, this.#messages[at]);
    }
    this.discard(size);
  }

  /** Removes the oldest closed group, of `size` entries, without observing it (its write failed). */
  discard(size: number): void {
    this.#head = (this.#head + size) & (this.#readAt.length - 1);
    this.#length -= size;
  }

  /** Doubles both rings, the entries in order from index 0. */
  #grow(): void {
    const capacity = this.#readAt.length;
    const readAt = new Float64Array(capacity * 2);
    const messages = new Float64Array(capacity * 2);
    for (let i = 0; i < this.#length; i++) {
      const at = (this.#head + i) & (capacity - 1);
      readAt[i] = this.#readAt[at];
      messages[i] = this.#messages[at];
    }
    this.#readAt = readAt;
    this.#messages = messages;
    this.#head = 0;
  }
}
