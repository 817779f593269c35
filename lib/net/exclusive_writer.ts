/**
 * One output that several Workers write whole batches to, without interleaving.
 *
 * Two threads writing the same pipe at once can interleave their bytes when a write
 * is larger than the pipe's atomic size (4 KiB on Linux), or when it is only partly
 * taken and the rest follows in another write: a record of one could land inside a
 * record of the other. So each Worker wraps its writer (`Deno.stdout`) in an
 * {@linkcode ExclusiveWriter}: every chunk goes out whole, every byte of it, while the
 * writer holds a lock in shared memory that the other Workers wait for
 * (`Atomics.waitAsync`, which does not block the thread).
 *
 * @module
 */

import type { ByteWriter } from "./write_coalescer.ts";

const UNLOCKED = 0;
const LOCKED = 1;
/** Longest wait for the lock before looking again. */
const RECHECK_MS = 5;

/**
 * Writes each chunk whole under a lock shared through `lock` (a `SharedArrayBuffer`
 * of at least 4 bytes, zeroed): chunks of writers that share it never interleave.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ExclusiveWriter } from "./exclusive_writer.ts";
 *
 * const parts: string[] = [];
 * // A writer that takes at most 3 bytes a call, as a full pipe might.
 * const slow = {
 *   write: async (p: Uint8Array) => {
 *     await Promise.resolve();
 *     parts.push(new TextDecoder().decode(p.subarray(0, 3)));
 *     return Math.min(p.length, 3);
 *   },
 * };
 * const lock = new SharedArrayBuffer(4);
 * const a = new ExclusiveWriter(slow, lock);
 * const b = new ExclusiveWriter(slow, lock); // as if in another Worker
 * const bytes = (text: string) => new TextEncoder().encode(text);
 * await Promise.all([a.write(bytes("aaaaa\n")), b.write(bytes("bbbbb\n"))]);
 * assert.equal(parts.join(""), "aaaaa\nbbbbb\n");
 * ```
 */
export class ExclusiveWriter implements ByteWriter {
  readonly #writer: ByteWriter;
  readonly #lock: Int32Array;

  /** Writes to `writer` while holding the lock in `lock`. */
  constructor(writer: ByteWriter, lock: SharedArrayBuffer) {
    this.#writer = writer;
    this.#lock = new Int32Array(lock, 0, 1);
  }

  /** Writes all of `p` under the lock; resolves with `p.length`. */
  async write(p: Uint8Array): Promise<number> {
    await this.#acquire();
    try {
      let offset = 0;
      while (offset < p.length) {
        const written = await this.#writer.write(p.subarray(offset));
        if (written <= 0) throw new Error("Cannot write: the writer accepted no bytes");
        offset += written;
      }
      return p.length;
    } finally {
      Atomics.store(this.#lock, 0, UNLOCKED);
      Atomics.notify(this.#lock, 0, 1);
    }
  }

  async #acquire(): Promise<void> {
    const lock = this.#lock;
    while (Atomics.compareExchange(lock, 0, UNLOCKED, LOCKED) !== UNLOCKED) {
      const wait = Atomics.waitAsync(lock, 0, LOCKED, RECHECK_MS);
      if (!wait.async) continue;
      // A pending waitAsync does not keep Deno's event loop alive, a timer does; it
      // also bounds the wait should a notify be missed.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        wait.value,
        new Promise((resolve) => timer = setTimeout(resolve, RECHECK_MS)),
      ]);
      clearTimeout(timer);
    }
  }
}
