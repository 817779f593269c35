/**
 * The history's writer: takes every message the server prints, off the hot path, and
 * hands them in batches to where they are stored (a {@linkcode HistorySink}: the
 * database thread of `history_worker_sink.ts`, or a store in tests).
 *
 * It owns the batching, the bound on memory, the pause when the database fails or
 * cannot keep up, the ids (the order), the replay of the last messages with those not
 * yet stored, and the graceful flush. {@linkcode HistoryWriter.record} only copies the
 * payload into the open batch (no allocation per message: the batches' buffers are
 * reused); a batch is handed over when it is full or `flushMs` after its first message,
 * a few ahead (`writesInFlight`), so that the database thread always has the next one
 * rather than wait for the server's thread to notice that it stored the last.
 *
 * When a write fails (a full disk, an I/O error) the batch and those queued behind it
 * that were not handed over yet are counted as skipped (those handed over are counted
 * as the sink settles them), one warning is logged, and recording pauses for `retryMs`;
 * the next batch that is stored logs how many were skipped. When the database is slower
 * than the messages, {@linkcode HistoryWriter.congested} tells the server to wait
 * ({@linkcode HistoryWriter.whenRoom}) before it takes more input: backpressure, as for
 * stdout. Only a caller that does not wait and lets more than `maxPendingBytes` pile up
 * makes it skip new messages, counted and logged in the same way, until half of it is
 * stored. Nothing else is affected: the server keeps serving.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  DEFAULT_HISTORY_FLUSH_MS,
  DEFAULT_HISTORY_MAX_PENDING_BYTES,
  DEFAULT_HISTORY_REPLAY_MAX,
  DEFAULT_HISTORY_RETRY_MS,
} from "../defaults.ts";
import {
  type HistoryBatch,
  type HistoryRecord,
  senderKey,
  splitSenderKey,
} from "./history_store.ts";

/**
 * Where the writer's batches are stored. The writer starts up to `writesInFlight`
 * writes, in order, before the first has finished.
 */
export interface HistorySink {
  /**
   * Stores `batch` (a view the writer reuses once the write settles); rejects when it
   * could not (then none of it is stored).
   */
  write(batch: HistoryBatch): Promise<void>;
  /**
   * Called once the writer has taken note of a failed write (it counts that batch and
   * those it did not hand over yet as lost). A sink that keeps writes going at once
   * fails those started before this call, behind the failed one, so that what it
   * stores stays a prefix of the batches up to the failure (`HistoryWorkerSink` does).
   */
  failureNoted?(): void;
  /** Releases the sink; no write is in flight when the writer calls it. */
  close(): Promise<void>;
}

/** What {@linkcode HistoryWriter.last} reads stored messages from (a `HistoryStore`). */
export interface HistoryReader {
  /** The last `n` stored messages with an id of at most `upToId`, oldest first. */
  last(n: number, upToId?: number): HistoryRecord[];
  /** Called by {@linkcode HistoryWriter.close} before the sink is closed, if present. */
  close?(): void;
}

/** Options of {@linkcode HistoryWriter}. */
export interface HistoryWriterOptions {
  /** Where batches go. */
  sink: HistorySink;
  /** The id of the first message recorded: the store's `lastId + 1`. Default 1. */
  firstId?: number;
  /** Stored messages, for {@linkcode HistoryWriter.last}. Default: none (only pending ones). */
  reader?: HistoryReader;
  /** Milliseconds a message may wait in the open batch. Default 50. */
  flushMs?: number;
  /**
   * Batches handed to the sink before the first of them is stored, at most: the sink
   * always has the next one, rather than wait for this thread to notice the last one
   * finished. Default 4.
   */
  writesInFlight?: number;
  /**
   * Messages per batch, at most 65535. Default 16384: fewer, larger commits (a quarter
   * less work for the database thread than 4096 at 64 bytes a message).
   */
  batchMessages?: number;
  /**
   * Payload bytes per batch (a larger message makes a batch of its own). Default 1 MiB.
   * A new batch's buffers hold `batchMessages` messages of 64 bytes, and grow if needed.
   */
  batchBytes?: number;
  /** Payload bytes waiting to be stored beyond which messages are skipped. Default 16 MiB. */
  maxPendingBytes?: number;
  /** Milliseconds recording pauses after a failed write. Default 5000. */
  retryMs?: number;
  /** Most messages {@linkcode HistoryWriter.last} returns. Default 1000. */
  replayMax?: number;
  /** The clock of `record()` without a time, and of the pause. Default `Date.now`. */
  now?: () => number;
  /** Where the pause and the resume are told. Default: the `parrot.history` logger. */
  log?: (level: "warning" | "info", message: string) => void;
}

/** The counters of a {@linkcode HistoryWriter}. */
export interface HistoryWriterStats {
  /** Messages stored. */
  stored: number;
  /** Messages not stored: the database failed or could not keep up. */
  skipped: number;
  /** Messages recorded and not yet stored (or failed). */
  pending: number;
  /** The last write error, or null when none happened. */
  lastError: string | null;
}

const logger = getLogger(["parrot", "history"]);

/** Messages per batch, by default: see {@linkcode HistoryWriterOptions.batchMessages}. */
export const DEFAULT_BATCH_MESSAGES = 16_384;
/** Payload bytes per batch, by default: see {@linkcode HistoryWriterOptions.batchBytes}. */
export const DEFAULT_BATCH_BYTES = 1024 * 1024;

/** Payload bytes copied one by one rather than through a view (as fast, no garbage). */
const SMALL_PAYLOAD = 128;

/** One batch being filled or waiting: buffers reused batch after batch. */
class BatchBuffer {
  firstId = 0;
  count = 0;
  used = 0;
  readonly times: Float64Array;
  readonly senders: Uint16Array;
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
  bytes: Uint8Array;
  readonly names: string[] = [];
  readonly nameIndex = new Map<string, number>();
  lastName = "";
  lastIndex = -1;
  /** Sealed and waiting, handed to the sink, or settled (`error` null when stored). */
  state: "waiting" | "writing" | "settled" = "waiting";
  error: string | null = null;
  /** Handed to the sink (rather than lost behind a failed write before it was). */
  handedOver = false;
  /** Handed over while the writer was failing: a retry, which ends the pause if stored. */
  retry = false;
  /** How many failures the writer had noted when it handed the batch over. */
  failuresNoted = 0;

  constructor(messages: number, bytes: number) {
    this.times = new Float64Array(messages);
    this.senders = new Uint16Array(messages);
    this.starts = new Uint32Array(messages);
    this.ends = new Uint32Array(messages);
    this.bytes = new Uint8Array(bytes);
  }

  reset(firstId: number): void {
    this.firstId = firstId;
    this.count = 0;
    this.used = 0;
    this.names.length = 0;
    this.nameIndex.clear();
    this.lastName = "";
    this.lastIndex = -1;
    this.state = "waiting";
    this.error = null;
    this.handedOver = false;
    this.retry = false;
  }

  /** The index of `from` in `names`: looked up once per run of messages from it. */
  senderIndex(from: string): number {
    let index = this.lastIndex;
    if (from !== this.lastName || index < 0) {
      index = this.nameIndex.get(from) ?? -1;
      if (index < 0) {
        index = this.names.push(from) - 1;
        this.nameIndex.set(from, index);
      }
      this.lastName = from;
      this.lastIndex = index;
    }
    return index;
  }

  /** Room for `size` more bytes. */
  reserve(size: number): void {
    const used = this.used + size;
    if (used > this.bytes.length) {
      const grown = new Uint8Array(Math.max(used, this.bytes.length * 2));
      grown.set(this.bytes.subarray(0, this.used));
      this.bytes = grown;
    }
  }

  /** Appends the message `bytes[start, end)`. */
  add(from: string, bytes: Uint8Array, start: number, end: number, time: number): void {
    const index = this.senderIndex(from);
    this.reserve(end - start);
    const at = this.used;
    if (end - start <= SMALL_PAYLOAD) {
      // Byte by byte: no view to make (and collect) for each message.
      const into = this.bytes;
      for (let from = start, to = at; from < end; from++, to++) into[to] = bytes[from];
    } else {
      this.bytes.set(bytes.subarray(start, end), at);
    }
    const i = this.count++;
    this.times[i] = time;
    this.senders[i] = index;
    this.starts[i] = at;
    this.ends[i] = this.used = at + end - start;
  }

  /**
   * Appends the messages `bytes[ranges[i], ranges[i + 1])` for `i` from `first` to
   * `last` (excluded) by twos: their span is copied whole, in one call, with the
   * framing between them, and each message is two offsets into it.
   */
  addRanges(
    from: string,
    bytes: Uint8Array,
    ranges: ArrayLike<number>,
    first: number,
    last: number,
    time: number,
  ): void {
    const index = this.senderIndex(from);
    const spanStart = ranges[first];
    const spanEnd = ranges[last - 1];
    this.reserve(spanEnd - spanStart);
    const base = this.used - spanStart;
    this.bytes.set(bytes.subarray(spanStart, spanEnd), this.used);
    const { times, senders, starts, ends } = this;
    let i = this.count;
    for (let r = first; r < last; r += 2, i++) {
      times[i] = time;
      senders[i] = index;
      starts[i] = base + ranges[r];
      ends[i] = base + ranges[r + 1];
    }
    this.count = i;
    this.used = base + spanEnd;
  }

  /** The bytes its buffers hold. */
  get capacity(): number {
    return this.bytes.length + 18 * this.times.length;
  }

  /** The batch as a sink takes it: views of the filled parts. */
  view(): HistoryBatch {
    const n = this.count;
    return {
      firstId: this.firstId,
      count: n,
      times: this.times.subarray(0, n),
      senders: this.senders.subarray(0, n),
      names: this.names,
      starts: this.starts.subarray(0, n),
      ends: this.ends.subarray(0, n),
      bytes: this.bytes.subarray(0, this.used),
    };
  }

  /** Copies of the messages with an id above `afterId` and at most `upToId`. */
  recordsAfter(afterId: number, upToId: number, out: HistoryRecord[]): void {
    const end = Math.min(this.count, upToId + 1 - this.firstId);
    for (let i = Math.max(0, afterId + 1 - this.firstId); i < end; i++) {
      out.push({
        id: this.firstId + i,
        time: this.times[i],
        ...splitSenderKey(this.names[this.senders[i]]),
        payload: this.bytes.slice(this.starts[i], this.ends[i]),
      });
    }
  }
}

/**
 * Batches messages to a {@linkcode HistorySink}; see the module documentation.
 *
 * @example Record, replay, close
 * ```ts
 * import assert from "node:assert/strict";
 * import { HistoryStore } from "./history_store.ts";
 * import { HistoryWriter } from "./history_writer.ts";
 *
 * const store = HistoryStore.open(":memory:");
 * const writer = new HistoryWriter({
 *   sink: { write: async (batch) => store.append(batch), close: async () => {} },
 *   firstId: store.lastId + 1,
 *   reader: store, // close() closes it
 * });
 * writer.record("alice", new TextEncoder().encode("hello"));
 * // Not stored yet, but replayed all the same.
 * assert.equal(writer.last(10)[0].sender, "alice");
 * await writer.close();
 * assert.equal(writer.stats.stored, 1);
 * ```
 */
export class HistoryWriter {
  readonly #sink: HistorySink;
  readonly #reader?: HistoryReader;
  readonly #flushMs: number;
  readonly #batchMessages: number;
  readonly #batchBytes: number;
  readonly #maxPendingBytes: number;
  readonly #retryMs: number;
  readonly #replayMax: number;
  readonly #writesInFlight: number;
  readonly #now: () => number;
  readonly #log: (level: "warning" | "info", message: string) => void;

  #nextId: number;
  #open: BatchBuffer;
  /** Sealed batches, oldest first: the first `#writing` of them are with the sink. */
  readonly #queue: BatchBuffer[] = [];
  readonly #spares: BatchBuffer[] = [];
  /** The bytes the spares hold. */
  #spareBytes = 0;
  #pendingBytes = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing = 0;
  /** The largest id whose batch was written or failed. */
  #doneUpTo: number;
  /** What `flush()` calls wait for: the id their last message took. */
  readonly #waiters: { upTo: number; resolve: () => void }[] = [];
  /** What `whenRoom()` calls wait for. */
  readonly #roomWaiters: (() => void)[] = [];
  #closed = false;

  #stored = 0;
  #skipped = 0;
  /** Messages skipped since the pause began: told when it ends. */
  #skippedInPause = 0;
  /** Skipping messages: told once when it starts, once when it ends. */
  #paused = false;
  /** Skipping until this time: a write failed. */
  #pausedUntil = 0;
  /** Failed writes taken note of (`HistorySink.failureNoted`). */
  #failuresNoted = 0;
  /** From a failed write to the next one that succeeds. */
  #failing = false;
  /** From more than `maxPendingBytes` waiting to less than half of it. */
  #overloaded = false;
  #lastError: string | null = null;

  /** A writer to `options.sink`. */
  constructor(options: HistoryWriterOptions) {
    this.#sink = options.sink;
    this.#reader = options.reader;
    this.#flushMs = options.flushMs ?? DEFAULT_HISTORY_FLUSH_MS;
    this.#batchMessages = Math.min(options.batchMessages ?? DEFAULT_BATCH_MESSAGES, 65_535);
    this.#batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
    this.#maxPendingBytes = options.maxPendingBytes ?? DEFAULT_HISTORY_MAX_PENDING_BYTES;
    this.#retryMs = options.retryMs ?? DEFAULT_HISTORY_RETRY_MS;
    this.#replayMax = options.replayMax ?? DEFAULT_HISTORY_REPLAY_MAX;
    this.#writesInFlight = Math.max(1, options.writesInFlight ?? 4);
    this.#now = options.now ?? Date.now;
    this.#log = options.log ?? ((level, message) => logger[level](message));
    this.#nextId = options.firstId ?? 1;
    this.#doneUpTo = this.#nextId - 1;
    // The buffers a steady flow cycles through, made (and their memory touched) now
    // rather than while the first messages arrive.
    for (let i = 0; i < this.#writesInFlight + 1; i++) {
      const spare = this.#newBuffer();
      for (const array of [spare.bytes, spare.times, spare.senders, spare.starts, spare.ends]) {
        array.fill(0);
      }
      this.#release(spare);
    }
    this.#open = this.#newBuffer();
  }

  /**
   * Records one message: copies `payload` into the open batch. Cheap, never throws,
   * never waits. Skipped (and counted) while the history is paused or full.
   */
  record(from: string, payload: Uint8Array, time: number = this.#now()): void {
    this.recordRange(from, payload, 0, payload.length, time);
  }

  /**
   * Records the message `bytes[start, end)`, as {@linkcode HistoryWriter.record} does:
   * for the server's drain, which has the payload as a range of a read buffer and need
   * not make a view of it. `origin`: the server a cluster message came from.
   */
  recordRange(
    from: string,
    bytes: Uint8Array,
    start: number,
    end: number,
    time: number = this.#now(),
    origin?: string,
  ): void {
    const size = end - start;
    if (!this.#admits(size, 1)) return;
    let open = this.#open;
    if (
      open.count === this.#batchMessages ||
      (open.count > 0 && open.used + size > this.#batchBytes)
    ) {
      open = this.#sealed();
    }
    if (open.count === 0) this.#begin(open);
    open.add(origin === undefined ? from : this.#remoteKey(from, origin), bytes, start, end, time);
    this.#nextId++;
    this.#pendingBytes += size;
  }

  /**
   * Records the messages `bytes[ranges[i], ranges[i + 1])` of `from`, for `i` from
   * `first` to `last` (excluded) by twos, as {@linkcode HistoryWriter.recordRange} would
   * one by one: for the server's drain, which has a read's messages as ranges of its
   * buffer. The span they lie in is copied whole (with the framing between them), so a
   * message costs two offsets rather than a copy of its bytes.
   */
  recordRanges(
    from: string,
    bytes: Uint8Array,
    ranges: ArrayLike<number>,
    first: number,
    last: number,
    time: number = this.#now(),
  ): void {
    let i = first;
    while (i < last) {
      let open = this.#open;
      if (open.count === this.#batchMessages) open = this.#sealed();
      // The messages that fit in the open batch: at least one in an empty batch.
      const spanStart = ranges[i];
      const room = this.#batchBytes - open.used;
      const most = Math.min(last, i + 2 * (this.#batchMessages - open.count));
      if (open.count > 0 && ranges[i + 1] - spanStart > room) {
        this.#sealed();
        continue;
      }
      let to = i + 2;
      while (to < most && ranges[to + 1] - spanStart <= room) to += 2;
      const size = ranges[to - 1] - spanStart;
      if (this.#admits(size, (to - i) / 2)) {
        if (open.count === 0) this.#begin(open);
        open.addRanges(from, bytes, ranges, i, to, time);
        this.#nextId += (to - i) / 2;
        this.#pendingBytes += size;
      }
      i = to;
    }
  }

  /**
   * Whether `count` messages of `size` bytes in all are taken; counts them as skipped
   * when not (closed, paused, or more than `maxPendingBytes` waiting).
   */
  #admits(size: number, count: number): boolean {
    if (this.#closed) {
      this.#skipped += count;
      return false;
    }
    if (this.#paused && !this.#takesAgain(size)) {
      this.#lost(count);
      return false;
    }
    // An empty writer takes one message however large, as an empty outbound queue does.
    if (this.#pendingBytes > 0 && this.#pendingBytes + size > this.#maxPendingBytes) {
      this.#overloaded = true;
      this.#pause(`the database cannot keep up (${this.#pendingBytes} bytes wait to be stored)`);
      this.#lost(count);
      return false;
    }
    return true;
  }

  /** Seals the open batch; the new open one. */
  #sealed(): BatchBuffer {
    this.#seal();
    return this.#open;
  }

  /** Makes `open`, empty, the batch of the next message, stored within `flushMs`. */
  #begin(open: BatchBuffer): void {
    open.reset(this.#nextId);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#seal();
    }, this.#flushMs);
  }

  /**
   * The batch name of a message of `from` on server `origin`: made once per run of
   * messages from the same remote sender, not once per message.
   */
  #remoteKey(from: string, origin: string): string {
    if (from !== this.#lastRemoteFrom || origin !== this.#lastRemoteOrigin) {
      this.#lastRemoteFrom = from;
      this.#lastRemoteOrigin = origin;
      this.#lastRemoteKey = senderKey(from, origin);
    }
    return this.#lastRemoteKey;
  }
  #lastRemoteFrom = "";
  #lastRemoteOrigin = "";
  #lastRemoteKey = "";

  /**
   * The last `n` messages (at most `replayMax`), oldest first: those stored, then those
   * still waiting, with no gap and no duplicate between them. Every message recorded
   * before the call is among the candidates, so a replay built from it followed by the
   * messages recorded after it misses none and repeats none. With `upToId`, only the
   * messages up to that id (see {@linkcode HistoryWriter.lastId}).
   */
  last(n: number, upToId: number = Infinity): HistoryRecord[] {
    n = Math.max(0, Math.min(Math.trunc(n), this.#replayMax));
    if (n === 0) return [];
    const records = this.#reader?.last(n, upToId) ?? [];
    const afterId = records.length > 0 ? records[records.length - 1].id : 0;
    for (const batch of this.#queue) batch.recordsAfter(afterId, upToId, records);
    if (this.#open.count > 0) this.#open.recordsAfter(afterId, upToId, records);
    return records.length > n ? records.slice(records.length - n) : records;
  }

  /**
   * The id of the last message recorded (0 when none yet): the mark the server takes
   * at the start of a drain batch, to replay up to it with `last(n, mark)` while the
   * batch's messages go to the live relay.
   */
  get lastId(): number {
    return this.#nextId - 1;
  }

  /**
   * Whether more than half of `maxPendingBytes` waits to be stored: the database is
   * slower than the messages. The server then waits for {@linkcode HistoryWriter.whenRoom}
   * before it takes more input, which slows the senders (their TCP windows fill) rather
   * than skipping messages.
   */
  get congested(): boolean {
    return this.#pendingBytes > this.#maxPendingBytes / 2 && !this.#closed;
  }

  /**
   * Resolves once no more than half of `maxPendingBytes` waits to be stored (at once
   * when that is so already). A failed write releases what waited (counted as skipped),
   * so it never waits for a broken database.
   *
   * @throws The signal's reason, when `signal` aborts first.
   */
  whenRoom(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (!this.congested) return Promise.resolve();
    this.#seal();
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#roomWaiters.push(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }

  /**
   * Resolves once every message recorded before the call is stored (or counted as
   * skipped, when the database failed).
   *
   * @throws The signal's reason, when `signal` aborts first.
   */
  flush(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.#seal();
    const upTo = this.#nextId - 1;
    if (this.#doneUpTo >= upTo) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push({
        upTo,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      });
    });
  }

  /**
   * Flushes, then closes the sink; later messages are skipped. When `signal` aborts
   * first, the sink is closed at once (what was not stored yet is lost) and it throws.
   */
  async close(signal?: AbortSignal): Promise<void> {
    if (this.#closed) return;
    try {
      await this.flush(signal);
    } finally {
      this.#closed = true;
      for (const resolve of this.#roomWaiters.splice(0)) resolve();
      clearTimeout(this.#timer);
      this.#timer = undefined;
      // The reader first: the sink's connection, closed last, moves the log into the
      // file on its own thread (the last connection to a file does that).
      try {
        this.#reader?.close?.();
      } finally {
        await this.#sink.close();
      }
    }
  }

  /** The counters. */
  get stats(): HistoryWriterStats {
    let pending = this.#open.count;
    for (const batch of this.#queue) pending += batch.count;
    return { stored: this.#stored, skipped: this.#skipped, pending, lastError: this.#lastError };
  }

  #newBuffer(): BatchBuffer {
    const spare = this.#spares.pop();
    if (spare !== undefined) {
      this.#spareBytes -= spare.capacity;
      return spare;
    }
    return new BatchBuffer(
      this.#batchMessages,
      Math.min(this.#batchBytes, 64 * this.#batchMessages),
    );
  }

  /** Queues the open batch, if it has messages, and starts writing. */
  #seal(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#open.count > 0) {
      this.#queue.push(this.#open);
      this.#open = this.#newBuffer();
      this.#open.reset(this.#nextId);
    }
    this.#startWrites();
  }

  /** Hands the sink the batches that wait, up to `writesInFlight` at a time. */
  #startWrites(): void {
    while (this.#writing < this.#writesInFlight && this.#writing < this.#queue.length) {
      // Settled already: lost behind a failed write, and taken off when those before it are.
      if (this.#queue[this.#writing].state !== "waiting") break;
      const batch = this.#queue[this.#writing++];
      batch.state = "writing";
      batch.handedOver = true;
      batch.retry = this.#failing;
      batch.failuresNoted = this.#failuresNoted;
      let write: Promise<void>;
      try {
        write = this.#sink.write(batch.view());
      } catch (error) {
        write = Promise.reject(error); // Settled as a failed write, never thrown at record().
      }
      write.then(
        () => this.#settled(batch, null),
        (error) => this.#settled(batch, error instanceof Error ? error.message : String(error)),
      );
    }
  }

  /**
   * A write finished: takes the settled batches off the head of the queue, in order
   * (counted stored or lost), releases what waited for them, and starts the next.
   */
  #settled(batch: BatchBuffer, error: string | null): void {
    batch.state = "settled";
    batch.error = error;
    if (error !== null) {
      // The batches not handed over yet are lost with it (those with the sink already
      // are counted as they settle: see HistorySink.failureNoted).
      for (let i = this.#writing; i < this.#queue.length; i++) {
        this.#queue[i].state = "settled";
        this.#queue[i].error = error;
      }
    }
    let upTo = this.#doneUpTo;
    while (this.#queue.length > 0 && this.#queue[0].state === "settled") {
      const head = this.#queue.shift()!;
      if (head.handedOver) this.#writing--;
      upTo = head.firstId + head.count - 1;
      if (head.error === null) {
        this.#stored += head.count;
        // Stored after a failure: the pause ends (not for a write begun before it).
        if (this.#failing && head.retry) {
          this.#failing = false;
          this.#maybeResumed();
        }
      } else {
        this.#lost(head.count);
        // A failure of its own (not one behind a failure noted since it was handed over):
        // recording pauses for a while.
        if (head.handedOver && head.failuresNoted === this.#failuresNoted) {
          this.#failuresNoted++;
          this.#sink.failureNoted?.();
          this.#lastError = head.error;
          this.#failing = true;
          this.#pausedUntil = this.#now() + this.#retryMs;
          this.#pause(`${this.#lastError}; retrying every ${this.#retryMs}ms`);
        }
      }
      this.#release(head);
    }
    this.#doneUpTo = upTo;
    for (let i = 0; i < this.#waiters.length; i++) {
      if (this.#waiters[i].upTo <= upTo) this.#waiters.splice(i--, 1)[0].resolve();
    }
    if (!this.congested) { for (const resolve of this.#roomWaiters.splice(0)) resolve(); }
    this.#startWrites();
  }

  #lost(count: number): void {
    this.#skipped += count;
    this.#skippedInPause += count;
  }

  #release(batch: BatchBuffer): void {
    this.#pendingBytes -= batch.used;
    batch.reset(0);
    // Kept for the next batches, as many as fill half of maxPendingBytes: the queue grows
    // that long whenever the database is behind, and new buffers (zeroed, mapped, grown)
    // cost the server's thread more than the messages they hold.
    const size = batch.capacity;
    if (this.#spareBytes + size <= this.#maxPendingBytes / 2 || this.#spares.length < 2) {
      this.#spares.push(batch);
      this.#spareBytes += size;
    }
  }

  /** Starts skipping, with one warning. */
  #pause(reason: string): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#log("warning", `History paused: ${reason}`);
  }

  /** Whether a paused history takes a message of `size` bytes again. */
  #takesAgain(size: number): boolean {
    if (this.#pausedUntil > 0) {
      if (this.#now() < this.#pausedUntil) return false;
      this.#pausedUntil = 0; // Try again; the next write tells whether it works.
    }
    if (this.#overloaded) {
      if (this.#pendingBytes + size > this.#maxPendingBytes / 2) return false;
      this.#overloaded = false;
      this.#maybeResumed();
    }
    return true;
  }

  /** Ends the pause, with one line, once neither a failure nor an overload holds it. */
  #maybeResumed(): void {
    if (!this.#paused || this.#failing || this.#overloaded) return;
    this.#paused = false;
    this.#log("info", `History resumed: ${this.#skippedInPause} messages skipped`);
    this.#skippedInPause = 0;
  }
}
