/**
 * A bounded pool of byte buffers in power-of-two sizes, so that a busy server reuses
 * its read buffers instead of allocating one per read.
 *
 * A read buffer that frames point into cannot be reused until whoever consumes those
 * frames is done with them; that consumer gives it back here. Only whole buffers of a
 * pooled size (a power of two from `minBytes` to `maxBytes`) are kept, and only while
 * the free ones add up to at most `maxFreeBytes`: idle connections keep their small
 * buffers of their own, and a burst leaves at most `maxFreeBytes` behind.
 *
 * Buffers of one small size (`slotBytes`, the idle read buffer) are views carved from
 * shared slabs instead: a buffer of its own would cost several times its bytes in
 * bookkeeping (the `ArrayBuffer`, its backing store), and 10,000 idle connections each
 * hold one. Given back, a slot is reused. One that is never given back is only lost
 * until its slab's other slots are gone too, and then the slab is collected with
 * them; so at worst a live slot keeps one slab (`SLAB_BYTES`) alive.
 *
 * @module
 */

/** Options of {@linkcode BufferPool}. */
export interface BufferPoolOptions {
  /** Smallest pooled size, a power of two. */
  minBytes: number;
  /** Largest pooled size, a power of two. */
  maxBytes: number;
  /** Most bytes kept in free buffers, all sizes together. */
  maxFreeBytes: number;
  /** A size below `minBytes` whose buffers are slots of shared slabs. Default none. */
  slotBytes?: number;
}

/** Bytes of one slab that slots are carved from. */
export const SLAB_BYTES = 4096;

/**
 * Hands out buffers of any size, reusing returned buffers of the pooled sizes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BufferPool } from "./buffer_pool.ts";
 *
 * const pool = new BufferPool({ minBytes: 1024, maxBytes: 4096, maxFreeBytes: 16384 });
 * const buffer = pool.take(2048);
 * pool.give(buffer);
 * assert.equal(pool.take(2048), buffer);
 * assert.equal(pool.take(16).length, 16); // other sizes are simply allocated
 * ```
 */
export class BufferPool {
  readonly #options: BufferPoolOptions;
  /** Free buffers by size. */
  readonly #free = new Map<number, Uint8Array[]>();
  #freeBytes = 0;
  /** Slots given back; never more than were in use at once. */
  readonly #freeSlots: Uint8Array[] = [];
  /** The slab new slots are carved from, and how much of it is carved. */
  #slab: Uint8Array = NO_SLAB;
  #slabUsed = 0;
  /** Every slab carved from: only their slots are taken back as slots. */
  readonly #slabs = new WeakSet<ArrayBufferLike>();

  /** Pools the power-of-two sizes from `minBytes` to `maxBytes`. */
  constructor(options: BufferPoolOptions) {
    this.#options = options;
    for (let size = options.minBytes; size <= options.maxBytes; size *= 2) {
      this.#free.set(size, []);
    }
  }

  /** Free buffers held now, all sizes together. */
  get size(): number {
    let count = 0;
    for (const buffers of this.#free.values()) count += buffers.length;
    return count;
  }

  /** Bytes held in free buffers now. */
  get freeBytes(): number {
    return this.#freeBytes;
  }

  /** Lets go of every free buffer (for a server that has gone quiet). */
  clear(): void {
    for (const buffers of this.#free.values()) buffers.length = 0;
    this.#freeBytes = 0;
    this.#freeSlots.length = 0;
    this.#slab = NO_SLAB;
    this.#slabUsed = 0;
  }

  /**
   * A buffer of `size` bytes: a free slot or a new one when `size` is `slotBytes`, a
   * pooled one when `size` is a pooled size and one is free, else a new one.
   */
  take(size: number): Uint8Array {
    if (size === this.#options.slotBytes) return this.#freeSlots.pop() ?? this.#carveSlot(size);
    const pooled = this.#free.get(size)?.pop();
    if (!pooled) return new Uint8Array(size);
    this.#freeBytes -= size;
    return pooled;
  }

  /** Returns `buffer`, which nothing may use any more; kept if it is whole, of a pooled size, and there is room. */
  give(buffer: Uint8Array): void {
    if (buffer.length === this.#options.slotBytes) {
      if (this.#slabs.has(buffer.buffer)) this.#freeSlots.push(buffer);
      return;
    }
    const free = this.#free.get(buffer.length);
    if (
      free && buffer.byteOffset === 0 && buffer.buffer.byteLength === buffer.length &&
      this.#freeBytes + buffer.length <= this.#options.maxFreeBytes
    ) {
      free.push(buffer);
      this.#freeBytes += buffer.length;
    }
  }

  #carveSlot(size: number): Uint8Array {
    if (this.#slabUsed + size > this.#slab.length) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#slabs.add(this.#slab.buffer);
      this.#slabUsed = 0;
    }
    const slot = this.#slab.subarray(this.#slabUsed, this.#slabUsed + size);
    this.#slabUsed += size;
    return slot;
  }
}

const NO_SLAB = new Uint8Array(0);
