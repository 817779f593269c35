/**
 * A {@linkcode HistorySink} that stores batches in a Worker (`history_worker.ts`): the
 * server's thread only copies each batch once and posts it; SQLite's inserts, commits
 * and retention run on that thread, the checkpoints on a second one.
 *
 * The copy goes into buffers that travel to the thread and back (moved both ways, a few
 * in all): a new buffer of a few hundred kilobytes for every batch would cost far more
 * than the copy, as glibc maps and unmaps each (the server task's `GLIBC_TUNABLES`).
 *
 * Why Workers: `DatabaseSync` is synchronous, and a batch of 16384 messages of 64 bytes
 * takes a few milliseconds to insert and commit here (a checkpoint about 20 ms, a slow
 * disk far longer); on the server's thread that would stall every client for as long.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { batchBuffers, type HistoryBatch, HistoryOpenError } from "./history_store.ts";
import type { HistoryWorkerReply, HistoryWorkerRequest } from "./history_worker.ts";
import { DEFAULT_BATCH_BYTES, DEFAULT_BATCH_MESSAGES, type HistorySink } from "./history_writer.ts";

const WORKER_URL = new URL("./history_worker.ts", import.meta.url);
const logger = getLogger(["parrot", "history"]);
/** Sets of buffers kept for the next batches (the writer has up to 4 in flight). */
const SPARE_BUFFERS = 5;

/** Options of {@linkcode HistoryWorkerSink.open}. */
export interface HistoryWorkerSinkOptions {
  /** Most messages kept. Default: no limit. */
  maxMessages?: number;
  /** Oldest message kept, in milliseconds. Default: no limit. */
  maxAgeMs?: number;
}

/**
 * The history file's writing thread.
 *
 * @example Open, write a batch, close
 * ```ts
 * import assert from "node:assert/strict";
 * import { HistoryWorkerSink } from "./history_worker_sink.ts";
 *
 * const sink = await HistoryWorkerSink.open(":memory:"); // or a file's path
 * const batch = {
 *   firstId: sink.lastId + 1,
 *   count: 1,
 *   times: Float64Array.of(Date.now()),
 *   senders: Uint16Array.of(0),
 *   names: ["alice"],
 *   ends: Uint32Array.of(2),
 *   bytes: new TextEncoder().encode("hi"),
 * };
 * await sink.write(batch);
 * // The same ids again: the thread's insert fails, and the write rejects.
 * await assert.rejects(sink.write(batch), /UNIQUE constraint failed/);
 * await sink.close();
 * ```
 */
export class HistoryWorkerSink implements HistorySink {
  readonly #writer: HistoryThread;
  /** The thread that runs the checkpoints (none for `:memory:`). */
  readonly #checkpointer: HistoryThread | undefined;
  #lastWarning: string | undefined;
  #lastId = 0;
  #closed = false;
  /** Failures the writer took note of: the thread fails writes of an earlier epoch. */
  #epoch = 0;
  /** Buffers back from the thread, to fill again. */
  readonly #spares: HistoryBatch[] = [];

  private constructor(writer: HistoryThread, checkpointer: HistoryThread | undefined) {
    this.#writer = writer;
    this.#checkpointer = checkpointer;
  }

  /**
   * Starts the threads and opens `path` there (the caller has usually opened it once
   * already, for the clear error at start and for reading).
   *
   * @throws {HistoryOpenError} When a thread cannot open the file.
   */
  static async open(
    path: string,
    options: HistoryWorkerSinkOptions = {},
  ): Promise<HistoryWorkerSink> {
    const fail = (reply: HistoryWorkerReply & { ok: false }) => {
      // The thread's HistoryStore.open() error is already the one line to show.
      const prefix = `Cannot open history file ${JSON.stringify(path)}: `;
      return new HistoryOpenError(
        reply.message.startsWith(prefix) ? reply.message : prefix + reply.message,
      );
    };
    const writer = new HistoryThread("parrot history");
    let checkpointer: HistoryThread | undefined;
    let ports: MessageChannel | undefined;
    if (path !== ":memory:") {
      checkpointer = new HistoryThread("parrot history checkpoints");
      ports = new MessageChannel();
      const reply = await checkpointer.request({ type: "checkpoints", path, port: ports.port2 }, [
        ports.port2,
      ]);
      if (!reply.ok) {
        checkpointer.terminate();
        writer.terminate();
        throw fail(reply);
      }
    }
    const checkpoints = ports?.port1;
    const reply = await writer.request(
      { type: "open", path, ...options, checkpoints },
      checkpoints ? [checkpoints] : [],
    );
    if (!reply.ok) {
      checkpointer?.terminate();
      writer.terminate();
      throw fail(reply);
    }
    const sink = new HistoryWorkerSink(writer, checkpointer);
    sink.#lastId = reply.lastId ?? 0;
    // The copies a steady flow cycles through, made (and their memory touched) now rather
    // than while the first messages arrive.
    for (let i = 0; i < SPARE_BUFFERS; i++) {
      sink.#spares.push(newCopy(DEFAULT_BATCH_MESSAGES, DEFAULT_BATCH_BYTES, true));
    }
    sink.#warn(reply);
    return sink;
  }

  /** The largest id the file held when it was opened. */
  get lastId(): number {
    return this.#lastId;
  }

  /** Posts a copy of `batch` to the thread; resolves once it is committed. */
  async write(batch: HistoryBatch): Promise<void> {
    const { count } = batch;
    const size = count > 0 ? batch.ends[count - 1] : 0;
    let copy = this.#spares.pop();
    if (copy === undefined || copy.times.length < count || copy.bytes.length < size) {
      copy = newCopy(
        Math.max(count, copy?.times.length ?? 0),
        Math.max(size, copy?.bytes.length ?? 0),
        false,
      );
    }
    copy.firstId = batch.firstId;
    copy.count = count;
    copy.names = batch.names.slice();
    copy.times.set(batch.times.subarray(0, count));
    copy.senders.set(batch.senders.subarray(0, count));
    copy.ends.set(batch.ends.subarray(0, count));
    copy.bytes.set(batch.bytes.subarray(0, size));
    if (batch.starts) {
      copy.starts!.set(batch.starts.subarray(0, count));
    } else {
      for (let i = 0; i < count; i++) copy.starts![i] = i === 0 ? 0 : batch.ends[i - 1];
    }
    // Moved over (the thread hands them back with its answer).
    const reply = await this.#writer.request(
      { type: "write", batch: copy, epoch: this.#epoch },
      batchBuffers(copy),
    );
    if (reply.batch !== undefined && this.#spares.length < SPARE_BUFFERS) {
      this.#spares.push(reply.batch);
    }
    if (!reply.ok) throw new Error(reply.message);
    this.#warn(reply);
  }

  /** The writer took note of a failed write: the writes posted from now on are stored. */
  failureNoted(): void {
    this.#epoch++;
  }

  /** Closes the file (its log is checkpointed) and ends the threads. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      // The writer's connection closes last: it moves what the log holds into the file.
      if (this.#checkpointer) await this.#checkpointer.close();
    } finally {
      await this.#writer.close();
    }
  }

  /** A retention pass or a checkpoint that failed is told once per distinct error. */
  #warn(reply: HistoryWorkerReply): void {
    if (!reply.ok || reply.warning === undefined) return;
    if (reply.warning === this.#lastWarning) return;
    this.#lastWarning = reply.warning;
    logger.warning(`History ${reply.warning}`);
  }
}

/** Buffers for a batch of `messages` and `bytes`, their pages touched if `touch`. */
function newCopy(messages: number, bytes: number, touch: boolean): HistoryBatch {
  const copy = {
    firstId: 0,
    count: 0,
    times: new Float64Array(messages),
    senders: new Uint16Array(messages),
    names: [],
    starts: new Uint32Array(messages),
    ends: new Uint32Array(messages),
    bytes: new Uint8Array(bytes),
  };
  if (touch) {
    for (const array of [copy.times, copy.senders, copy.starts, copy.ends, copy.bytes]) {
      array.fill(0);
    }
  }
  return copy;
}

/** One Worker running `history_worker.ts`, and its answers, in order. */
class HistoryThread {
  readonly #worker: Worker;
  readonly #replies: { resolve: (reply: HistoryWorkerReply) => void }[] = [];
  #failure: string | undefined;

  constructor(name: string) {
    this.#worker = new Worker(WORKER_URL, { type: "module", name });
    this.#worker.onmessage = (event: MessageEvent<HistoryWorkerReply>) => {
      this.#replies.shift()?.resolve(event.data);
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      const message = String(event.message).replace(/^Uncaught (\(in promise\) )?(\w+: )?/, "");
      this.#fail(
        `the history thread failed: ${message.charAt(0).toLowerCase()}${message.slice(1)}`,
      );
    };
  }

  /** Posts `request`; resolves with its answer (a failed one once the thread failed). */
  request(
    request: HistoryWorkerRequest,
    transfer: Transferable[] = [],
  ): Promise<HistoryWorkerReply> {
    if (this.#failure !== undefined) {
      return Promise.resolve({ ok: false, message: this.#failure });
    }
    return new Promise((resolve) => {
      this.#replies.push({ resolve });
      this.#worker.postMessage(request, transfer);
    });
  }

  /** Closes the thread's connection, and ends the thread. */
  async close(): Promise<void> {
    try {
      if (this.#failure === undefined) await this.request({ type: "close" });
    } finally {
      this.terminate();
    }
  }

  /** Ends the thread at once: what it was asked and has not answered fails. */
  terminate(): void {
    this.#worker.terminate();
    this.#fail("the history is closed");
  }

  #fail(message: string): void {
    this.#failure ??= message;
    for (const reply of this.#replies.splice(0)) reply.resolve({ ok: false, message });
  }
}
