/**
 * A {@linkcode HistorySink} that stores batches in a Worker (`history_worker.ts`): the
 * server's thread only copies each batch once and posts it; SQLite's inserts, commits,
 * checkpoints and retention run on the other thread.
 *
 * Why a Worker: `DatabaseSync` is synchronous, and a batch of 4096 messages of 64 bytes
 * takes about 5 ms to insert and commit here (a checkpoint or a slow disk far longer);
 * on the server's thread that would stall every client for as long.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type HistoryBatch, HistoryOpenError } from "./history_store.ts";
import type { HistoryWorkerReply, HistoryWorkerRequest } from "./history_worker.ts";
import type { HistorySink } from "./history_writer.ts";

const WORKER_URL = new URL("./history_worker.ts", import.meta.url);
const logger = getLogger(["parrot", "history"]);

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
  readonly #worker: Worker;
  readonly #replies: { resolve: (reply: HistoryWorkerReply) => void }[] = [];
  #failure: string | undefined;
  #lastPruneError: string | undefined;
  #lastId = 0;
  #closed = false;

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.onmessage = (event: MessageEvent<HistoryWorkerReply>) => {
      this.#replies.shift()?.resolve(event.data);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      const message = String(event.message).replace(/^Uncaught (\(in promise\) )?(\w+: )?/, "");
      this.#fail(
        `the history thread failed: ${message.charAt(0).toLowerCase()}${message.slice(1)}`,
      );
    };
  }

  /**
   * Starts the thread and opens `path` there (the caller has usually opened it once
   * already, for the clear error at start and for reading).
   *
   * @throws {HistoryOpenError} When the thread cannot open the file.
   */
  static async open(
    path: string,
    options: HistoryWorkerSinkOptions = {},
  ): Promise<HistoryWorkerSink> {
    const worker = new Worker(WORKER_URL, { type: "module", name: "parrot history" });
    const sink = new HistoryWorkerSink(worker);
    const reply = await sink.#request({ type: "open", path, ...options });
    if (!reply.ok) {
      worker.terminate();
      // The thread's HistoryStore.open() error is already the one line to show.
      const prefix = `Cannot open history file ${JSON.stringify(path)}: `;
      throw new HistoryOpenError(
        reply.message.startsWith(prefix) ? reply.message : prefix + reply.message,
      );
    }
    sink.#lastId = reply.lastId ?? 0;
    sink.#checkPrune(reply);
    return sink;
  }

  /** The largest id the file held when it was opened. */
  get lastId(): number {
    return this.#lastId;
  }

  /** Posts a copy of `batch` to the thread; resolves once it is committed. */
  async write(batch: HistoryBatch): Promise<void> {
    // Copies of the filled parts only (a view would post its whole buffer), moved over.
    const copy: HistoryBatch = {
      firstId: batch.firstId,
      count: batch.count,
      times: batch.times.slice(0, batch.count),
      senders: batch.senders.slice(0, batch.count),
      names: batch.names.slice(),
      ends: batch.ends.slice(0, batch.count),
      bytes: batch.bytes.slice(),
    };
    const transfer = [copy.times, copy.senders, copy.ends, copy.bytes].map((a) =>
      a.buffer as ArrayBuffer
    );
    const reply = await this.#request({ type: "write", batch: copy }, transfer);
    if (!reply.ok) throw new Error(reply.message);
    this.#checkPrune(reply);
  }

  /** Closes the file (its log is checkpointed) and ends the thread. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.#failure === undefined) await this.#request({ type: "close" });
    } finally {
      this.#worker.terminate();
      this.#fail("the history is closed");
    }
  }

  #request(
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

  #fail(message: string): void {
    this.#failure ??= message;
    for (const reply of this.#replies.splice(0)) reply.resolve({ ok: false, message });
  }

  /** A retention pass that failed is told once per distinct error. */
  #checkPrune(reply: HistoryWorkerReply): void {
    if (!reply.ok || reply.pruneError === undefined) return;
    if (reply.pruneError === this.#lastPruneError) return;
    this.#lastPruneError = reply.pruneError;
    logger.warning(`History retention failed: ${reply.pruneError}`);
  }
}
