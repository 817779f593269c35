/**
 * `deno run --allow-read --allow-write=/tmp scripts/history_bench.ts [messages]`: what the
 * history costs per message, before the server is wired to it (the `deno task bench`
 * rows with and without `--history` come with the server's flag).
 *
 * Three figures, with 64 senders of 64-byte messages as in fanin-64x64:
 * - `recordRange()` (what the drain would call) and `record()` (with a view, what
 *   `onMessage` gives) alone, into a sink that drops the batches: the cost on the
 *   server's thread per message;
 * - `recordRange()` into the real Worker thread and SQLite file, as fast as one thread can
 *   call it: the server thread's cost, and how many the database thread stored and skipped;
 * - the same at a rate the database keeps up with, to give the stored rate.
 *
 * @module
 */

import { openHistory } from "../lib/history/history.ts";
import { HistoryWriter } from "../lib/history/history_writer.ts";

const MESSAGES = Number(Deno.args[0] ?? 2_000_000);
const SENDERS = Array.from({ length: 64 }, (_, i) => `client-${i}`);

function nsPerMessage(ms: number, messages: number): string {
  return `${(ms * 1e6 / messages).toFixed(0)} ns/msg`;
}

/** A read buffer of 4096 messages of 64 bytes, as the server's drain has them. */
const chunk = new Uint8Array(4096 * 64).fill(0x61);

/** Calls recordRange() `count` times; returns the milliseconds it took. */
function recordAll(writer: HistoryWriter, count: number): number {
  const start = performance.now();
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const at = (i & 4095) * 64;
    writer.recordRange(SENDERS[i & 63], chunk, at, at + 64, now);
  }
  return performance.now() - start;
}

/** Calls record() with a view of each message, as `onMessage` gives it. */
function recordViews(writer: HistoryWriter, count: number): number {
  const start = performance.now();
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const at = (i & 4095) * 64;
    writer.record(SENDERS[i & 63], chunk.subarray(at, at + 64), now);
  }
  return performance.now() - start;
}

// 1. recordRange() and record() alone.
for (const [name, calls] of [["recordRange()", recordAll], ["record()", recordViews]] as const) {
  const writer = new HistoryWriter({ sink: { write: async () => {}, close: async () => {} } });
  calls(writer, 200_000); // Warm up.
  await writer.flush();
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const perRound = Math.ceil(MESSAGES / 5);
    let ms = 0;
    for (let done = 0; done < perRound; done += 4096) {
      ms += calls(writer, Math.min(4096, perRound - done));
      await writer.flush();
    }
    best = Math.min(best, ms / perRound);
  }
  await writer.close();
  console.log(`${name} into a no-op sink: ${nsPerMessage(best, 1)} (best of 5)`);
}

// 2. and 3. record() into the Worker and the file.
const dir = await Deno.makeTempDir({ prefix: "parrot-history-bench-" });
try {
  for (const paced of [false, true]) {
    const path = `${dir}/${paced ? "paced" : "flat-out"}.db`;
    const writer = await openHistory(path, { maxMessages: 0, maxAgeMs: 0 });
    const start = performance.now();
    let onThread = 0;
    // Flat out: 4096 per turn of the event loop (the server's drain yields as often).
    // Paced: one such chunk per turn, waiting for the previous batch to be stored.
    for (let done = 0; done < MESSAGES; done += 4096) {
      onThread += recordAll(writer, Math.min(4096, MESSAGES - done));
      if (paced) await writer.flush();
      else await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await writer.close();
    const totalMs = performance.now() - start;
    const { stored, skipped } = writer.stats;
    console.log(
      `${paced ? "paced   " : "flat out"}: ${MESSAGES} messages, record() ${
        nsPerMessage(onThread, MESSAGES)
      } on the calling thread (recordRange); stored ${stored} (${
        Math.round(stored / totalMs * 1000)
      } msgs/s), skipped ${skipped}, in ${(totalMs / 1000).toFixed(2)} s`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
