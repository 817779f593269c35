/**
 * A bounded pool of equally sized byte buffers, so that a busy server reuses its large
 * read buffers instead of allocating one per read.
 *
 * A read buffer that frames point into cannot be reused until whoever consumes those
 * frames is done with them; that consumer gives it back here. Only buffers of the
 * pooled size are kept, and at most `maxBuffers` of them: idle connections keep small
 * buffers of their own and hold nothing from the pool.
 *
 * @module
 */

/**
 * Hands out buffers of any size, reusing returned buffers of `bufferSize` bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BufferPool } from "./buffer_pool.ts";
 *
 * const pool = new BufferPool(1024, 4);
 * const buffer = pool.take(1024);
 * pool.give(buffer);
 * assert.equal(pool.take(1024), buffer);
 * assert.equal(pool.take(16).length, 16); // other sizes are simply allocated
 * ```
 */
export class BufferPool {
  readonly #bufferSize: number;
  readonly #maxBuffers: number;
  #free: Uint8Array[] = [];

  /** Pools buffers of `bufferSize` bytes, keeping at most `maxBuffers` free ones. */
  constructor(bufferSize: number, maxBuffers: number) {
    this.#bufferSize = bufferSize;
    this.#maxBuffers = maxBuffers;
  }

  /** Free buffers held now. */
  get size(): number {
    return this.#free.length;
  }

  /** A buffer of `size` bytes: a pooled one when `size` is the pooled size and one is free. */
  take(size: number): Uint8Array {
    if (size === this.#bufferSize) {
      const pooled = this.#free.pop();
      if (pooled) return pooled;
    }
    return new Uint8Array(size);
  }

  /** Returns `buffer`, which nothing may use any more; kept if it is of the pooled size and there is room. */
  give(buffer: Uint8Array): void {
    if (
      buffer.length === this.#bufferSize && buffer.byteOffset === 0 &&
      buffer.buffer.byteLength === this.#bufferSize && this.#free.length < this.#maxBuffers
    ) {
      this.#free.push(buffer);
    }
  }
}
