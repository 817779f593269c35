/**
 * A batch writer whose writes run behind its producer: while one batch is being
 * written, the next one fills.
 *
 * The server's main task copies every message into a stdout batch, relays it, and
 * answers `PING` only once everything before it is written out. With one buffer it
 * had to wait for each stdout write before it could take the next messages, so a
 * relay that arrived meanwhile waited for a file write. Here two {@linkcode BatchWriter}s
 * take turns: the producer appends to the front one and calls
 * {@linkcode PipelinedWriter.commit}; at most one write is in flight, and it takes
 * whatever the front holds when the previous write is done. Work that must wait for
 * the bytes appended so far (a `PONG`, a close) is queued with
 * {@linkcode PipelinedWriter.afterWritten} and runs when they are out. A producer that
 * gets ahead of the writer waits in {@linkcode PipelinedWriter.room}, so memory stays
 * bounded.
 *
 * @module
 */

import { BatchWriter } from "./batch_writer.ts";
import type { ByteWriter } from "./write_coalescer.ts";

/** Options of {@linkcode PipelinedWriter}. */
export interface PipelinedWriterOptions {
  /** Starting size of each of the two buffers; they double as needed. */
  initialBytes?: number;
  /**
   * Called once, with the error, when a write fails. The bytes of that write and
   * everything appended afterwards are dropped from then on; work queued with
   * {@linkcode PipelinedWriter.afterWritten} still runs, told that its bytes were not
   * written.
   */
  onError?: (error: unknown) => void;
}

/**
 * Work that waits for the bytes appended before it: `written` is false when a write
 * failed, and so some of them were dropped.
 */
export type AfterWritten = (written: boolean) => void;

/**
 * Two batches that take turns: one filling, one being written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PipelinedWriter } from "./pipelined_writer.ts";
 *
 * const writes: string[] = [];
 * const out = new PipelinedWriter({
 *   write: (p) => (writes.push(new TextDecoder().decode(p)), Promise.resolve(p.length)),
 * });
 * const done: string[] = [];
 * out.append(new TextEncoder().encode("ann: hi\n"));
 * out.afterWritten(() => done.push("pong"));
 * out.commit();
 * await out.idle();
 * assert.deepEqual(writes, ["ann: hi\n"]);
 * assert.deepEqual(done, ["pong"]);
 * ```
 */
export class PipelinedWriter {
  #front: BatchWriter;
  #back: BatchWriter;
  /** Work waiting for the bytes in the front batch (and all before them). */
  #frontActions: AfterWritten[] = [];
  #backActions: AfterWritten[] = [];
  /** The write loop, while it runs. */
  #writing: Promise<void> | null = null;
  /** The write of the back batch in flight, if any. */
  #flushing: Promise<void> | null = null;
  #broken = false;
  readonly #onError?: (error: unknown) => void;

  /** Writes to `writer`, one write in flight at a time. */
  constructor(writer: ByteWriter, options: PipelinedWriterOptions = {}) {
    this.#front = new BatchWriter(writer, options.initialBytes);
    this.#back = new BatchWriter(writer, options.initialBytes);
    this.#onError = options.onError;
  }

  /** Bytes appended and not yet handed to a write. */
  get length(): number {
    return this.#front.length;
  }

  /** Whether a write failed; everything appended is dropped since. */
  get broken(): boolean {
    return this.#broken;
  }

  /** Copies `bytes` to the end of the front batch. */
  append(bytes: Uint8Array): void {
    this.#front.append(bytes);
  }

  /** Copies `bytes[start, end)` to the end of the front batch. */
  appendRange(bytes: Uint8Array, start: number, end: number): void {
    this.#front.appendRange(bytes, start, end);
  }

  /** Appends one byte to the front batch. */
  appendByte(byte: number): void {
    this.#front.appendByte(byte);
  }

  /**
   * Runs `action` once every byte appended so far is written, with `true`; or, when a
   * write failed and some of them were dropped, with `false`.
   */
  afterWritten(action: AfterWritten): void {
    if (this.#front.length === 0 && this.#writing === null) action(!this.#broken);
    else this.#frontActions.push(action);
  }

  /** Starts writing what the front batch holds, unless a write is in flight (it will follow). */
  commit(): void {
    if (this.#writing === null && (this.#front.length > 0 || this.#frontActions.length > 0)) {
      this.#writing = this.#writeLoop();
    }
  }

  /** Waits while the front batch holds `maxBytes` or more and a write is in flight. */
  async room(maxBytes: number): Promise<void> {
    while (this.#front.length >= maxBytes && this.#flushing !== null) await this.#flushing;
  }

  /**
   * Lets go of both buffers if nothing is pending or being written (for a producer
   * that has gone quiet); the next append allocates again. Returns whether it did.
   */
  release(): boolean {
    if (this.#writing !== null || this.#front.length > 0) return false;
    this.#front.release();
    this.#back.release();
    return true;
  }

  /** Commits, and resolves once everything appended is written and every action has run. */
  async idle(): Promise<void> {
    this.commit();
    while (this.#writing !== null) await this.#writing;
  }

  async #writeLoop(): Promise<void> {
    try {
      while (this.#front.length > 0 || this.#frontActions.length > 0) {
        [this.#front, this.#back] = [this.#back, this.#front];
        [this.#frontActions, this.#backActions] = [this.#backActions, this.#frontActions];
        this.#flushing = this.#flushBack();
        await this.#flushing;
        this.#flushing = null;
        const written = !this.#broken;
        for (const action of this.#backActions) action(written);
        this.#backActions.length = 0;
      }
    } finally {
      this.#writing = null;
      this.#flushing = null;
    }
  }

  async #flushBack(): Promise<void> {
    if (this.#broken) {
      this.#back.clear();
      return;
    }
    try {
      await this.#back.flush();
    } catch (error) {
      this.#broken = true;
      this.#onError?.(error);
    }
  }
}
