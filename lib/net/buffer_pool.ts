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
}

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
  }

  /** A buffer of `size` bytes: a pooled one when `size` is a pooled size and one is free. */
  take(size: number): Uint8Array {
    const pooled = this.#free.get(size)?.pop();
    if (!pooled) return new Uint8Array(size);
    this.#freeBytes -= size;
    return pooled;
  }

  /** Returns `buffer`, which nothing may use any more; kept if it is whole, of a pooled size, and there is room. */
  give(buffer: Uint8Array): void {
    const free = this.#free.get(buffer.length);
    if (
      free && buffer.byteOffset === 0 && buffer.buffer.byteLength === buffer.length &&
      this.#freeBytes + buffer.length <= this.#options.maxFreeBytes
    ) {
      free.push(buffer);
      this.#freeBytes += buffer.length;
    }
  }
}
