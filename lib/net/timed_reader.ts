/**
 * Reads from a connection against a deadline that may move on every read, without a
 * timer per read.
 *
 * A server wants two deadlines on each connection: a frame must complete within the
 * read timeout once its first byte arrived, and a silent connection is pinged after
 * the idle timeout. Both move with every read, and arming `AbortSignal.timeout` per
 * read would leave thousands of live timers on a busy server. This reader keeps at
 * most one timer per connection: when it fires before the current deadline (because
 * the deadline moved later), it re-arms for the remaining time. The timer is a plain
 * `setTimeout` behind an `AbortController`, so {@linkcode TimedReader.dispose} can
 * clear it when the connection ends: an `AbortSignal.timeout` would keep itself and
 * what it references alive until it fires, which under connection churn is tens of
 * megabytes of heap.
 *
 * A pending `conn.read` is never abandoned: when a deadline passes, the read stays
 * pending and the next call continues it (so a server can send `PING` and keep
 * waiting). Closing the connection is what interrupts it for good.
 *
 * @module
 */

import { abortable } from "./deadline.ts";

/** Anything with a Deno-style `read`, such as a `Deno.Conn`. */
export interface ByteReader {
  /** Reads into `p`; resolves with the byte count, or `null` at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
}

/**
 * Reads with a moving deadline; see the module documentation.
 *
 * @example A read that times out, then completes
 * ```ts
 * import assert from "node:assert/strict";
 * import { TimedReader } from "./timed_reader.ts";
 *
 * const { promise, resolve } = Promise.withResolvers<number>();
 * const source = {
 *   read(p: Uint8Array): Promise<number | null> {
 *     p[0] = 42;
 *     return promise;
 *   },
 * };
 * const reader = new TimedReader(source);
 * const buffer = new Uint8Array(8);
 * await assert.rejects(reader.read(buffer, Date.now() + 10), { name: "TimeoutError" });
 * resolve(1);
 * const chunk = await reader.read(buffer, Infinity);
 * assert.deepEqual(chunk, new Uint8Array([42]));
 * ```
 */
export class TimedReader {
  #source: ByteReader;
  #pending: Promise<Uint8Array | null> | undefined;
  #signal: AbortSignal | undefined;
  #signalFiresAt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Wraps `source`. */
  constructor(source: ByteReader) {
    this.#source = source;
  }

  /** Whether a read is pending (its buffer is still in use). */
  get reading(): boolean {
    return this.#pending !== undefined;
  }

  /**
   * Resolves with the next chunk (a view of the buffer the read used) or `null` at end
   * of stream. `buffer` is used only when no read is pending. Rejects with a
   * `TimeoutError` `DOMException` once `deadlineAt` (milliseconds since the epoch;
   * `Infinity` for none) has passed; the read then stays pending for the next call.
   */
  async read(buffer: Uint8Array, deadlineAt: number): Promise<Uint8Array | null> {
    if (this.#pending === undefined) {
      this.#pending = this.#source.read(buffer).then((n) =>
        n === null ? null : buffer.subarray(0, n)
      );
      this.#pending.catch(() => {}); // Observed below; never an unhandled rejection.
    }
    const pending = this.#pending;
    for (;;) {
      const now = Date.now();
      if (deadlineAt !== Infinity && now >= deadlineAt) {
        throw new DOMException("Read deadline passed", "TimeoutError");
      }
      const signal = deadlineAt === Infinity ? undefined : this.#signalFor(deadlineAt, now);
      try {
        const chunk = signal ? await abortable(pending, signal) : await pending;
        this.#pending = undefined;
        return chunk;
      } catch (error) {
        if (signal?.aborted && error === signal.reason) continue;
        this.#pending = undefined;
        throw error;
      }
    }
  }

  /** Clears the timer; call it when the connection is done. Reads may still be made. */
  dispose(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#signal = undefined;
  }

  #signalFor(deadlineAt: number, now: number): AbortSignal {
    if (this.#signal && !this.#signal.aborted && this.#signalFiresAt <= deadlineAt) {
      return this.#signal;
    }
    clearTimeout(this.#timer);
    const controller = new AbortController();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      controller.abort(new DOMException("Read deadline passed", "TimeoutError"));
    }, deadlineAt - now);
    this.#signal = controller.signal;
    this.#signalFiresAt = deadlineAt;
    return this.#signal;
  }
}
