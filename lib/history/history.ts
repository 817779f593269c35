/**
 * `--history <file>` in one call: opens the file (with the clear one-line error of a
 * file that cannot be used), starts its writing thread, and returns the
 * {@linkcode HistoryWriter} the server records every printed message to and answers
 * `HISTORY <n>` from.
 *
 * @module
 */

import {
  DEFAULT_HISTORY_AGE_MS,
  DEFAULT_HISTORY_MAX,
  DEFAULT_HISTORY_REPLAY_MAX,
} from "../defaults.ts";
import { HistoryStore } from "./history_store.ts";
import { HistoryWorkerSink } from "./history_worker_sink.ts";
import { HistoryWriter, type HistoryWriterOptions } from "./history_writer.ts";

/** Options of {@linkcode openHistory}. */
export interface OpenHistoryOptions
  extends Omit<HistoryWriterOptions, "sink" | "reader" | "firstId"> {
  /** Most messages kept (`--history-max`). Default 1,000,000; 0 for no limit. */
  maxMessages?: number;
  /** Oldest message kept, in milliseconds (`--history-age`). Default 7 days; 0 for no limit. */
  maxAgeMs?: number;
}

/**
 * Opens the history file at `path` for the server.
 *
 * @throws {HistoryOpenError} `Cannot open history file "<path>": <why>`.
 *
 * @example Record and replay
 * ```ts
 * import assert from "node:assert/strict";
 * import { openHistory } from "./history.ts";
 *
 * const history = await openHistory(":memory:");
 * history.record("alice", new TextEncoder().encode("hello"));
 * assert.deepEqual(history.last(10).map((m) => m.sender), ["alice"]);
 * await history.close();
 * assert.equal(history.stats.stored, 1);
 * ```
 */
export async function openHistory(
  path: string,
  options: OpenHistoryOptions = {},
): Promise<HistoryWriter> {
  const maxMessages = options.maxMessages ?? DEFAULT_HISTORY_MAX;
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_HISTORY_AGE_MS;
  const retention = {
    maxMessages: maxMessages > 0 ? maxMessages : undefined,
    maxAgeMs: maxAgeMs > 0 ? maxAgeMs : undefined,
  };
  // Opened here first: the error at start, the schema, and the reads of HISTORY.
  const reader = HistoryStore.open(path, retention);
  let sink: HistoryWorkerSink;
  try {
    sink = await HistoryWorkerSink.open(path, retention);
  } catch (error) {
    reader.close();
    throw error;
  }
  return new HistoryWriter({
    ...options,
    replayMax: options.replayMax ?? DEFAULT_HISTORY_REPLAY_MAX,
    sink,
    reader,
    firstId: sink.lastId + 1,
  });
}
