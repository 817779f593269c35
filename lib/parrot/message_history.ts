/**
 * What the server needs of a message history (`--history`), and the replay of
 * `HISTORY <n>`.
 *
 * The server records every message it prints, in order, and reads the last ones back
 * when a client asks; it does not know how they are stored (`lib/history/` keeps them
 * in SQLite, in a Worker). This module owns that contract, kept this small so that
 * `lib/parrot` does not depend on the store, and the encoding of a replay: the stored
 * messages as the usual relay frames, `MSG <from> <n>`, in one buffer.
 *
 * @module
 */

import { encodeRelays } from "./frame_encoder.ts";

/** One stored message, as a replay sends it. */
export interface StoredMessage {
  /** The sender's name, as the server printed it. */
  readonly sender: string;
  /** The payload's bytes. */
  readonly payload: Uint8Array;
}

/**
 * Where a server records every message it prints, and reads `HISTORY <n>` from (the
 * `HistoryWriter` of `lib/history/`). Ids number the messages in the order recorded.
 */
export interface MessageHistory {
  /** The id of the last message recorded (0 when none yet). */
  readonly lastId: number;
  /**
   * Records the message `bytes[start, end)` of `from` (of another server, `origin`, in
   * cluster mode): cheap, never throws, never waits (the server calls it for every
   * message, on its hot path).
   */
  recordRange(
    from: string,
    bytes: Uint8Array,
    start: number,
    end: number,
    time?: number,
    origin?: string,
  ): void;
  /**
   * Records the messages `bytes[ranges[i], ranges[i + 1])` of `from`, for `i` from
   * `first` to `last` (excluded) by twos, as `recordRange` would one by one: the server
   * calls it for a run of messages of one read, if present (else `recordRange` for each).
   */
  recordRanges?(
    from: string,
    bytes: Uint8Array,
    ranges: ArrayLike<number>,
    first: number,
    last: number,
    time?: number,
  ): void;
  /** The last `n` messages recorded with an id of at most `upToId`, oldest first. */
  last(n: number, upToId?: number): StoredMessage[];
  /**
   * Resolves once every message recorded before the call is stored (or counted as not
   * stored, when the store failed): the server answers `PING` after it.
   */
  flush?(): Promise<void>;
  /** Whether the history holds more than it wants to: the server waits for `whenRoom()`. */
  readonly congested?: boolean;
  /** Resolves once the history is no longer congested. */
  whenRoom?(signal?: AbortSignal): Promise<void>;
}

/**
 * Encodes `messages` as relay frames in one buffer: the newest of them whose frames
 * fit in `maxBytes` (always the newest one, however large), oldest first.
 *
 * @returns The frames, and how many messages they hold.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeReplay } from "./message_history.ts";
 *
 * const text = new TextEncoder();
 * const messages = [
 *   { sender: "ann", payload: text.encode("hi") },
 *   { sender: "bob", payload: text.encode("yo") },
 * ];
 * const all = encodeReplay(messages, 1024);
 * assert.equal(new TextDecoder().decode(all.bytes), "MSG ann 2\nhi\nMSG bob 2\nyo\n");
 * // Only the newest fits in 16 bytes.
 * assert.equal(encodeReplay(messages, 16).count, 1);
 * ```
 */
export function encodeReplay(
  messages: readonly StoredMessage[],
  maxBytes: number,
): { bytes: Uint8Array; count: number } {
  const encoder = new TextEncoder();
  const headers: Uint8Array[] = [];
  let total = 0;
  let first = messages.length;
  while (first > 0) {
    const { sender, payload } = messages[first - 1];
    const header = encoder.encode(`MSG ${sender} `);
    // The header, the length's digits, LF, the payload, LF.
    const size = header.length + String(payload.length).length + payload.length + 2;
    if (headers.length > 0 && total + size > maxBytes) break;
    headers.unshift(header);
    total += size;
    first--;
  }
  const kept = messages.slice(first);
  const bounds: number[] = [];
  for (const message of kept) bounds.push(0, message.payload.length);
  const { bytes } = encodeRelays(headers, kept.map((message) => message.payload), bounds);
  return { bytes, count: kept.length };
}

/**
 * Answers `HISTORY <n>` of a client: sends it the last `n` messages recorded with an id
 * of at most `upToId`, as relay frames of at most `maxBytes` in all (see
 * {@linkcode encodeReplay}); returns how many it sent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type MessageHistory, replayHistory } from "./message_history.ts";
 *
 * const payload = new TextEncoder().encode("hi");
 * const history: MessageHistory = {
 *   lastId: 1,
 *   recordRange: () => {},
 *   last: (n) => [{ sender: "ann", payload }].slice(0, n),
 * };
 * const sent: string[] = [];
 * const client = { send: (bytes: Uint8Array) => void sent.push(new TextDecoder().decode(bytes)) };
 * assert.equal(replayHistory(history, client, 10, 1, 1024), 1);
 * assert.deepEqual(sent, ["MSG ann 2\nhi\n"]);
 * ```
 */
export function replayHistory(
  history: MessageHistory,
  client: { send(bytes: Uint8Array): void },
  n: number,
  upToId: number,
  maxBytes: number,
): number {
  if (n <= 0) return 0;
  const messages = history.last(n, upToId);
  if (messages.length === 0) return 0;
  const { bytes, count } = encodeReplay(messages, maxBytes);
  client.send(bytes);
  return count;
}
