/**
 * A connection limit that several listeners share, across Workers.
 *
 * A server whose listeners run in several Workers (each with its own `SO_REUSEPORT`
 * socket) still has one limit on the connections it serves at once. The count lives
 * in a `SharedArrayBuffer` that every Worker gets: taking a slot is one atomic add,
 * undone when it went over the limit. {@linkcode serveTcp}'s `connectionSlots` option
 * takes one.
 *
 * @module
 */

/** Slots for connections: take one before serving, give it back after. */
export interface ConnectionSlots {
  /** Takes a slot; `false` when all are taken. */
  tryTake(): boolean;
  /** Gives back a slot taken with {@linkcode ConnectionSlots.tryTake}. */
  give(): void;
}

/**
 * At most `limit` connections at once, counted in shared memory: make it in one
 * thread, send {@linkcode SharedConnectionSlots.buffer} to the others and wrap it
 * there with the same limit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SharedConnectionSlots } from "./connection_slots.ts";
 *
 * const here = new SharedConnectionSlots(2);
 * const inAWorker = new SharedConnectionSlots(2, here.buffer); // same count
 * assert.ok(here.tryTake());
 * assert.ok(inAWorker.tryTake());
 * assert.equal(here.tryTake(), false); // two taken in all
 * inAWorker.give();
 * assert.ok(here.tryTake());
 * assert.equal(here.taken, 2);
 * ```
 */
export class SharedConnectionSlots implements ConnectionSlots {
  /** The shared count; send it to the other threads. */
  readonly buffer: SharedArrayBuffer;
  readonly #count: Int32Array;
  readonly #limit: number;

  /** `limit` slots, counted in `buffer` (a new one by default). */
  constructor(
    limit: number,
    buffer: SharedArrayBuffer = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT),
  ) {
    this.buffer = buffer;
    this.#count = new Int32Array(buffer, 0, 1);
    this.#limit = limit;
  }

  /** Slots taken now, by every thread. */
  get taken(): number {
    return Atomics.load(this.#count, 0);
  }

  tryTake(): boolean {
    if (Atomics.add(this.#count, 0, 1) < this.#limit) return true;
    Atomics.sub(this.#count, 0, 1);
    return false;
  }

  give(): void {
    Atomics.sub(this.#count, 0, 1);
  }
}
