/**
 * One buffer that a producer fills with many small pieces and then writes at once.
 *
 * The server's main task builds each stdout batch here: every message is copied once,
 * straight into this buffer, and the batch goes out in one write (or a few, if the
 * writer takes it in parts). Nothing is queued per piece and the buffer is reused for
 * the next batch, so a batch costs no allocation at all once the buffer has grown to
 * the largest batch. It suits a producer that waits for each flush before it appends
 * again; {@linkcode WriteCoalescer} is for writers that must not wait.
 *
 * @module
 */

import type { ByteWriter } from "./write_coalescer.ts";

const EMPTY = new Uint8Array(0);
/**
 * Up to this many bytes are copied byte by byte: below it the loop is faster than
 * `set()`, and above it `set()` wins even with the view it needs for a range.
 */
const SHORT_COPY_BYTES = 64;

/**
 * Collects bytes in one growing buffer and writes them with {@linkcode BatchWriter.flush}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BatchWriter } from "./batch_writer.ts";
 *
 * const writes: string[] = [];
 * const out = new BatchWriter({
 *   write: (p) => (writes.push(new TextDecoder().decode(p)), Promise.resolve(p.length)),
 * });
 * out.append(new TextEncoder().encode("ann: "));
 * out.append(new TextEncoder().encode("hi\n"));
 * await out.flush();
 * assert.deepEqual(writes, ["ann: hi\n"]);
 * ```
 */
export class BatchWriter {
  #writer: ByteWriter;
  #buffer: Uint8Array;
  readonly #initialBytes: number;
  #length = 0;

  /** Writes to `writer`; the buffer starts at `initialBytes` and doubles as needed. */
  constructor(writer: ByteWriter, initialBytes = 64 * 1024) {
    this.#writer = writer;
    this.#initialBytes = initialBytes;
    this.#buffer = new Uint8Array(initialBytes);
  }

  /** Bytes appended and not yet flushed. */
  get length(): number {
    return this.#length;
  }

  /** Copies `bytes` to the end of the batch. */
  append(bytes: Uint8Array): void {
    if (bytes.length <= SHORT_COPY_BYTES) {
      this.appendRange(bytes, 0, bytes.length);
      return;
    }
    this.#reserve(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /** Copies `bytes[start, end)` to the end of the batch, without making a view of short ranges. */
  appendRange(bytes: Uint8Array, start: number, end: number): void {
    if (end - start > SHORT_COPY_BYTES) {
      this.append(bytes.subarray(start, end));
      return;
    }
    // A byte loop beats the call into set() for a name prefix or a short message.
    this.#reserve(end - start);
    const buffer = this.#buffer;
    let at = this.#length;
    for (let i = start; i < end; i++) buffer[at++] = bytes[i];
    this.#length = at;
  }

  /** What the batch holds, as a view (valid until the next append or clear). */
  view(): Uint8Array {
    return this.#buffer.subarray(0, this.#length);
  }

  /** Appends one byte. */
  appendByte(byte: number): void {
    this.#reserve(1);
    this.#buffer[this.#length++] = byte;
  }

  /** Grows the buffer, keeping what it holds, until `extra` more bytes fit. */
  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#buffer.length) return;
    let capacity = Math.max(this.#buffer.length * 2, this.#initialBytes);
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }

  /**
   * Lets go of the buffer while the batch is empty, for a producer that has gone
   * quiet; the next append allocates `initialBytes` again. Returns whether it did.
   */
  release(): boolean {
    if (this.#length > 0) return false;
    this.#buffer = EMPTY;
    return true;
  }

  /** Empties the batch without writing it. */
  clear(): void {
    this.#length = 0;
  }

  /**
   * Writes the batch, all of it, and empties it. On a write error the batch is dropped
   * and the error is thrown.
   */
  async flush(): Promise<void> {
    const length = this.#length;
    let offset = 0;
    try {
      while (offset < length) {
        const written = await this.#writer.write(this.#buffer.subarray(offset, length));
        if (written <= 0) throw new Error("Cannot write: the writer accepted no bytes");
        offset += written;
      }
    } finally {
      this.#length = 0;
    }
  }
}
