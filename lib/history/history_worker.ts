/**
 * The history's database threads: Workers that own a {@linkcode HistoryStore}
 * connection each, so that the server's thread never waits for SQLite or the disk.
 * `history_worker_sink.ts` starts them and talks to them. One thread writes: the batches,
 * and the retention. Another (for a file; not for `:memory:`) runs the checkpoints that
 * move the log into the database file and wait for the disk, while the first goes on
 * writing: a checkpoint of 4 MB of log takes about 20 ms here, during which a writer
 * that ran it itself would store nothing.
 *
 * Requests, answered in order: `open` (path and retention: the writing thread), or
 * `checkpoints` (path, and the port the writing thread asks on: the checkpointing
 * thread); `write` (a batch); `close`. Each answer is `{ ok: true }` (with `lastId` for
 * `open`, and `warning` when the retention or a checkpoint failed) or
 * `{ ok: false, message }`; the answer to a `write` also hands the batch's buffers back
 * (moved, not copied), stored or not, so that the sink fills them again rather than
 * allocate new ones for every batch.
 *
 * The sink posts a few writes ahead, so a write may come after one that failed: such a
 * write fails too, unstored (its `epoch` is not above the failed one's: the writer had
 * not taken note of the failure when it was posted), so that what the file holds stays
 * a prefix of the batches up to the failure, as when the writes go one at a time.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { batchBuffers, type HistoryBatch, HistoryStore } from "./history_store.ts";

/** What the sink asks a thread. */
export type HistoryWorkerRequest =
  | {
    type: "open";
    path: string;
    maxMessages?: number;
    maxAgeMs?: number;
    /** Where to ask for checkpoints (the other thread); none: this one runs them. */
    checkpoints?: MessagePort;
  }
  | { type: "checkpoints"; path: string; port: MessagePort }
  | { type: "write"; batch: HistoryBatch; epoch: number }
  | { type: "close" };

/** What a thread answers, one per request, in order. */
export type HistoryWorkerReply =
  | { ok: true; lastId?: number; warning?: string; batch?: HistoryBatch }
  | { ok: false; message: string; batch?: HistoryBatch };

/** Messages stored between two retention passes at most. */
const PRUNE_EVERY_MESSAGES = 1_000;
/** Milliseconds between two retention passes at most (for the age limit). */
const PRUNE_EVERY_MS = 10_000;
/**
 * Payload bytes stored after which the writing thread asks for a checkpoint (if the last
 * one is done): the log is copied to the file, and reaches the disk, about this often.
 * Not much more often: each time the log is then started over from its beginning, its
 * header is synced to the disk, which the writing thread waits for (every megabyte, that
 * took half of its time; every 4 MB, a fifth).
 */
const CHECKPOINT_EVERY_BYTES = 4 * 1024 * 1024;
/**
 * Bytes of log after which the writing thread checkpoints itself: when the other thread
 * is behind, and to start the log over from its beginning (which only happens after a
 * checkpoint that left nothing to copy), so that it stops growing.
 */
const WRITER_CHECKPOINT_BYTES = 32 * 1024 * 1024;

let store: HistoryStore | undefined;
let sincePrune = 0;
let prunedAt = 0;
/** The epoch of the last write that failed (later ones up to it fail too), and why. */
let failedEpoch = -1;
let failure = "";
/** The port to the checkpointing thread, and whether it is running one. */
let checkpoints: MessagePort | undefined;
let checkpointing = false;
let sinceCheckpoint = 0;
/** A checkpoint's failure, told with the next answer. */
let checkpointError: string | undefined;

function handle(request: HistoryWorkerRequest): HistoryWorkerReply {
  switch (request.type) {
    case "open": {
      const { path, maxMessages, maxAgeMs } = request;
      checkpoints = request.checkpoints;
      store = HistoryStore.open(path, {
        maxMessages,
        maxAgeMs,
        autoCheckpointBytes: checkpoints ? WRITER_CHECKPOINT_BYTES : undefined,
      });
      if (checkpoints) {
        checkpoints.onmessage = (event: MessageEvent<{ error?: string }>) => {
          checkpointing = false;
          if (event.data.error !== undefined) checkpointError = event.data.error;
        };
      }
      prunedAt = Date.now();
      // Apply the retention to what an earlier run left at once.
      return { ok: true, lastId: store.lastId, warning: prune(true) };
    }
    case "checkpoints": {
      const checkpointer = HistoryStore.open(request.path);
      store = checkpointer;
      checkpoints = request.port;
      checkpoints.onmessage = () => {
        try {
          checkpointer.checkpoint("PASSIVE");
          checkpoints?.postMessage({});
        } catch (error) {
          checkpoints?.postMessage({ error: message(error) });
        }
      };
      return { ok: true };
    }
    case "write": {
      if (store === undefined) return { ok: false, message: "the history file is not open" };
      const { batch, epoch } = request;
      // Posted behind a failed write, before the writer took note of it: not stored either.
      if (epoch <= failedEpoch) return { ok: false, message: failure };
      try {
        store.append(batch);
      } catch (error) {
        failedEpoch = epoch;
        failure = message(error);
        throw error;
      }
      sincePrune += batch.count;
      sinceCheckpoint += batch.count > 0 ? batch.ends[batch.count - 1] : 0;
      if (checkpoints && !checkpointing && sinceCheckpoint >= CHECKPOINT_EVERY_BYTES) {
        checkpointing = true;
        sinceCheckpoint = 0;
        checkpoints.postMessage({});
      }
      let warning = prune(false);
      if (checkpointError !== undefined) {
        warning ??= `checkpoint failed: ${checkpointError}`;
        checkpointError = undefined;
      }
      return { ok: true, warning };
    }
    case "close":
      checkpoints?.close();
      checkpoints = undefined;
      store?.close();
      store = undefined;
      return { ok: true };
  }
}

/** Runs one bounded retention pass when one is due; what failed, if it did. */
function prune(now: boolean): string | undefined {
  const time = Date.now();
  if (!now && sincePrune < PRUNE_EVERY_MESSAGES && time - prunedAt < PRUNE_EVERY_MS) return;
  sincePrune = 0;
  prunedAt = time;
  try {
    store!.prune(time);
  } catch (error) {
    return `retention failed: ${message(error)}`;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

self.onmessage = (event: MessageEvent<HistoryWorkerRequest>) => {
  let reply: HistoryWorkerReply;
  try {
    reply = handle(event.data);
  } catch (error) {
    reply = { ok: false, message: message(error) };
  }
  if (event.data.type === "write") {
    // The buffers go back to the sink, to be filled again.
    const { batch } = event.data;
    reply.batch = batch;
    self.postMessage(reply, batchBuffers(batch));
  } else {
    self.postMessage(reply);
  }
};
