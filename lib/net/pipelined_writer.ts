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

const NOTHING = new Uint8Array(0);
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
  /** Whether the back batch is being written (and the front waits its turn). */
  #writing = false;
  /** Who waits for the write in flight to end (`room`, `idle`): made when one waits. */
  #writeEnded: PromiseWithResolvers<void> | null = null;
  #broken = false;
  readonly #writer: ByteWriter;
  readonly #onError?: (error: unknown) => void;
  // The write loop runs on callbacks made once per writer, not as an async function:
  // at a quiet moment the server writes a batch per message or two, and an async loop
  // cost a frame and its promises for each (garbage per message, so more collections).
  /** The back batch's bytes in flight, and how many of them are written. */
  #inFlight: Uint8Array = NOTHING;
  #offset = 0;
  readonly #onWritten = (written: number): void => {
    if (written <= 0) {
      this.#onWriteFailed(new Error("Cannot write: the writer accepted no bytes"));
      return;
    }
    this.#offset += written;
    if (this.#offset < this.#inFlight.length) this.#writeInFlight();
    else this.#backWritten();
  };
  readonly #onWriteFailed = (error: unknown): void => {
    this.#broken = true;
    this.#onError?.(error);
    this.#backWritten();
  };

  /** Writes to `writer`, one write in flight at a time. */
  constructor(writer: ByteWriter, options: PipelinedWriterOptions = {}) {
    this.#writer = writer;
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
    if (this.#front.length === 0 && !this.#writing) action(!this.#broken);
    else this.#frontActions.push(action);
  }

  /** Starts writing what the front batch holds, unless a write is in flight (it will follow). */
  commit(): void {
    if (!this.#writing && (this.#front.length > 0 || this.#frontActions.length > 0)) {
      this.#writing = true;
      this.#writeFront();
    }
  }

  /** Waits while the front batch holds `maxBytes` or more and a write is in flight. */
  async room(maxBytes: number): Promise<void> {
    while (this.#front.length >= maxBytes && this.#writing) await this.#whenWriteEnds();
  }

  /**
   * Lets go of both buffers if nothing is pending or being written (for a producer
   * that has gone quiet); the next append allocates again. Returns whether it did.
   */
  release(): boolean {
    if (this.#writing || this.#front.length > 0) return false;
    this.#front.release();
    this.#back.release();
    return true;
  }

  /** Commits, and resolves once everything appended is written and every action has run. */
  async idle(): Promise<void> {
    this.commit();
    while (this.#writing) await this.#whenWriteEnds();
  }

  /** Resolves when the write in flight has ended and its actions have run. */
  #whenWriteEnds(): Promise<void> {
    this.#writeEnded ??= Promise.withResolvers<void>();
    return this.#writeEnded.promise;
  }

  /** Swaps the batches and writes the one that was in front (its actions wait for it). */
  #writeFront(): void {
    const filled = this.#front;
    this.#front = this.#back;
    this.#back = filled;
    const actions = this.#frontActions;
    this.#frontActions = this.#backActions;
    this.#backActions = actions;
    this.#inFlight = filled.view();
    this.#offset = 0;
    if (this.#broken || this.#inFlight.length === 0) {
      // Nothing to write (only actions, or the output failed): they run in order, after
      // this turn, as after a write.
      queueMicrotask(this.#backWritten);
      return;
    }
    this.#writeInFlight();
  }

  /** Writes what is left of the back batch. */
  #writeInFlight(): void {
    const rest = this.#offset === 0 ? this.#inFlight : this.#inFlight.subarray(this.#offset);
    let written: Promise<number>;
    try {
      written = this.#writer.write(rest);
    } catch (error) {
      return this.#onWriteFailed(error);
    }
    written.then(this.#onWritten, this.#onWriteFailed);
  }

  /** The back batch is written (or dropped): its actions run, and the front goes next. */
  readonly #backWritten = (): void => {
    this.#back.clear();
    this.#inFlight = NOTHING;
    const written = !this.#broken;
    const actions = this.#backActions;
    for (let i = 0; i < actions.length; i++) actions[i](written);
    actions.length = 0;
    const waiting = this.#writeEnded;
    this.#writeEnded = null;
    if (this.#front.length > 0 || this.#frontActions.length > 0) this.#writeFront();
    else this.#writing = false;
    waiting?.resolve();
  };
}
