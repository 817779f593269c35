/**
 * How big a connection's next read buffer is.
 *
 * A connection reads into a buffer that fits its traffic: 128 bytes while it is idle
 * (10,000 idle clients stay cheap), doubling each time a read fills it, up to 64 KiB
 * while it is busy (3 busy clients go fast), and halving when reads use under a
 * quarter of it. Many busy clients share a budget instead: each one's buffer grows to
 * at most the budget divided by the number of clients (never under 4 KiB), so that
 * 1,000 clients pipelining at once hold 8 MiB of read buffers, not 64 (peak server
 * RSS in that load: 277 MB with 64 KiB each, 147 MB with the budget).
 *
 * {@linkcode readBufferPool} is where those buffers come from and go back to: every
 * size this module picks is reused, so a steady load does not allocate per read.
 *
 * @module
 */

import { BufferPool } from "../net/buffer_pool.ts";
import {
  MAX_READ_BUFFER_BYTES,
  MIN_BUSY_READ_BUFFER_BYTES,
  MIN_READ_BUFFER_BYTES,
  READ_BUFFER_BUDGET_BYTES,
} from "../defaults.ts";

/**
 * The size of the buffer for a connection's next read, after a read of `used` bytes
 * into a buffer of `current` bytes, with `clients` connected: a power of two between
 * 128 bytes and 64 KiB.
 *
 * A read that uses under a quarter of the buffer halves it, unless the read before it
 * filled its buffer (`afterFullRead`): the small read is then most likely the rest of a
 * frame that did not fit, and halving would split the next such frame again (a frame a
 * little over the smallest buffer would take two reads each time).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nextReadBufferSize } from "./read_buffer_size.ts";
 *
 * assert.equal(nextReadBufferSize(4096, 4096, 3), 8192); // full: grows
 * assert.equal(nextReadBufferSize(65536, 65536, 3), 65536); // at most 64 KiB
 * assert.equal(nextReadBufferSize(4096, 100, 3), 2048); // mostly empty: shrinks
 * assert.equal(nextReadBufferSize(128, 8, 3, true), 128); // the rest of a frame: stays
 * assert.equal(nextReadBufferSize(8192, 8192, 1000), 8192); // 8 MiB / 1,000 clients
 * ```
 */
export function nextReadBufferSize(
  current: number,
  used: number,
  clients: number,
  afterFullRead = false,
): number {
  const limit = busyLimit(clients);
  if (current > limit) return limit;
  if (used === current) return Math.min(current * 2, limit);
  if (used < current / 4 && !afterFullRead) return Math.max(current / 2, MIN_READ_BUFFER_BYTES);
  return current;
}

/** The largest buffer one of `clients` busy connections gets: a power of two. */
function busyLimit(clients: number): number {
  const share = READ_BUFFER_BUDGET_BYTES / Math.max(clients, 1);
  if (share >= MAX_READ_BUFFER_BYTES) return MAX_READ_BUFFER_BYTES;
  if (share <= MIN_BUSY_READ_BUFFER_BYTES) return MIN_BUSY_READ_BUFFER_BYTES;
  return 2 ** Math.floor(Math.log2(share));
}

/**
 * The pool of a server's read buffers: 128-byte slots (every connection's first
 * buffer, see {@linkcode BufferPool}) and every larger size {@linkcode nextReadBufferSize}
 * picks, with at most `maxFreeBytes` kept free. The sizes under 4 KiB are pooled too:
 * a connection whose messages come one or two to a read settles at 256 or 512 bytes,
 * and would otherwise take a new buffer for every read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readBufferPool } from "./read_buffer_size.ts";
 *
 * const pool = readBufferPool(1 << 20);
 * const buffer = pool.take(256);
 * pool.give(buffer);
 * assert.equal(pool.take(256), buffer);
 * ```
 */
export function readBufferPool(maxFreeBytes: number): BufferPool {
  return new BufferPool({
    minBytes: 2 * MIN_READ_BUFFER_BYTES,
    maxBytes: MAX_READ_BUFFER_BYTES,
    maxFreeBytes,
    slotBytes: MIN_READ_BUFFER_BYTES,
  });
}
