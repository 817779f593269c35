/**
 * `--history <file>` as the server's command line runs it: the permission check that
 * makes a path the server task may not write a clear error, the opening (before the
 * server listens), and the closing after the server has finished, with one line that
 * says what was stored and what was not.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { openHistory } from "./history.ts";
import { HistoryOpenError } from "./history_store.ts";
import type { HistoryWriter } from "./history_writer.ts";

const log = getLogger(["parrot", "history"]);

/** What `--history` and the flags beside it ask for (`HistoryCommandLine`). */
export interface ServerHistoryOptions {
  /** The SQLite file. */
  path: string;
  /** Most messages kept; 0 for no limit. */
  maxMessages: number;
  /** Oldest message kept, in milliseconds; 0 for no limit. */
  maxAgeMs: number;
  /** Most messages one `HISTORY <n>` sends. */
  replayMax: number;
}

/** Milliseconds the history may take to store what it holds once the server stopped. */
export const HISTORY_CLOSE_TIMEOUT_MS = 10_000;

/**
 * Opens the history of `--history`.
 *
 * @throws {HistoryOpenError} `Cannot open history file "<path>": <why>`, one line: the
 * process may not write there, or the file cannot be used (see `HistoryStore.open`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeServerHistory, openServerHistory } from "./server_history.ts";
 *
 * const history = await openServerHistory({
 *   path: ":memory:",
 *   maxMessages: 0,
 *   maxAgeMs: 0,
 *   replayMax: 10,
 * });
 * history.record("ann", new TextEncoder().encode("hi"));
 * await closeServerHistory(history);
 * assert.equal(history.stats.stored, 1);
 * ```
 */
export async function openServerHistory(options: ServerHistoryOptions): Promise<HistoryWriter> {
  const { path } = options;
  if (path !== ":memory:") {
    const status = Deno.permissions.querySync({ name: "write", path });
    if (status.state !== "granted") {
      throw new HistoryOpenError(
        `Cannot open history file ${
          JSON.stringify(path)
        }: no permission to write it (the server task may write in the project directory only; give a path inside it)`,
      );
    }
  }
  const history = await openHistory(path, {
    maxMessages: options.maxMessages,
    maxAgeMs: options.maxAgeMs,
    replayMax: options.replayMax,
  });
  log.info("History in {path}: messages from id {id} on", { path, id: history.lastId + 1 });
  return history;
}

/**
 * Stores what the history still holds (for at most `timeoutMs`), closes it, and logs
 * what it stored and what it did not.
 */
export async function closeServerHistory(
  history: HistoryWriter,
  timeoutMs: number = HISTORY_CLOSE_TIMEOUT_MS,
): Promise<void> {
  try {
    await history.close(AbortSignal.timeout(timeoutMs));
  } catch (error) {
    log.error("Cannot store the last messages in the history: {error}", {
      error: error instanceof Error ? error.message : String(error),
    });
  }
  const { stored, skipped } = history.stats;
  if (skipped > 0) {
    log.warn("History stopped: {stored} messages stored, {skipped} not stored (see above)", {
      stored,
      skipped,
    });
  } else {
    log.info("History stopped: {stored} messages stored", { stored });
  }
}
