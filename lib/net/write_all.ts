/**
 * Writing a whole buffer to a connection: `conn.write` may take fewer bytes than it was
 * given (a full socket buffer, a large write), and every TCP service loops over it by
 * hand. This is the loop, with an `AbortSignal` for the write that never drains.
 *
 * @module
 */

import { abortable } from "./deadline.ts";
import type { ByteWriter } from "./write_coalescer.ts";

/** Options of {@linkcode writeAll}. */
export interface WriteAllOptions {
  /**
   * Stops the waiting: `writeAll` rejects with `signal.reason` (`AbortSignal.timeout(ms)`
   * makes it a deadline). A write already under way is not undone: the bytes it took may
   * still go out, so a caller that gives up on a write usually closes the connection.
   */
  signal?: AbortSignal;
}

/**
 * Writes every byte of `bytes` to `writer`, looping over short writes.
 *
 * @throws {Deno.errors.WriteZero} If the writer takes no bytes of a non-empty write.
 * @throws {unknown} `signal.reason` if the signal aborts first, or the writer's error.
 *
 * @example Write a reply whole, within a second
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeAll } from "./write_all.ts";
 *
 * const received: number[] = [];
 * const slowSocket = { // takes at most 3 bytes per write
 *   write(p: Uint8Array): Promise<number> {
 *     received.push(...p.subarray(0, 3));
 *     return Promise.resolve(Math.min(p.length, 3));
 *   },
 * };
 * await writeAll(slowSocket, new TextEncoder().encode("hello\n"), {
 *   signal: AbortSignal.timeout(1_000),
 * });
 * assert.equal(new TextDecoder().decode(new Uint8Array(received)), "hello\n");
 * ```
 */
export async function writeAll(
  writer: ByteWriter,
  bytes: Uint8Array,
  options: WriteAllOptions = {},
): Promise<void> {
  const { signal } = options;
  for (let written = 0; written < bytes.length;) {
    signal?.throwIfAborted();
    const write = writer.write(written === 0 ? bytes : bytes.subarray(written));
    const n = signal ? await abortable(write, signal) : await write;
    if (n === 0) {
      throw new Deno.errors.WriteZero(
        `Cannot write: the writer took 0 of ${bytes.length - written} bytes`,
      );
    }
    written += n;
  }
}
