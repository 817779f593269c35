/**
 * The history's database thread: a Worker that owns one {@linkcode HistoryStore}
 * connection and runs its writes and its retention, so that the server's thread never
 * waits for SQLite or the disk. `history_worker_sink.ts` starts it and talks to it.
 *
 * Requests, answered in order: `open` (path and retention), `write` (a batch), `close`.
 * Each answer is `{ ok: true }` (with `lastId` for `open`, `pruneError` when the
 * retention failed after a stored write) or `{ ok: false, message }`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { type HistoryBatch, HistoryStore } from "./history_store.ts";

/** What the sink asks the thread. */
export type HistoryWorkerRequest =
  | { type: "open"; path: string; maxMessages?: number; maxAgeMs?: number }
  | { type: "write"; batch: HistoryBatch }
  | { type: "close" };

/** What the thread answers, one per request, in order. */
export type HistoryWorkerReply =
  | { ok: true; lastId?: number; pruneError?: string }
  | { ok: false; message: string };

/** Messages stored between two retention passes at most. */
const PRUNE_EVERY_MESSAGES = 1_000;
/** Milliseconds between two retention passes at most (for the age limit). */
const PRUNE_EVERY_MS = 10_000;

let store: HistoryStore | undefined;
let sincePrune = 0;
let prunedAt = 0;

function handle(request: HistoryWorkerRequest): HistoryWorkerReply {
  switch (request.type) {
    case "open": {
      const { path, maxMessages, maxAgeMs } = request;
      store = HistoryStore.open(path, { maxMessages, maxAgeMs });
      prunedAt = Date.now();
      // Apply the retention to what an earlier run left at once.
      return { ok: true, lastId: store.lastId, pruneError: prune(true) };
    }
    case "write": {
      if (store === undefined) return { ok: false, message: "the history file is not open" };
      store.append(request.batch);
      sincePrune += request.batch.count;
      return { ok: true, pruneError: prune(false) };
    }
    case "close":
      store?.close();
      store = undefined;
      return { ok: true };
  }
}

/** Runs one bounded retention pass when one is due; the error's message if it failed. */
function prune(now: boolean): string | undefined {
  const time = Date.now();
  if (!now && sincePrune < PRUNE_EVERY_MESSAGES && time - prunedAt < PRUNE_EVERY_MS) return;
  sincePrune = 0;
  prunedAt = time;
  try {
    store!.prune(time);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

self.onmessage = (event: MessageEvent<HistoryWorkerRequest>) => {
  let reply: HistoryWorkerReply;
  try {
    reply = handle(event.data);
  } catch (error) {
    reply = { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
  self.postMessage(reply);
};
