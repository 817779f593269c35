/**
 * Deno's stdout as a {@linkcode ByteWriter} that writes a quiet moment's small batches
 * synchronously where no reader can hold the write up: a regular file, or a character
 * device that is not a terminal (`/dev/null`), as Node writes its stdout to files. A
 * pipe or a terminal, whose reader may be slow, and any batch over
 * {@linkcode SYNC_WRITE_MAX_BYTES} go through Deno's asynchronous write, which hands the
 * write to a blocking thread so that the event loop never waits on it.
 *
 * Why: at a quiet moment a server writes a batch of a few records every few
 * milliseconds, and the asynchronous write's hand-off and the wake-up when it is done
 * cost more than the write itself. A busier server's batches are bigger and keep the
 * hand-off: written synchronously, 10 ms of 100 publishers (about 7 KB) made the tail
 * longer.
 *
 * @module
 */

import { fstatSync } from "node:fs";
import type { ByteWriter } from "./write_coalescer.ts";

/** The biggest write made synchronously: a quiet moment's batch, not a busy one's. */
export const SYNC_WRITE_MAX_BYTES = 4 * 1024;

/**
 * Whether stdout is a regular file or a character device that is not a terminal, whose
 * writes never wait for a reader. False when it cannot tell.
 *
 * @example
 * ```ts
 * import { stdoutNeverWaits } from "./stdout_writer.ts";
 *
 * console.log(stdoutNeverWaits() ? "file or /dev/null" : "pipe or terminal");
 * ```
 */
export function stdoutNeverWaits(): boolean {
  if (Deno.stdout.isTerminal()) return false;
  try {
    const stat = fstatSync(1);
    return stat.isFile() || stat.isCharacterDevice();
  } catch {
    return false;
  }
}

/**
 * Deno's stdout, written synchronously up to {@linkcode SYNC_WRITE_MAX_BYTES} at a time
 * when {@linkcode stdoutNeverWaits}, else asynchronously.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stdoutWriter } from "./stdout_writer.ts";
 *
 * const line = new TextEncoder().encode("hello\n");
 * assert.ok(await stdoutWriter().write(line) > 0);
 * ```
 */
export function stdoutWriter(): ByteWriter {
  if (!stdoutNeverWaits()) return Deno.stdout;
  return {
    write(p: Uint8Array): Promise<number> {
      if (p.length > SYNC_WRITE_MAX_BYTES) return Deno.stdout.write(p);
      try {
        return Promise.resolve(Deno.stdout.writeSync(p));
      } catch (error) {
        return Promise.reject(error);
      }
    },
  };
}
