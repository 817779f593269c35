/**
 * Write coalescing: many small writes to one destination become one write per batch.
 *
 * A server that relays messages produces bursts of small buffers for each connection
 * (and for stdout). Writing them one by one costs a syscall and a promise each; this
 * module queues them and keeps exactly one write in flight, concatenating whatever
 * queued up meanwhile into the next write (the nats.js approach). Queueing never
 * blocks: the owner reads {@linkcode WriteCoalescer.buffered} to apply its own limit
 * (parrot's slow-consumer rule), and awaits {@linkcode WriteCoalescer.flush} when it
 * needs to know the bytes are out (parrot's PING barrier).
 *
 * @module
 */

/** Anything with a Deno-style `write`, such as a `Deno.Conn` or `Deno.stdout`. */
export interface ByteWriter {
  /** Writes some of `p` and resolves with how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
}

/** Options of {@linkcode WriteCoalescer}. */
export interface WriteCoalescerOptions {
  /** Most bytes concatenated into one write; a single larger chunk is written on its own. Default 256 KiB. */
  maxBatchBytes?: number;
}

const DEFAULT_MAX_BATCH_BYTES = 256 * 1024;

/** Told once that the coalescer no longer needs a chunk (written, copied or dropped). */
export type ChunkDone = () => void;
/** Shared by every coalescer until it needs a scratch buffer of its own. */
const NO_BYTES = new Uint8Array(0);
const NO_CHUNKS: Uint8Array[] = Object.freeze([]) as unknown as Uint8Array[];
const NO_DONES: (ChunkDone | undefined)[] = Object.freeze([]) as unknown as ChunkDone[];
const NO_WAITERS: FlushWaiter[] = Object.freeze([]) as unknown as FlushWaiter[];
/**
 * Queue arrays that an emptied coalescer gave back, for the next one that queues: a
 * coalescer holds arrays only while it has chunks queued (idle connections hold none),
 * and the busy ones take turns with the same few arrays rather than make new ones.
 */
const SPARE_QUEUES: Uint8Array[][] = [];
const SPARE_DONES: (ChunkDone | undefined)[][] = [];
const MAX_SPARE_QUEUES = 64;

/** The callbacks of a coalescer's write loop, made when it starts. */
interface PumpCallbacks {
  onWritten: (written: number) => void;
  onWriteFailed: (error: unknown) => void;
}

interface FlushWaiter {
  target: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Queues byte chunks for one writer and writes them in batches, one write in flight.
 *
 * Chunks are referenced, not copied, until they are batched: a chunk may be shared
 * by many coalescers (one relayed message for every subscriber) but must not be
 * modified after it was queued.
 *
 * @example Coalesce three writes into one
 * ```ts
 * import assert from "node:assert/strict";
 * import { WriteCoalescer } from "./write_coalescer.ts";
 *
 * const writes: string[] = [];
 * const sink = {
 *   write(p: Uint8Array): Promise<number> {
 *     writes.push(new TextDecoder().decode(p));
 *     return Promise.resolve(p.length);
 *   },
 * };
 * const out = new WriteCoalescer(sink);
 * const encoder = new TextEncoder();
 * out.write(encoder.encode("a"));
 * out.write(encoder.encode("b"));
 * out.write(encoder.encode("c"));
 * await out.flush();
 * assert.deepEqual(writes, ["abc"]);
 * ```
 */
export class WriteCoalescer {
  #writer: ByteWriter;
  #maxBatchBytes: number;
  // The three arrays below are shared, frozen empty ones while empty (most connections
  // are idle most of the time), and made afresh when something is queued.
  #queue: Uint8Array[] = NO_CHUNKS;
  /** The `done` callback of each queued chunk, at the same index. */
  #dones: (ChunkDone | undefined)[] = NO_DONES;
  /** The `done` callback of the chunk being written as it is, if any. */
  #inFlightDone: ChunkDone | undefined = undefined;
  #queueHead = 0;
  #queuedBytes = 0;
  #inFlightBytes = 0;
  #writing = false;
  #writeStartedAt = 0;
  #error: unknown = undefined;
  #failed = false;
  #enqueuedTotal = 0;
  #writtenTotal = 0;
  #flushWaiters: FlushWaiter[] = NO_WAITERS;
  /** Where a batch of several chunks is joined; allocated at the first such batch. */
  #scratch: Uint8Array = NO_BYTES;

  /** Creates a coalescer that writes to `writer`. */
  constructor(writer: ByteWriter, options: WriteCoalescerOptions = {}) {
    this.#writer = writer;
    this.#maxBatchBytes = options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
  }

  /** Bytes queued or being written and not yet confirmed by the writer. */
  get buffered(): number {
    return this.#queuedBytes + this.#inFlightBytes;
  }

  /**
   * When the write call now in flight started (milliseconds since the epoch), or 0 when
   * none is. A peer that stops reading leaves a write in flight: compare this with a
   * write deadline to find it.
   */
  get writeStartedAt(): number {
    return this.#writeStartedAt;
  }

  /** Whether a write has failed; later writes are then dropped. */
  get failed(): boolean {
    return this.#failed;
  }

  /**
   * Whether it has nothing to do: nothing queued or being written, nobody waiting for a
   * flush, no failure. An idle coalescer can be dropped and a new one made when there
   * is something to write again (its owner then holds nothing while the peer is quiet).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { WriteCoalescer } from "./write_coalescer.ts";
   *
   * const out = new WriteCoalescer({ write: (p) => Promise.resolve(p.length) });
   * out.write(new TextEncoder().encode("hi"));
   * assert.equal(out.idle, false);
   * await out.flush();
   * assert.equal(out.idle, true);
   * ```
   */
  get idle(): boolean {
    return !this.#writing && !this.#failed && this.#queueHead >= this.#queue.length &&
      this.#flushWaiters.length === 0;
  }

  /**
   * Queues `bytes` and returns at once; the write starts on the next microtask so that
   * writes made in the same turn share one batch. Dropped after a write error.
   * `done`, if given, is called exactly once when the coalescer no longer needs
   * `bytes`: written, copied into a joined batch, or dropped. Its owner may reuse the
   * memory from then on.
   */
  write(bytes: Uint8Array, done?: ChunkDone): void {
    if (this.#failed || bytes.length === 0) {
      done?.();
      return;
    }
    if (this.#queue === NO_CHUNKS) {
      this.#queue = SPARE_QUEUES.pop() ?? [];
      this.#dones = SPARE_DONES.pop() ?? [];
    }
    this.#queue.push(bytes);
    this.#dones.push(done);
    this.#queuedBytes += bytes.length;
    this.#enqueuedTotal += bytes.length;
    if (!this.#writing) {
      this.#writing = true;
      queueMicrotask(() => this.#startPump());
    }
  }

  /**
   * Drops the chunks not yet handed to the writer, keeping the write in flight. Returns
   * how many chunks were dropped. Used to put an error line in front of a backlog that
   * will never drain.
   */
  discardQueued(): number {
    const dropped = this.#queue.length - this.#queueHead;
    this.#enqueuedTotal -= this.#queuedBytes;
    this.#releaseQueued();
    this.#emptyQueue();
    for (const waiter of this.#flushWaiters) {
      waiter.target = Math.min(waiter.target, this.#enqueuedTotal);
    }
    this.#settleWaiters();
    return dropped;
  }

  /** Resolves when everything queued so far has been written; rejects with the write error. */
  flush(): Promise<void> {
    if (this.#failed) return Promise.reject(this.#error);
    const target = this.#enqueuedTotal;
    if (this.#writtenTotal >= target) return Promise.resolve();
    if (this.#flushWaiters === NO_WAITERS) this.#flushWaiters = [];
    return new Promise((resolve, reject) => this.#flushWaiters.push({ target, resolve, reject }));
  }

  // The write loop runs on two callbacks made when it starts and dropped when it stops
  // (an idle connection holds none), not as an async function: a relay at a quiet moment
  // is one chunk, one write, and an async loop cost a frame and its promises for each
  // (garbage per message, so more collections).

  /** The loop's callbacks while it runs. */
  #pump: PumpCallbacks | undefined = undefined;

  /** Starts the loop (on the microtask queued by `write`). */
  #startPump(): void {
    this.#pump = {
      onWritten: (written) => this.#onWritten(written),
      onWriteFailed: (error) => this.#onWriteFailed(error),
    };
    this.#writeNextBatch();
  }

  /** A write of the batch in flight returned `written` bytes. */
  #onWritten(written: number): void {
    if (written <= 0) {
      this.#onWriteFailed(new Error("Cannot write: the writer accepted no bytes"));
      return;
    }
    this.#offset += written;
    this.#inFlightBytes = this.#batch.length - this.#offset;
    if (this.#offset < this.#batch.length) {
      this.#writeInFlight();
      return;
    }
    this.#inFlightBytes = 0;
    this.#writtenTotal += this.#batch.length;
    this.#batch = NO_BYTES;
    this.#releaseInFlight();
    this.#settleWaiters();
    this.#writeNextBatch();
  }

  #onWriteFailed(error: unknown): void {
    this.#batch = NO_BYTES;
    this.#fail(error);
    this.#stopPump();
  }

  /** The batch being written, and how much of it is written. */
  #batch: Uint8Array = NO_BYTES;
  #offset = 0;

  /** Takes the next batch and writes it, or ends the loop when nothing is queued. */
  #writeNextBatch(): void {
    if (this.#failed || this.#queueHead >= this.#queue.length) return this.#stopPump();
    this.#batch = this.#takeBatch();
    this.#offset = 0;
    this.#inFlightBytes = this.#batch.length;
    this.#writeInFlight();
  }

  /** Writes what is left of the batch in flight. */
  #writeInFlight(): void {
    this.#writeStartedAt = Date.now();
    const rest = this.#offset === 0 ? this.#batch : this.#batch.subarray(this.#offset);
    let written: Promise<number>;
    try {
      written = this.#writer.write(rest);
    } catch (error) {
      return this.#onWriteFailed(error);
    }
    written.then(this.#pump!.onWritten, this.#pump!.onWriteFailed);
  }

  #stopPump(): void {
    this.#pump = undefined;
    this.#writing = false;
    this.#writeStartedAt = 0;
    this.#inFlightBytes = 0;
  }

  #takeBatch(): Uint8Array {
    const first = this.#queue[this.#queueHead];
    let end = this.#queueHead + 1;
    let size = first.length;
    while (end < this.#queue.length && size + this.#queue[end].length <= this.#maxBatchBytes) {
      size += this.#queue[end].length;
      end++;
    }
    let batch: Uint8Array;
    if (end === this.#queueHead + 1) {
      batch = first;
      this.#inFlightDone = this.#dones[this.#queueHead];
    } else {
      if (this.#scratch.length < size) this.#scratch = new Uint8Array(Math.max(size, 4096));
      batch = this.#scratch.subarray(0, size);
      let offset = 0;
      for (let i = this.#queueHead; i < end; i++) {
        batch.set(this.#queue[i], offset);
        offset += this.#queue[i].length;
      }
      // Copied: the chunks themselves are no longer needed.
      for (let i = this.#queueHead; i < end; i++) this.#dones[i]?.();
    }
    this.#queuedBytes -= size;
    if (end === this.#queue.length) this.#emptyQueue();
    else this.#queueHead = end;
    return batch;
  }

  #settleWaiters(): void {
    if (this.#flushWaiters.length === 0) return;
    // Targets never exceed what is enqueued (discardQueued lowers them with it).
    const waiting = this.#flushWaiters;
    const still = waiting.filter((waiter) => this.#writtenTotal < waiter.target);
    this.#flushWaiters = still.length > 0 ? still : NO_WAITERS;
    for (const waiter of waiting) {
      if (this.#writtenTotal >= waiter.target) waiter.resolve();
    }
  }

  /** Forgets every queued chunk, back to the shared empty arrays. */
  #emptyQueue(): void {
    if (this.#queue !== NO_CHUNKS && SPARE_QUEUES.length < MAX_SPARE_QUEUES) {
      this.#queue.length = 0;
      this.#dones.length = 0;
      SPARE_QUEUES.push(this.#queue);
      SPARE_DONES.push(this.#dones);
    }
    this.#queue = NO_CHUNKS;
    this.#dones = NO_DONES;
    this.#queueHead = 0;
    this.#queuedBytes = 0;
  }

  /** Calls the `done` of every chunk still queued (they will never be written). */
  #releaseQueued(): void {
    for (let i = this.#queueHead; i < this.#dones.length; i++) this.#dones[i]?.();
  }

  /** Calls the `done` of the chunk that was being written as it is, once. */
  #releaseInFlight(): void {
    const done = this.#inFlightDone;
    this.#inFlightDone = undefined;
    done?.();
  }

  #fail(error: unknown): void {
    this.#failed = true;
    this.#error = error;
    this.#releaseInFlight();
    this.#releaseQueued();
    this.#emptyQueue();
    const waiting = this.#flushWaiters;
    this.#flushWaiters = NO_WAITERS;
    for (const waiter of waiting) waiter.reject(error);
  }
}
